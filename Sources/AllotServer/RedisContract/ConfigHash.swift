import RedisClient
import AllotDomain

/// How configuration is laid out in Redis: a campaign's config hash (read
/// by reserve.lua and the snapshot) and the JSON kept per site and slot.
/// Written by operators' changes and by `allot recover`, read by the loops.
enum RedisConfig {
    /// What reserve.lua and retire.lua read of a campaign, in every bucket
    /// (`hold`: a hold's length in ms, 0 for none).
    static func bookingFields(_ campaign: Campaign) -> [String] {
        ["status", campaign.status.rawValue, "opens", String(campaign.opensAtMillis),
         "closes", String(campaign.closesAtMillis), "limit", String(campaign.perCitizenLimit), "alloc", campaign.allocation.rawValue,
         "hold", String(campaign.holdMillis), "wl_offer", String(campaign.offerMillis)]
    }

    /// The home's config hash: everything, with the first route and the buckets.
    static func campaignFields(_ campaign: Campaign, route: UInt32) -> [String] {
        bookingFields(campaign) + ["scheme", campaign.idScheme.rawValue, "name", campaign.name, "route", String(route),
                                   "buckets", String(campaign.buckets.count), "elig", campaign.eligibility.json]
            + (campaign.series.map { ["series", $0.json] } ?? []) + (campaign.lottery.map { ["lottery", $0.json] } ?? [])
    }

    /// Writes a campaign's configuration (and its rate limits, when given),
    /// its routes, and puts it in the hot set that the loops and the
    /// persister follow. First the retired marks go (HotSet.swift: a bucket
    /// is never open while marked), then the buckets' copies, then the
    /// home's config hash: a loop that sees the campaign finds every bucket
    /// ready, and the routes and the set never name a campaign Redis does
    /// not have.
    static func publishCommands(_ campaign: Campaign, route: UInt32, rateLimits: RateLimits? = nil) -> [RoutedCommand] {
        let layout = CampaignLayout(campaign.id, buckets: campaign.buckets)
        var commands = HotSet.clearMarks(layout)
        if layout.isSpread {
            for keys in layout.bucketKeys {
                commands.append(RoutedCommand(slot: keys.slot, ["HSET", keys.config] + bookingFields(campaign)))
            }
        }
        commands.append(RoutedCommand(slot: layout.home.slot, ["HSET", layout.home.config] + campaignFields(campaign, route: route)))
        if let rateLimits { commands += rateLimitCommands(layout, rateLimits) }
        commands.append(RoutedCommand(slot: layout.home.slot, ["HINCRBY", layout.home.config, "ver", "1"]))
        for bucket in 0..<campaign.buckets.count {
            let bucketRoute = campaign.buckets.route(ofBucket: bucket, firstRoute: route)
            commands.append(RoutedCommand(slot: GlobalKeys.routesSlot, ["HSET", GlobalKeys.routes, String(bucketRoute),
                                                                        routeValue(campaign.id, bucket: bucket, of: campaign.buckets)]))
        }
        return commands + [HotSet.addCommand(campaign.id)]
    }

    /// What the routes hash holds for a bucket's route: the campaign id,
    /// and for a spread campaign `|<bucket>|<buckets>` (and `|<series>` for
    /// a series' campaign), so a lookup finds the bucket's keys with no
    /// other read.
    static func routeValue(_ campaign: String, bucket: Int, of buckets: CampaignBuckets) -> String {
        guard buckets.isSpread else { return campaign }
        return campaign + "|" + String(bucket) + "|" + String(buckets.count) + (buckets.series.map { "|" + $0 } ?? "")
    }

    /// A routes hash value: the campaign, and its bucket when spread.
    static func routeTarget(_ value: String) -> RouteTarget? {
        let parts = value.split(separator: "|", omittingEmptySubsequences: false)
        guard let campaign = parts.first.map(String.init), OperatorID.isValid(campaign) else { return nil }
        guard parts.count == 3 || parts.count == 4 else {
            return parts.count == 1 ? RouteTarget(campaign: campaign, spreadBucket: nil, buckets: .single) : nil
        }
        guard let count = Int(parts[2]), let buckets = CampaignBuckets(count, series: parts.count == 4 ? String(parts[3]) : nil),
              let bucket = Int(parts[1]), bucket >= 0, bucket < count else { return nil }
        return RouteTarget(campaign: campaign, spreadBucket: bucket, buckets: buckets)
    }

    /// Sets a campaign's rate limits: the home keeps them as configured;
    /// each bucket gets its share of the global one (CampaignBuckets.share)
    /// and the per-address and per-citizen ones whole (each bucket checks
    /// its own citizens; an address is counted per bucket, README).
    static func rateLimitCommands(_ layout: CampaignLayout, _ limits: RateLimits) -> [RoutedCommand] {
        var targets = [(layout.home, limits)]
        if layout.isSpread {
            var shared = limits
            shared.global = limits.global.map { layout.buckets.share(of: $0) }
            targets += layout.bucketKeys.map { ($0, shared) }
        }
        return targets.flatMap { keys, limits in
            let (set, unset) = rateLimitFields(limits)
            // HSET and HDEL without fields are errors: send only the ones with some.
            return [["HSET", keys.config] + set, ["HDEL", keys.config] + unset].filter { $0.count > 2 }
                .map { RoutedCommand(slot: keys.slot, $0) }
        }
    }

    /// A route as the config hash or the routes hash holds it.
    static func route(_ text: String?) -> UInt32? {
        guard let text, let route = UInt32(text), route >= 1, route <= RouteCipher.routeMax else { return nil }
        return route
    }

    private static let rateLimitPrefixes: [(BucketName, String)] = [(.global, "g"), (.ip, "ip"), (.citizen, "c")]

    /// The rate limits a config hash holds (as `rateLimitFields` wrote them;
    /// a bucket with a field missing or out of range: unlimited).
    static func rateLimits(from config: [String: String]) -> RateLimits {
        var limits = RateLimits()
        for (bucket, prefix) in rateLimitPrefixes {
            guard let rate = config[prefix + "_rate"].flatMap(Double.init), let burst = config[prefix + "_burst"].flatMap(Double.init),
                  let policy = BucketPolicy(rate: rate, burst: burst) else { continue }
            switch bucket {
            case .global: limits.global = policy
            case .ip: limits.ip = policy
            case .citizen: limits.citizen = policy
            }
        }
        return limits
    }

    /// Fields to set (configured buckets) and to delete (unlimited ones).
    static func rateLimitFields(_ limits: RateLimits) -> (set: [String], unset: [String]) {
        var set: [String] = [], unset: [String] = []
        for (bucket, prefix) in rateLimitPrefixes {
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
              Timestamp.isInRange(opens), Timestamp.isInRange(closes),
              // Rules that do not parse: the campaign is not shown, and not
              // booked, rather than booked without them (fail closed).
              let eligibility = config["elig"].map(EligibilityRules.stored) ?? EligibilityRules.none,
              // A series that does not parse: the keys' layout is unknown.
              case let series = config["series"].map(CampaignSeries.stored), series != .some(nil),
              case let lottery = config["lottery"].map(LotterySettings.stored), lottery != .some(nil),
              case let holdMillis = config["hold"].map({ Int64($0) }) ?? 0, let holdMillis,
              holdMillis % 1_000 == 0, holdMillis == 0 || Campaign.holdSecondsRange.contains(Int(holdMillis / 1_000)),
              case let offerMillis = config["wl_offer"].map({ Int64($0) }) ?? 0, let offerMillis, offerMillis % 1_000 == 0,
              offerMillis == 0 || WaitlistSettings.offerSecondsRange.contains(Int(offerMillis / 1_000))
        else { return nil }
        return Campaign(id: id, name: config["name"] ?? id, status: status, idScheme: scheme,
                        perCitizenLimit: limit, opensAtMillis: opens, closesAtMillis: closes,
                        buckets: config["buckets"].flatMap { Int($0) }.flatMap { CampaignBuckets($0) } ?? .single,
                        eligibility: eligibility, series: series ?? nil, lottery: lottery ?? nil,
                        holdSeconds: holdMillis > 0 ? Int(holdMillis / 1_000) : nil,
                        // A lottery's line is its entries (Campaign.offerMillis), not a setting.
                        waitlist: offerMillis > 0 && config["alloc"] != Allocation.lottery.rawValue
                            ? WaitlistSettings(offerSeconds: Int(offerMillis / 1_000)) : nil)
    }

    // MARK: sites and slots

    /// A campaign with a waitlist: each bucket's lines know every slot's
    /// site (`wlsite`) and each site's slots (`wlss:<site>`), written as
    /// slots are put and on recovery (waitlist.lua). A slot moved to
    /// another site stays in its old site's set until a sweep drops it.
    static func waitlistSiteCommands(_ layout: CampaignLayout, _ slots: [Slot]) -> [RoutedCommand] {
        guard !slots.isEmpty else { return [] }
        let bySite = Dictionary(grouping: slots, by: \.siteID)
        return layout.bucketKeys.flatMap { keys in
            [RoutedCommand(slot: keys.slot, ["HSET", keys.waitSites] + slots.flatMap { [$0.id, $0.siteID] })]
                + bySite.keys.sorted().map { site in
                    RoutedCommand(slot: keys.slot, ["SADD", keys.waitSiteSlots(site)] + bySite[site]!.map(\.id))
                }
        }
    }

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
