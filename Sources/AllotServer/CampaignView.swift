import AllotDomain
import RedisClient

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

    init(version: String, campaign: Campaign, sites: [Site], slots: [Slot], remaining: [String: Int]) {
        self.version = version
        self.campaign = campaign
        self.sites = sites
        self.slots = slots
        self.remaining = remaining
        keys = CampaignKeys(campaign.id)
        var index: [String: Int] = [:]
        for (position, slot) in slots.enumerated() { index[slot.id] = position }
        slotIndex = index
    }

    func slot(_ id: String) -> Slot? { slotIndex[id].map { slots[$0] } }

    // MARK: decoding the snapshot script's reply

    /// Builds a view from the hashes snapshot.lua returns; nil when the
    /// configuration is incomplete (a campaign being created).
    static func decode(id: String, version: String, config: [String: String], capacity: [String: String],
                       sites: [String: String], slots: [String: String], remaining: [String: Int]) -> CampaignView? {
        guard let statusText = config["status"], let status = CampaignStatus(rawValue: statusText),
              let scheme = config["scheme"].flatMap(IDScheme.init(rawValue:)),
              let limit = config["limit"].flatMap({ Int($0) }),
              let opens = config["opens"].flatMap({ Int64($0) }), let closes = config["closes"].flatMap({ Int64($0) })
        else { return nil }
        let campaign = Campaign(id: id, name: config["name"] ?? id, status: status, idScheme: scheme,
                                perCitizenLimit: limit, opensAtMillis: opens, closesAtMillis: closes)
        let siteList = sites.compactMap { decodeSite(id: $0.key, json: $0.value) }.sorted { $0.id < $1.id }
        let slotList = slots.compactMap { entry in
            decodeSlot(id: entry.key, json: entry.value, capacity: capacity[entry.key].flatMap { Int($0) } ?? 0)
        }.sorted { ($0.startsAtMillis, $0.id) < ($1.startsAtMillis, $1.id) }
        return CampaignView(version: version, campaign: campaign, sites: siteList, slots: slotList, remaining: remaining)
    }

    static func decodeSite(id: String, json: String) -> Site? {
        guard let value = try? JSONParser.parse(Array(json.utf8)),
              case .string(let name)? = value["name"], case .string(let address)? = value["address"] else { return nil }
        return Site(id: id, name: name, address: address)
    }

    static func decodeSlot(id: String, json: String, capacity: Int) -> Slot? {
        guard let value = try? JSONParser.parse(Array(json.utf8)), case .string(let site)? = value["site_id"],
              case .number(let starts)? = value["starts"], case .number(let ends)? = value["ends"] else { return nil }
        return Slot(id: id, siteID: site, startsAtMillis: Int64(starts), endsAtMillis: Int64(ends), capacity: capacity)
    }

    /// The metadata JSON stored per slot in Redis.
    static func slotMetadata(_ slot: Slot) -> String {
        var json = JSONWriter(capacity: 96)
        json.beginObject()
        json.field("site_id", slot.siteID)
        json.key("starts"); json.number(Int(slot.startsAtMillis))
        json.key("ends"); json.number(Int(slot.endsAtMillis))
        json.endObject()
        return json.text
    }

    static func siteMetadata(_ site: Site) -> String {
        var json = JSONWriter(capacity: 96)
        json.beginObject()
        json.field("name", site.name)
        json.field("address", site.address)
        json.endObject()
        return json.text
    }
}

extension RedisReply {
    var integerPairs: [String: Int] {
        guard let elements, elements.count % 2 == 0 else { return [:] }
        var result: [String: Int] = [:]
        result.reserveCapacity(elements.count / 2)
        for index in stride(from: 0, to: elements.count, by: 2) {
            if let key = elements[index].text, let value = elements[index + 1].integer { result[key] = Int(value) }
        }
        return result
    }
}
