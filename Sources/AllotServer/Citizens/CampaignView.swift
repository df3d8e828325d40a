import AllotDomain
import EventHTTP

/// One campaign as a loop last read it from Redis: configuration, sites,
/// slots and the remaining places. Immutable but for the places, which each
/// refresh replaces.
final class CampaignView {
    let version: String
    let campaign: Campaign
    /// Sorted by id, for stable listings.
    let sites: [Site]
    let slots: [Slot]
    let slotIndex: [String: Int]
    /// Places left per slot, the whole campaign's (pool and buckets).
    var remaining: [String: Int]
    /// With several buckets: the pool's places, and each bucket's.
    var pool: [String: Int] = [:]
    var bucketRemaining: [[String: Int]] = []
    /// Fetched outside the hot set, a spread campaign's view has the pool's
    /// places only: it may not decide that a slot is sold out.
    var remainingIsPartial = false
    /// The home's keys.
    let keys: CampaignKeys
    let layout: CampaignLayout
    /// What its reservation ids carry (RouteCipher); nil only for data
    /// written before routes, until the admin worker publishes one.
    let route: UInt32?
    /// As the home's config hash holds them (the dashboard's form shows them).
    let rateLimits: RateLimits

    init(version: String, campaign: Campaign, route: UInt32?, sites: [Site], slots: [Slot], remaining: [String: Int],
         rateLimits: RateLimits = RateLimits()) {
        self.version = version
        self.rateLimits = rateLimits
        self.campaign = campaign
        self.route = route
        self.sites = sites
        self.slots = slots
        self.remaining = remaining
        layout = campaign.layout
        keys = layout.home
        if layout.isSpread {
            pool = remaining
            bucketRemaining = Array(repeating: [:], count: layout.buckets.count)
        }
        var index: [String: Int] = [:]
        for (position, slot) in slots.enumerated() { index[slot.id] = position }
        slotIndex = index
    }

    func slot(_ id: String) -> Slot? { slotIndex[id].map { slots[$0] } }

    /// Places left in all of each site's slots (the listings, the pages).
    func remainingBySite() -> [String: Int] {
        var left: [String: Int] = [:]
        for slot in slots { left[slot.siteID, default: 0] += remaining[slot.id] ?? 0 }
        return left
    }

    /// With several buckets: the pool's places and each bucket's, as read
    /// now; the campaign's totals are their sums.
    func placesRead(pool: [String: Int], buckets: [[String: Int]]) {
        self.pool = pool
        bucketRemaining = buckets
        var total = pool
        for bucket in buckets { total.merge(bucket, uniquingKeysWith: +) }
        remaining = total
    }

    /// Places of `slot` outside `bucket` as last read: in the pool and the
    /// other buckets (a spread campaign's).
    func placesOutside(bucket: Int, slot: String) -> Int {
        var places = pool[slot] ?? 0
        for (other, remaining) in bucketRemaining.enumerated() where other != bucket { places += remaining[slot] ?? 0 }
        return places
    }

    /// The route of a bucket's reservation ids.
    func route(ofBucket bucket: Int) -> UInt32? { route.map { layout.buckets.route(ofBucket: bucket, firstRoute: $0) } }

    /// Every route this campaign's ids may carry.
    var routes: [UInt32] { route.map { first in (0..<layout.buckets.count).map { layout.buckets.route(ofBucket: $0, firstRoute: first) } } ?? [] }

    /// `slot_full` answers rendered once per slot (ReservationDesk refuses a
    /// sold-out slot at the loop, at the rate of a read).
    private var soldOutAnswers: [String: Answer] = [:]

    func soldOutAnswer(_ slot: Slot) -> Answer {
        if let answer = soldOutAnswers[slot.id] { return answer }
        let problem = Problem.slotFull(slot.id)
        let answer = Answer.problem(problem, shared: SharedBytes(problem.body))
        soldOutAnswers[slot.id] = answer
        return answer
    }

    /// Builds a view from the hashes snapshot.lua returns; nil when the
    /// configuration is incomplete (a campaign being created).
    static func decode(id: String, version: String, config: [String: String], capacity: [String: String],
                       sites: [String: String], slots: [String: String], remaining: [String: Int]) -> CampaignView? {
        guard let campaign = RedisConfig.campaign(id: id, from: config) else { return nil }
        let siteList = sites.compactMap { RedisConfig.site(id: $0.key, metadata: $0.value) }.sorted { $0.id < $1.id }
        let slotList = slots.compactMap { entry in
            RedisConfig.slot(id: entry.key, metadata: entry.value, capacity: capacity[entry.key].flatMap { Int($0) } ?? 0)
        }.sorted { ($0.startsAtMillis, $0.id) < ($1.startsAtMillis, $1.id) }
        return CampaignView(version: version, campaign: campaign, route: RedisConfig.route(config["route"]), sites: siteList,
                            slots: slotList, remaining: remaining, rateLimits: RedisConfig.rateLimits(from: config))
    }
}
