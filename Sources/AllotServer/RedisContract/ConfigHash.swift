import RedisClient
import AllotDomain

/// How configuration is laid out in Redis: a campaign's config hash (read
/// by reserve.lua and the snapshot) and the JSON kept per site and slot.
/// Written by operators' changes and by `allot recover`, read by the loops.
enum RedisConfig {
    static func campaignFields(_ campaign: Campaign, route: UInt32) -> [String] {
        ["status", campaign.status.rawValue, "opens", String(campaign.opensAtMillis),
         "closes", String(campaign.closesAtMillis), "limit", String(campaign.perCitizenLimit),
         "scheme", campaign.idScheme.rawValue, "name", campaign.name, "route", String(route)]
    }

    /// Writes a campaign's configuration (and `extraFields`, such as rate
    /// limits), its route, and puts it in the hot set that the loops and the
    /// persister follow. The config hash comes first: the route and the set
    /// never name a campaign Redis does not have.
    static func publishCommands(_ campaign: Campaign, route: UInt32, extraFields: [String]) -> [RoutedCommand] {
        let keys = CampaignKeys(campaign.id)
        return [
            RoutedCommand(slot: keys.slot, ["HSET", keys.config] + campaignFields(campaign, route: route) + extraFields),
            RoutedCommand(slot: keys.slot, ["HINCRBY", keys.config, "ver", "1"]),
            RoutedCommand(slot: GlobalKeys.routesSlot, ["HSET", GlobalKeys.routes, String(route), campaign.id]),
        ] + HotSet.joinCommands(campaign.id)
    }

    /// A route as the config hash or the routes hash holds it.
    static func route(_ text: String?) -> UInt32? {
        guard let text, let route = UInt32(text), route >= 1, route <= RouteCipher.routeMax else { return nil }
        return route
    }

    /// Fields to set (configured buckets) and to delete (unlimited ones).
    static func rateLimitFields(_ limits: RateLimits) -> (set: [String], unset: [String]) {
        var set: [String] = [], unset: [String] = []
        for (bucket, prefix) in [(BucketName.global, "g"), (.ip, "ip"), (.citizen, "c")] {
            if let policy = limits[bucket] {
                set += [prefix + "_rate", String(policy.rate), prefix + "_burst", String(policy.burst)]
            } else {
                unset += [prefix + "_rate", prefix + "_burst"]
            }
        }
        return (set, unset)
    }

    /// The campaign a config hash describes; nil while it is incomplete (a
    /// campaign being created or recovered).
    static func campaign(id: String, from config: [String: String]) -> Campaign? {
        guard let status = config["status"].flatMap(CampaignStatus.init(rawValue:)),
              let scheme = config["scheme"].flatMap(IDScheme.init(rawValue:)),
              let limit = config["limit"].flatMap({ Int($0) }),
              let opens = config["opens"].flatMap({ Int64($0) }), let closes = config["closes"].flatMap({ Int64($0) }),
              Timestamp.isInRange(opens), Timestamp.isInRange(closes)
        else { return nil }
        return Campaign(id: id, name: config["name"] ?? id, status: status, idScheme: scheme,
                        perCitizenLimit: limit, opensAtMillis: opens, closesAtMillis: closes)
    }

    // MARK: sites and slots

    static func siteMetadata(_ site: Site) -> String {
        var json = JSONWriter(capacity: 96)
        json.beginObject()
        json.field("name", site.name)
        json.field("address", site.address)
        json.endObject()
        return json.text
    }

    static func site(id: String, metadata: String) -> Site? {
        guard let value = try? JSONParser.parse(Array(metadata.utf8)),
              case .string(let name)? = value["name"], case .string(let address)? = value["address"] else { return nil }
        return Site(id: id, name: name, address: address)
    }

    /// The metadata JSON stored per slot (its capacity lives in its own hash).
    static func slotMetadata(_ slot: Slot) -> String {
        var json = JSONWriter(capacity: 96)
        json.beginObject()
        json.field("site_id", slot.siteID)
        json.key("starts"); json.number(Int(slot.startsAtMillis))
        json.key("ends"); json.number(Int(slot.endsAtMillis))
        json.endObject()
        return json.text
    }

    static func slot(id: String, metadata: String, capacity: Int) -> Slot? {
        guard let value = try? JSONParser.parse(Array(metadata.utf8)), case .string(let site)? = value["site_id"],
              case .number(let starts)? = value["starts"], case .number(let ends)? = value["ends"],
              starts >= 0, ends >= 0, starts <= Double(Timestamp.millisMax), ends <= Double(Timestamp.millisMax)
        else { return nil }
        return Slot(id: id, siteID: site, startsAtMillis: Int64(starts), endsAtMillis: Int64(ends), capacity: capacity)
    }
}
