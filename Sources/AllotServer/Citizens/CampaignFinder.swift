import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// Finds a campaign for one loop, by id or by the route a reservation id
/// carries: in the hot snapshot first, else in Redis, one call per miss and
/// never a scan over campaigns (a campaign whose booking has ended leaves
/// the hot set, and its reservations are still looked up, cancelled and
/// redeemed). What it fetched is kept for a while, in bounded tables.
final class CampaignFinder {
    /// Campaigns outside the hot set (or unknown ids) kept at once, and how
    /// long each is believed.
    static let fetchedMax = 1_024
    static let fetchedLifetimeMicros: Int64 = 10_000_000
    /// Routes kept: a route never changes its campaign, so these need no
    /// expiry, only a bound.
    static let routesMax = 65_536
    /// Fetches of campaigns outside the hot set, per loop: a flood of made-up
    /// campaign ids gets 503 past this, not a Redis call each.
    static let fetchPolicy = BucketPolicy(rate: 500, burst: 500)!

    let catalog: Catalog
    private let redis: any RedisRouting
    private let staleMillisMax: Int
    private var fetched: [String: (view: CampaignView?, atMicros: Int64)] = [:]
    private var routes: [UInt32: RouteTarget] = [:]
    private var fetches = TokenBucket(policy: fetchPolicy, nowMicros: monotonicMicros())

    init(catalog: Catalog, redis: any RedisRouting, staleMillisMax: Int) {
        self.catalog = catalog
        self.redis = redis
        self.staleMillisMax = staleMillisMax
    }

    /// The hot snapshot, if it may still be shown.
    var freshCatalog: Catalog? {
        catalog.ageMillis() <= Int64(staleMillisMax) ? catalog : nil
    }

    /// The campaign `id` as this loop knows it now (the snapshot, or a recent
    /// fetch), without a Redis call; nil when it must be fetched (`campaign`).
    /// The reservation path asks this first: no closure, no allocation.
    func knownCampaign(_ id: String) -> Result<CampaignView?, Problem>? {
        guard let catalog = freshCatalog else { return .failure(.unavailable("campaign data is not available")) }
        if let view = catalog.campaigns[id] { return .success(view) }
        if let kept = fetched[id], monotonicMicros() - kept.atMicros < Self.fetchedLifetimeMicros { return .success(kept.view) }
        return nil
    }

    /// The campaign `id` (nil: there is none). Runs `completion` at once for
    /// a hot or recently fetched campaign.
    func campaign(_ id: String, completion: @escaping (Result<CampaignView?, Problem>) -> Void) {
        if let known = knownCampaign(id) { return completion(known) }
        let now = monotonicMicros()
        guard case .taken = fetches.take(policy: Self.fetchPolicy, nowMicros: now) else {
            return completion(.failure(.busy))
        }
        let keys = CampaignKeys(id)
        redis.run(Scripts.snapshot, slot: keys.slot, keys: keys.snapshotKeys, arguments: [""]) { [self] result in
            guard case .success(let reply) = result, let snapshot = try? SnapshotReply(reply, knownVersion: nil) else {
                return completion(.failure(.unavailable("campaign data is not available")))
            }
            var view: CampaignView?
            if case .full(let version, let config, let capacity, let sites, let slots, let remaining) = snapshot {
                view = CampaignView.decode(id: id, version: version, config: config, capacity: capacity, sites: sites,
                                           slots: slots, remaining: remaining)
                view?.remainingIsPartial = view?.layout.isSpread == true
            }
            keep(id, view)
            completion(.success(view))
        }
    }

    /// The campaign (and bucket) with `route` (nil: no campaign has it).
    func target(route: UInt32, completion: @escaping (Result<RouteTarget?, Problem>) -> Void) {
        if let target = freshCatalog?.routes[route] ?? routes[route] { return completion(.success(target)) }
        redis.send(["HGET", GlobalKeys.routes, String(route)], slot: GlobalKeys.routesSlot) { [self] result in
            guard case .success(let reply) = result else {
                return completion(.failure(.unavailable("reservations are not available")))
            }
            guard let target = reply.text.flatMap(RedisConfig.routeTarget) else { return completion(.success(nil)) }
            if routes.count >= Self.routesMax { routes.removeAll(keepingCapacity: true) }
            routes[route] = target
            completion(.success(target))
        }
    }

    private func keep(_ id: String, _ view: CampaignView?) {
        if fetched.count >= Self.fetchedMax {
            // Room: first what has expired, then the ids that named no
            // campaign, and only then everything.
            let now = monotonicMicros()
            fetched = fetched.filter { now - $0.value.atMicros < Self.fetchedLifetimeMicros }
            if fetched.count >= Self.fetchedMax { fetched = fetched.filter { $0.value.view != nil } }
            if fetched.count >= Self.fetchedMax { fetched.removeAll(keepingCapacity: true) }
        }
        fetched[id] = (view, monotonicMicros())
    }
}
