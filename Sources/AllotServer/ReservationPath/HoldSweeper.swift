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

    init(catalog: Catalog, redis: any RedisRouting, streamEntriesMax: Int, logger: Logger) {
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
            for keys in view.layout.bucketKeys where !inFlight.contains(keys.prefix) {
                sweep(keys, waitlist: view.campaign.offerMillis > 0, round: 1)
            }
        }
    }

    private func sweep(_ keys: CampaignKeys, waitlist: Bool, round: Int) {
        inFlight.insert(keys.prefix)
        let arguments = [String(streamEntriesMax), String(Self.holdsPerCall), keys.isSeriesBucket ? keys.seriesLedgerPrefix : "",
                         waitlist ? keys.prefix : ""]
        redis.run(Scripts.expire, slot: keys.slot, keys: [keys.records, keys.remaining, keys.holdings, keys.stats, keys.stream,
                                                          keys.holds, keys.holders, keys.config, keys.waitlist, keys.slots],
                  arguments: arguments) { [self] result in
            inFlight.remove(keys.prefix)
            switch result {
            case .success(let reply) where reply.integer == Int64(Self.holdsPerCall) && round < Self.roundsMax:
                sweep(keys, waitlist: waitlist, round: round + 1)
            case .success(let reply) where reply.integer == -1: warnBacklog(keys.campaign)
            case .success(let reply) where reply.integer == nil:
                logger.error("hold sweep failed", metadata: ["campaign": "\(keys.campaign)", "reply": "\(reply)"])
            default: break  // a lost reply: the next period sweeps again
            }
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
