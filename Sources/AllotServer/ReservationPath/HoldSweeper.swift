import AllotDomain
import EventLoops
import Logging
import RedisClient

/// Ends the holds past their expiry (expire.lua) in every bucket of every
/// hot campaign with holds, every `periodMillis`. Every node runs one, on
/// its first loop, so no node's loss leaves a place held: a place is back
/// on sale within a period of its expiry, and in every loop's snapshot a
/// refresh later (the README's "no place stays held past its expiry + 1 s").
/// Two nodes sweeping at once do no harm: each hold ends once, in one step.
/// The same call serves a bucket's waitlist from places on sale there
/// (waitlist.lua); a spread campaign's bucket whose line waits for places
/// it does not have gets some moved in (BucketRefill, as for a
/// reservation), and the next sweep offers them.
final class HoldSweeper {
    static let periodMillis = 200
    /// Holds one call ends at most (one script's time stays short); a
    /// bucket that had more is swept again at once, up to `roundsMax` calls
    /// per bucket and period.
    static let holdsPerCall = 200
    static let roundsMax = 16

    private let catalog: Catalog
    private let redis: any RedisRouting
    private let streamEntriesMax: Int
    private let logger: Logger
    /// Buckets (by key prefix) whose call is not answered yet: a slow or
    /// lost shard gets no second sweep on top, and holds up no other.
    private var inFlight = Set<String>()
    private var lastBacklogWarningMicros: Int64 = 0

    /// Moves places of a slot into a bucket (the loop's BucketRefill).
    private let refill: (CampaignView, _ bucket: Int, Slot) -> Void

    init(catalog: Catalog, redis: any RedisRouting, streamEntriesMax: Int, logger: Logger,
         refill: @escaping (CampaignView, _ bucket: Int, Slot) -> Void) {
        self.refill = refill
        self.catalog = catalog
        self.redis = redis
        self.streamEntriesMax = streamEntriesMax
        self.logger = logger
    }

    /// One period's sweep (on the loop's thread).
    func sweep() {
        // A waitlist's offers are holds too (a first-come waitlist's, or a
        // lottery with holds' line: Campaign.offerMillis).
        for view in catalog.campaigns.values where view.campaign.holdSeconds != nil || view.campaign.waitlist != nil {
            for (bucket, keys) in view.layout.bucketKeys.enumerated() where !inFlight.contains(keys.prefix) {
                sweep(view, bucket: bucket, keys, round: 1)
            }
        }
    }

    private func sweep(_ view: CampaignView, bucket: Int, _ keys: CampaignKeys, round: Int) {
        inFlight.insert(keys.prefix)
        let arguments = [String(streamEntriesMax), String(Self.holdsPerCall), keys.isSeriesBucket ? keys.seriesLedgerPrefix : "",
                         view.campaign.offerMillis > 0 ? keys.prefix : ""]
        redis.run(Scripts.expire, slot: keys.slot, keys: [keys.records, keys.remaining, keys.holdings, keys.stats, keys.stream,
                                                          keys.holds, keys.holders, keys.config, keys.waitlist, keys.slots,
                                                          keys.waitSites, keys.waitTargets],
                  arguments: arguments) { [self] result in
            inFlight.remove(keys.prefix)
            guard case .success(let reply) = result else { return }  // a lost reply: the next period sweeps again
            guard let parts = reply.elements, let ended = parts.first?.integer else {
                return logger.error("hold sweep failed", metadata: ["campaign": "\(keys.campaign)", "reply": "\(reply)"])
            }
            if ended == -1 { return warnBacklog(keys.campaign) }
            if view.layout.isSpread { placesWanted(view, bucket: bucket, targets: parts.dropFirst().compactMap(\.text)) }
            if ended == Int64(Self.holdsPerCall) && round < Self.roundsMax { sweep(view, bucket: bucket, keys, round: round + 1) }
        }
    }

    /// A spread campaign's bucket has a line waiting for `targets` (slot
    /// ids, `site:<id>`) and none of their places: for each, one slot's
    /// places are moved in from where this loop's snapshot last saw some
    /// (the pool, or the bucket with most), a refill at a time per bucket
    /// and slot. Places given back elsewhere reach the line this way.
    private func placesWanted(_ view: CampaignView, bucket: Int, targets: [String]) {
        for text in targets {
            guard let target = WaitlistTarget(Substring(text)) else { continue }
            let candidates = switch target {
            case .slot(let id): view.slot(id).map { [$0] } ?? []
            case .site(let id): view.slots.filter { $0.siteID == id }
            }
            let elsewhere = { (slot: Slot) in view.placesOutside(bucket: bucket, slot: slot.id) }
            guard let slot = candidates.max(by: { elsewhere($0) < elsewhere($1) }), elsewhere(slot) > 0 else { continue }
            refill(view, bucket, slot)
        }
    }

    /// The persister is far behind: holds wait (nothing is written without
    /// its event). Said once a minute at most.
    private func warnBacklog(_ campaign: String) {
        let now = monotonicMicros()
        guard now - lastBacklogWarningMicros > 60_000_000 else { return }
        lastBacklogWarningMicros = now
        logger.warning("holds past their expiry wait: the campaign's stream is full", metadata: ["campaign": "\(campaign)"])
    }
}
