import AllotDomain
import Logging
import RedisClient
import SQLiteStore

/// Operator changes: SQLite first (the record of truth for configuration),
/// then Redis (the record of truth for live counters). Every write is an
/// upsert, so an operator whose call failed half-way simply sends it again.
/// Runs on the admin worker thread only.
final class AdminStore {
    let database: SQLiteDatabase
    let redis: any RedisSyncRouting
    let logger: Logger
    /// Slots sent to Redis per script run (bounded script time).
    static let slotsPerScriptMax = 1_000

    init(database: SQLiteDatabase, redis: any RedisSyncRouting, logger: Logger) {
        self.database = database
        self.redis = redis
        self.logger = logger
    }

    func close() { redis.close() }

    // MARK: campaigns

    func loadCampaign(_ id: String) throws -> Campaign? {
        try StoredConfig(database: database).campaign(id)
    }

    /// Creates a campaign. A create that reached SQLite but not Redis is
    /// completed when it is sent again.
    func createCampaign(_ campaign: Campaign, by actor: String) throws -> Campaign {
        if let existing = try loadCampaign(campaign.id) {
            let keys = CampaignKeys(campaign.id)
            let inRedis = try redis.checked(["EXISTS", keys.config], slot: keys.slot).integer == 1
            guard !inRedis, existing == campaign else {
                throw Problem.invalidField("id", "campaign \(campaign.id) already exists")
            }
        } else {
            try checkSeries(of: campaign)
            let now = WallClock.nowMillis()
            try database.transaction {
                // The next routes, one per bucket: ids of this campaign's
                // reservations carry them.
                try database.statement("""
                    INSERT INTO campaigns (id, name, status, id_scheme, per_citizen_limit, opens_at, closes_at, created_at, updated_at,
                                           buckets, eligibility, series, lottery, hold_seconds, waitlist_offer_seconds, route)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(route + buckets - 1), 0) + 1 FROM campaigns))
                    """).run([.text(campaign.id), .text(campaign.name), .text(campaign.status.rawValue),
                              .text(campaign.idScheme.rawValue), .integer(Int64(campaign.perCitizenLimit)),
                              .integer(campaign.opensAtMillis), .integer(campaign.closesAtMillis), .integer(now), .integer(now),
                              .integer(Int64(campaign.buckets.count)), .text(campaign.eligibility.json),
                              campaign.series.map { .text($0.json) } ?? .null, campaign.lottery.map { .text($0.json) } ?? .null,
                              campaign.holdSeconds.map { .integer(Int64($0)) } ?? .null,
                              campaign.waitlist.map { .integer(Int64($0.offerSeconds)) } ?? .null])
                try audit(actor, "campaign.create", "campaign:\(campaign.id)", after: Self.auditJSON(campaign))
            }
        }
        for keys in CampaignLayout(campaign.id, buckets: campaign.buckets).bucketKeys {
            let group = try redis.command(["XGROUP", "CREATE", keys.stream, GlobalKeys.persistGroup, "0", "MKSTREAM"], slot: keys.slot)
            if let message = group.errorMessage, !message.hasPrefix("BUSYGROUP") { throw RedisError(message) }
        }
        // Last: the config hash is what makes the campaign exist in Redis.
        try pushCampaign(campaign)
        logger.info("campaign created", metadata: ["actor": "\(actor)", "campaign": "\(campaign.id)",
                                                   "status": "\(campaign.status.rawValue)"])
        return campaign
    }

    /// Every campaign of a series names the same limit and window, has as
    /// many buckets (a citizen's bucket, and so their ledger's shard, is then
    /// the same in all of them) and the same id scheme (one id, one citizen
    /// key: another scheme normalizes some ids otherwise).
    private func checkSeries(of campaign: Campaign) throws {
        guard let series = campaign.series else { return }
        for other in try StoredConfig(database: database).campaigns(inSeries: series.id) {
            guard other.series == series else {
                throw Problem.invalidField("series", "series \(series.id) has limit \(other.series?.limit ?? 0) and window_days "
                                           + "\(other.series?.windowDays ?? 0) (campaign \(other.id)); name the same")
            }
            guard other.buckets == campaign.buckets.count else {
                throw Problem.invalidField("buckets", "the campaigns of series \(series.id) have \(other.buckets) buckets; "
                                           + "this one must have as many")
            }
            guard other.idScheme == campaign.idScheme.rawValue else {
                throw Problem.invalidField("id_scheme", "the campaigns of series \(series.id) take \(other.idScheme) ids; "
                                           + "this one must too")
            }
        }
    }

    func patchCampaign(_ id: String, _ fields: Fields, by actor: String) throws -> Campaign {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        let next = try campaign.patched(with: fields)
        // A committed lottery's window is part of what was promised: a later
        // close would let in registrations the draw never sees.
        if next.opensAtMillis != campaign.opensAtMillis || next.closesAtMillis != campaign.closesAtMillis {
            try refuseIfDrawCommitted(id, "closes_at")
        }
        try database.transaction {
            try database.statement("""
                UPDATE campaigns SET name = ?, status = ?, per_citizen_limit = ?, opens_at = ?, closes_at = ?, eligibility = ?,
                                     updated_at = ?
                WHERE id = ?
                """).run([.text(next.name), .text(next.status.rawValue), .integer(Int64(next.perCitizenLimit)),
                          .integer(next.opensAtMillis), .integer(next.closesAtMillis), .text(next.eligibility.json),
                          .integer(WallClock.nowMillis()), .text(id)])
            try audit(actor, "campaign.patch", "campaign:\(id)", before: Self.auditJSON(campaign), after: Self.auditJSON(next))
        }
        try pushCampaign(next)
        logger.info("campaign changed", metadata: ["actor": "\(actor)", "campaign": "\(id)",
                                                   "status": "\(campaign.status.rawValue) -> \(next.status.rawValue)"])
        return next
    }

    /// Writes a campaign's configuration to Redis and puts it in the hot set
    /// (a closed campaign opened again is refreshed by the loops again).
    private func pushCampaign(_ campaign: Campaign) throws {
        guard let route = try StoredConfig(database: database).route(campaign.id),
              route + UInt32(campaign.buckets.count - 1) <= RouteCipher.routeMax else {
            throw RedisError("campaign \(campaign.id) has no route")
        }
        try redis.checkedPipeline(RedisConfig.publishCommands(campaign, route: route))
    }

    /// A campaign as stored (its status as set, not as in force now).
    static func auditJSON(_ campaign: Campaign) -> String {
        var json = JSONWriter()
        json.beginObject()
        json.field("name", campaign.name)
        json.field("status", campaign.status.rawValue)
        json.field("id_scheme", campaign.idScheme.rawValue)
        json.field("per_citizen_limit", campaign.perCitizenLimit)
        json.field("opens_at", Timestamp.format(millis: campaign.opensAtMillis, alwaysFraction: false))
        json.field("closes_at", Timestamp.format(millis: campaign.closesAtMillis, alwaysFraction: false))
        if campaign.buckets.count > 1 { json.field("buckets", campaign.buckets.count) }
        if !campaign.eligibility.isEmpty {
            json.key("eligibility")
            campaign.eligibility.write(to: &json)
        }
        if let series = campaign.series {
            json.key("series")
            series.write(to: &json)
        }
        if let lottery = campaign.lottery {
            json.key("lottery")
            lottery.write(to: &json)
        }
        if let holdSeconds = campaign.holdSeconds { json.field("hold_seconds", holdSeconds) }
        if let waitlist = campaign.waitlist {
            json.key("waitlist")
            waitlist.write(to: &json)
        }
        json.endObject()
        return json.text
    }

    /// Appends one audit row; inside the caller's transaction.
    func audit(_ actor: String, _ action: String, _ subject: String, before: String = "null", after: String = "null") throws {
        try AuditLog(database: database).append([AuditEntry(atMillis: WallClock.nowMillis(), actor: actor, action: action,
                                                            subject: subject, before: before, after: after)])
    }


    // MARK: sites, slots, rate limits

    /// Returns how many sites were written.
    func putSites(_ id: String, _ sites: [Site], by actor: String) throws -> Int {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        try refuseIfDrawCommitted(id, "sites")
        try database.transaction {
            let existing = try database.statement("SELECT name, address FROM sites WHERE campaign_id = ? AND id = ?")
            var before = JSONWriter(), after = JSONWriter()
            before.beginObject(); after.beginObject()
            for site in sites {
                if let old = try existing.rows([.text(id), .text(site.id)], { Site(id: site.id, name: $0.text(0), address: $0.text(1)) }).first {
                    before.key(site.id); before.raw(RedisConfig.siteMetadata(old))
                }
                after.key(site.id); after.raw(RedisConfig.siteMetadata(site))
            }
            before.endObject(); after.endObject()
            try audit(actor, "sites.put", "campaign:\(id)", before: before.text, after: after.text)
            let upsert = try database.statement("""
                INSERT INTO sites (campaign_id, id, name, address) VALUES (?, ?, ?, ?)
                ON CONFLICT (campaign_id, id) DO UPDATE SET name = excluded.name, address = excluded.address
                """)
            for site in sites { try upsert.run([.text(id), .text(site.id), .text(site.name), .text(site.address)]) }
        }
        let keys = CampaignKeys(id)
        if !sites.isEmpty {
            try redis.checked(["HSET", keys.sites] + sites.flatMap { [$0.id, RedisConfig.siteMetadata($0)] }, slot: keys.slot)
        }
        try redis.checkedPipeline([RoutedCommand(slot: keys.slot, ["HINCRBY", keys.config, "ver", "1"])]
                                  + HotSet.joinCommands(campaign.layout))
        logger.info("sites put", metadata: ["actor": "\(actor)", "campaign": "\(id)", "count": "\(sites.count)"])
        return sites.count
    }

    /// Returns the slots whose capacity Redis kept above the one asked for
    /// (places already taken), with the capacity in force.
    func putSlots(_ id: String, _ slots: [Slot], by actor: String) throws -> [(slot: String, capacity: Int)] {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        try refuseIfDrawCommitted(id, "slots")
        let knownSites = Set(try database.statement("SELECT id FROM sites WHERE campaign_id = ?").rows([.text(id)]) { $0.text(0) })
        for (index, slot) in slots.enumerated() where !knownSites.contains(slot.siteID) {
            throw Problem.invalidField("slots[\(index)].site_id", "no site \(slot.siteID) in this campaign")
        }
        try upsertSlots(id, slots, by: actor, action: "slots.put")
        var effective: [Int] = []
        for chunk in stride(from: 0, to: slots.count, by: Self.slotsPerScriptMax) {
            let part = slots[chunk..<min(slots.count, chunk + Self.slotsPerScriptMax)]
            effective += try pushSlots(campaign.layout, Array(part), withMetadata: true)
            if campaign.waitlist != nil { try pushWaitlistSites(campaign.layout, Array(part)) }
        }
        let raised = try recordRaisedCapacities(id, slots, effective)
        try makeHot(campaign.layout)
        logger.info("slots put", metadata: ["actor": "\(actor)", "campaign": "\(id)", "count": "\(slots.count)",
                                            "raised": "\(raised.count)"])
        return raised
    }

    /// Returns the slot with the capacity in force, and its remaining places.
    func patchSlotCapacity(_ id: String, slot slotID: String, capacity: Int, by actor: String) throws -> (slot: Slot, remaining: Int) {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        try refuseIfDrawCommitted(id, "capacity")
        let rows = try database.statement(
            "SELECT site_id, starts_at, ends_at FROM slots WHERE campaign_id = ? AND id = ?"
        ).rows([.text(id), .text(slotID)]) { row in
            Slot(id: slotID, siteID: row.text(0), startsAtMillis: row.int(1), endsAtMillis: row.int(2), capacity: capacity)
        }
        guard let slot = rows.first else { throw Problem.notFound("no such slot") }
        try upsertSlots(id, [slot], by: actor, action: "slot.capacity")
        let effective = try pushSlots(campaign.layout, [slot], withMetadata: false)
        _ = try recordRaisedCapacities(id, [slot], effective)
        try makeHot(campaign.layout)
        let remaining = try remainingPlaces(campaign.layout, slot: slotID)
        logger.info("slot capacity changed", metadata: ["actor": "\(actor)", "campaign": "\(id)", "slot": "\(slotID)",
                                                        "capacity": "\(effective[0])"])
        var inForce = slot
        inForce.capacity = effective[0]
        return (inForce, Int(clamping: remaining))
    }

    /// Puts a campaign back in the hot set: the loops refresh what operators
    /// change, even on a campaign whose booking has ended.
    private func makeHot(_ layout: CampaignLayout) throws {
        try redis.checkedPipeline(HotSet.joinCommands(layout))
    }

    /// A slot's places left: the pool's and every bucket's (a move under
    /// way for a few milliseconds is not counted).
    func remainingPlaces(_ layout: CampaignLayout, slot: String) throws -> Int {
        let places = [RoutedCommand(slot: layout.home.slot, ["HGET", layout.unassignedPlaces, slot])]
            + (layout.isSpread ? layout.bucketKeys.map { RoutedCommand(slot: $0.slot, ["HGET", $0.remaining, slot]) } : [])
        return try redis.checkedPipeline(places).reduce(0) { $0 + Int(clamping: $1.integer ?? 0) }
    }

    /// Gives every campaign in Redis its route, for data written before
    /// routes existed (Schema.addRoutes gave them one in SQLite). Once, at
    /// start; a campaign Redis does not hold is left to `allot recover`.
    func publishMissingRoutes() throws {
        let config = StoredConfig(database: database)
        let ids = try config.campaignIDs()
        for start in stride(from: 0, to: ids.count, by: 1_000) {
            let chunk = Array(ids[start..<min(ids.count, start + 1_000)])
            // [route, ver] per campaign: a hash without `ver` is not in Redis.
            let replies = try redis.pipeline(chunk.map { id in
                let keys = CampaignKeys(id)
                return RoutedCommand(slot: keys.slot, ["HMGET", keys.config, "route", "ver"])
            })
            for (id, reply) in zip(chunk, replies) {
                guard let fields = reply.elements, fields.count == 2, fields[0] == .null, fields[1] != .null,
                      let route = try config.route(id) else { continue }
                let keys = CampaignKeys(id)
                try redis.checkedPipeline([RoutedCommand(slot: keys.slot, ["HSET", keys.config, "route", String(route)]),
                                           RoutedCommand(slot: keys.slot, ["HINCRBY", keys.config, "ver", "1"]),
                                           RoutedCommand(slot: GlobalKeys.routesSlot, ["HSET", GlobalKeys.routes, String(route), id])])
                logger.info("route published", metadata: ["campaign": "\(id)", "route": "\(route)"])
            }
        }
    }

    /// Writes slots and their audit row (capacities before → after) in one transaction.
    private func upsertSlots(_ id: String, _ slots: [Slot], by actor: String, action: String) throws {
        try database.transaction {
            let existing = try database.statement("SELECT capacity FROM slots WHERE campaign_id = ? AND id = ?")
            var before = JSONWriter(), after = JSONWriter()
            before.beginObject(); after.beginObject()
            for slot in slots {
                if let old = try existing.rows([.text(id), .text(slot.id)], { $0.int(0) }).first {
                    before.key(slot.id); before.number(Int(old))
                }
                after.key(slot.id); after.number(slot.capacity)
            }
            before.endObject(); after.endObject()
            try audit(actor, action, "campaign:\(id)", before: before.text, after: after.text)
            let upsert = try database.statement("""
                INSERT INTO slots (campaign_id, id, site_id, starts_at, ends_at, capacity) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (campaign_id, id) DO UPDATE SET site_id = excluded.site_id, starts_at = excluded.starts_at,
                  ends_at = excluded.ends_at, capacity = excluded.capacity
                """)
            for slot in slots {
                try upsert.run([.text(id), .text(slot.id), .text(slot.siteID), .integer(slot.startsAtMillis),
                                .integer(slot.endsAtMillis), .integer(Int64(slot.capacity))])
            }
        }
    }

    /// Capacities go to the home; a change moves the places not handed out
    /// (the pool, with several buckets), so places a bucket holds are not
    /// taken back: the capacity in force is at least what was handed out.
    private func pushSlots(_ layout: CampaignLayout, _ slots: [Slot], withMetadata: Bool) throws -> [Int] {
        let keys = layout.home
        let arguments = slots.flatMap { [$0.id, String($0.capacity), withMetadata ? RedisConfig.slotMetadata($0) : ""] }
        let reply = try redis.run(Scripts.putSlots, slot: keys.slot,
                                  keys: [keys.config, layout.unassignedPlaces, keys.capacity, keys.slots], arguments: arguments)
        guard let values = reply.elements?.compactMap(\.integer), values.count == slots.count else {
            throw RedisError(reply.errorMessage ?? "put_slots: bad reply")
        }
        return values.map { Int($0) }
    }

    /// A campaign with a waitlist: each bucket's line knows every slot's
    /// site (waitlist_serve offers a site's line its slots, and reserve.lua
    /// and debit.lua keep a slot's places for its site's line), so a slot
    /// added to a site, or moved to another, is served with it.
    private func pushWaitlistSites(_ layout: CampaignLayout, _ slots: [Slot]) throws {
        try redis.checkedPipeline(RedisConfig.waitlistSiteCommands(layout, slots))
    }

    /// Where Redis kept a capacity above the one asked for (places already
    /// taken), SQLite records the capacity in force.
    private func recordRaisedCapacities(_ id: String, _ slots: [Slot], _ effective: [Int]) throws -> [(String, Int)] {
        let raised = zip(slots, effective).filter { $0.0.capacity != $0.1 }.map { ($0.0.id, $0.1) }
        guard !raised.isEmpty else { return [] }
        try database.transaction {
            let update = try database.statement("UPDATE slots SET capacity = ? WHERE campaign_id = ? AND id = ?")
            var after = JSONWriter()
            after.beginObject()
            for (slot, capacity) in raised {
                try update.run([.integer(Int64(capacity)), .text(id), .text(slot)])
                after.key(slot); after.number(capacity)
            }
            after.endObject()
            // Not the operator's doing: the places already taken held the capacity up.
            try audit("system", "slots.capacity_held", "campaign:\(id)", after: after.text)
        }
        return raised
    }

    func putRateLimits(_ id: String, _ limits: RateLimits, by actor: String) throws -> RateLimits {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        var json = JSONWriter()
        limits.write(to: &json)
        try database.transaction {
            let before = try database.statement("SELECT rate_limits FROM campaigns WHERE id = ?").rows([.text(id)]) { $0.text(0) }
            try database.statement("UPDATE campaigns SET rate_limits = ?, updated_at = ? WHERE id = ?")
                .run([.text(json.text), .integer(WallClock.nowMillis()), .text(id)])
            try audit(actor, "rate_limits.put", "campaign:\(id)", before: before.first ?? "null", after: json.text)
        }
        let layout = campaign.layout
        try redis.checkedPipeline(RedisConfig.rateLimitCommands(layout, limits)
                                  + [RoutedCommand(slot: layout.home.slot, ["HINCRBY", layout.home.config, "ver", "1"])]
                                  + HotSet.joinCommands(layout))
        logger.info("rate limits changed", metadata: ["actor": "\(actor)", "campaign": "\(id)", "limits": "\(json.text)"])
        return limits
    }
}
