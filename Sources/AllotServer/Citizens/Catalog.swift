import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// A loop's read snapshot of the hot campaigns (GlobalKeys.campaigns),
/// refreshed from Redis every `snapshotRefreshMillis`, so a read storm is
/// not a Redis storm. Reads answer from it while it is younger than
/// `snapshotStaleMillisMax`. Campaigns that left the hot set are found by
/// CampaignFinder, one Redis call each.
final class Catalog {
    let loop: EventLoop
    private let redis: any RedisRouting
    private(set) var campaigns: [String: CampaignView] = [:]
    /// Route → campaign (and bucket) of the hot campaigns.
    private(set) var routes: [UInt32: RouteTarget] = [:]
    /// Monotonic time of the last refresh that reached Redis; 0: never.
    private(set) var refreshedAtMicros: Int64 = 0
    /// The same moment by the wall clock (the open data's `as_of`).
    private(set) var refreshedAtWallMillis: Int64 = 0
    private var refreshInFlight = false
    /// Callers waiting for the refresh under way, and for the next one.
    private var waitingForCurrent: [(Bool) -> Void] = []
    private var waitingForNext: [(Bool) -> Void] = []
    /// Rendered listings, valid until the next refresh.
    var renderedCache: [RenderedKey: SharedBytes] = [:]
    /// Rendered open data, with their validators, valid until the next refresh.
    var openDataCache: [OpenDataKey: OpenData.Rendered] = [:]
    /// Rendered citizen pages, valid until the next refresh.
    var pageCache: [PageKey: SharedBytes] = [:]

    init(loop: EventLoop, redis: any RedisRouting) {
        self.loop = loop
        self.redis = redis
    }

    /// What this loop's own script runs showed of a slot's places, applied
    /// to its snapshot at once (the next refresh brings every other node's
    /// and loop's): a place its cancel gave back is offered again here
    /// without waiting, and a slot its reservation filled is refused here
    /// without another script run (ReservationDesk.isSoldOut).
    func placesChanged(campaign: String, bucket: Int, slot: String, by change: Int) {
        guard let view = campaigns[campaign], let left = view.remaining[slot] else { return }
        view.remaining[slot] = max(0, left + change)
        if bucket < view.bucketRemaining.count { view.bucketRemaining[bucket][slot] = max(0, (view.bucketRemaining[bucket][slot] ?? 0) + change) }
    }

    /// A script run refused the slot as full: nowhere has a place of it
    /// (a spread campaign's refill found none in the pool or any bucket).
    func slotIsFull(campaign: String, slot: String) {
        guard let view = campaigns[campaign], view.remaining[slot] != nil else { return }
        view.remaining[slot] = 0
        if view.pool[slot] != nil { view.pool[slot] = 0 }
        for bucket in view.bucketRemaining.indices where view.bucketRemaining[bucket][slot] != nil { view.bucketRemaining[bucket][slot] = 0 }
    }

    func ageMillis(nowMicros: Int64 = monotonicMicros()) -> Int64 {
        refreshedAtMicros == 0 ? Int64.max : (nowMicros - refreshedAtMicros) / 1000
    }

    /// Starts a refresh unless one is under way. `done`, if given, runs once
    /// a refresh that began after this call has ended (true: it reached
    /// Redis), so whoever changed the configuration knows this loop acts on
    /// it from then on.
    func refresh(done: ((Bool) -> Void)? = nil) {
        loop.preconditionInLoop()
        if let done { waitingForNext.append(done) }
        guard !refreshInFlight else { return }
        guard redis.isConnected else { return finishWaiting(false) }
        refreshInFlight = true
        waitingForCurrent = waitingForNext
        waitingForNext.removeAll()
        redis.send(["SMEMBERS", GlobalKeys.campaigns], slot: GlobalKeys.campaignsSlot) { [self] result in
            guard case .success(let reply) = result, let members = reply.elements else { return refreshEnded(ok: false) }
            refreshCampaigns(members.compactMap(\.text).filter { OperatorID.isValid($0) })
        }
    }

    private func refreshCampaigns(_ ids: [String]) {
        var next: [String: CampaignView] = [:]
        var outstanding = ids.count
        var failed = false
        let finish = { [self] in
            if !failed {
                campaigns = next
                routes = Dictionary(next.values.flatMap { view in
                    view.routes.enumerated().map { bucket, route in
                        (route, RouteTarget(campaign: view.campaign.id, spreadBucket: view.layout.isSpread ? bucket : nil,
                                            buckets: view.layout.buckets, keys: view.layout.bucketKeys[bucket]))
                    }
                }, uniquingKeysWith: { first, _ in first })
                renderedCache.removeAll(keepingCapacity: true)
                openDataCache.removeAll(keepingCapacity: true)
                pageCache.removeAll(keepingCapacity: true)
                refreshedAtMicros = monotonicMicros()
                refreshedAtWallMillis = WallClock.nowMillis()
            }
            refreshEnded(ok: !failed)
        }
        guard outstanding > 0 else { return finish() }
        for id in ids {
            let keys = CampaignKeys(id)
            let known = campaigns[id]
            redis.run(Scripts.snapshot, slot: keys.slot, keys: keys.snapshotKeys, arguments: [known?.version ?? ""]) { [self] result in
                do {
                    if let view = try apply(SnapshotReply(result.get(), knownVersion: known?.version), id: id, known: known) {
                        next[id] = view
                        if view.layout.isSpread {
                            // Each bucket's places, from its own shard.
                            outstanding += 1
                            readBuckets(of: view) {
                                outstanding -= 1
                                if outstanding == 0 { finish() }
                            }
                        }
                    }
                } catch {
                    failed = true
                }
                outstanding -= 1
                if outstanding == 0 { finish() }
            }
        }
    }

    /// Reads every bucket's places of a spread campaign (one call a bucket,
    /// all at once; places moving out of a bucket count as its own) and
    /// sets its totals. A bucket that could not be read keeps its last
    /// count: one unreachable shard does not blind the loop to the others.
    private func readBuckets(of view: CampaignView, done: @escaping () -> Void) {
        let pool = view.pool
        var buckets = view.bucketRemaining
        var outstanding = buckets.count
        for (bucket, keys) in view.layout.bucketKeys.enumerated() {
            redis.run(Scripts.bucketPlaces, slot: keys.slot, keys: [keys.remaining, keys.transfers], arguments: []) { result in
                if case .success(let reply) = result, reply.errorMessage == nil { buckets[bucket] = reply.integerPairs }
                outstanding -= 1
                guard outstanding == 0 else { return }
                view.placesRead(pool: pool, buckets: buckets)
                done()
            }
        }
    }

    private func refreshEnded(ok: Bool) {
        refreshInFlight = false
        let waiting = waitingForCurrent
        waitingForCurrent.removeAll()
        for done in waiting { done(ok) }
        // Someone asked while this one ran: it may predate their change.
        if !waitingForNext.isEmpty { refresh() }
    }

    private func finishWaiting(_ ok: Bool) {
        let waiting = waitingForNext
        waitingForNext.removeAll()
        for done in waiting { done(ok) }
    }

    private func apply(_ reply: SnapshotReply, id: String, known: CampaignView?) -> CampaignView? {
        switch reply {
        case .absent: return nil
        case .counters(_, let remaining):
            guard let known else { return nil }
            // A spread campaign's are the pool's; its buckets' come next.
            if known.layout.isSpread { known.pool = remaining } else { known.remaining = remaining }
            return known
        case .full(let version, let config, let capacity, let sites, let slots, let remaining):
            return CampaignView.decode(id: id, version: version, config: config, capacity: capacity, sites: sites,
                                       slots: slots, remaining: remaining)
        }
    }
}

/// What a rendered listing is kept under: its kind and its parameters (no
/// key string is built per request).
struct RenderedKey: Hashable {
    enum Listing: UInt8 { case campaigns, sites, slots }
    var listing: Listing
    var campaign = ""
    var site: String? = nil
}

struct OpenDataKey: Hashable {
    var campaign: String
    var format: OpenDataFormat
}
