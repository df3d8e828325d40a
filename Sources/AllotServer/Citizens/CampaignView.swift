import AllotDomain
import EventHTTP

/// One campaign as a loop last read it from Redis: configuration, sites,
/// slots and the remaining places. Immutable but for `remaining`, which each
/// refresh replaces.
final class CampaignView {
    let version: String
    let campaign: Campaign
    /// Sorted by id, for stable listings.
    let sites: [Site]
    let slots: [Slot]
    let slotIndex: [String: Int]
    var remaining: [String: Int]
    let keys: CampaignKeys
    /// What its reservation ids carry (RouteCipher); nil only for data
    /// written before routes, until the admin worker publishes one.
    let route: UInt32?

    init(version: String, campaign: Campaign, route: UInt32?, sites: [Site], slots: [Slot], remaining: [String: Int]) {
        self.version = version
        self.campaign = campaign
        self.route = route
        self.sites = sites
        self.slots = slots
        self.remaining = remaining
        keys = CampaignKeys(campaign.id)
        var index: [String: Int] = [:]
        for (position, slot) in slots.enumerated() { index[slot.id] = position }
        slotIndex = index
    }

    func slot(_ id: String) -> Slot? { slotIndex[id].map { slots[$0] } }

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
                            slots: slotList, remaining: remaining)
    }
}
