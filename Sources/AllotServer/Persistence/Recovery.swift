import AllotDomain
import Logging
import RedisClient
import SQLiteStore

/// `allot recover`: rebuilds the Redis state of every campaign from SQLite
/// after Redis lost its data (DESIGN.md: SQLite is the record of truth for
/// configuration and, once persisted, for reservations).
///
/// A campaign whose config hash is still in Redis is left alone: its live
/// counters are newer than SQLite. For the others, everything is written
/// first and the config hash last, because reserve.lua answers "no such
/// campaign" without it: no reservation can run on a half-rebuilt state.
/// What Redis held but SQLite did not (events not yet persisted when the
/// data was lost, rejection counters, idempotency keys, token buckets)
/// cannot come back.
public struct Recovery {
    public struct CampaignReport: Sendable {
        public let campaign: String
        /// False: Redis still had it, so it was left as it was (or, see
        /// `notRebuilt`, only part of it).
        public let rebuilt: Bool
        /// Why a campaign Redis holds only part of was not rebuilt.
        public var notRebuilt: String? = nil
        /// What of a rebuilt campaign did not come back, and why.
        public var leftOut: String? = nil
        public let slots: Int
        public let reservations: Int
        public let placesTaken: Int
    }

    static let commandsPerPipeline = 1_000
    private let database: SQLiteDatabase
    private let redis: any RedisSyncRouting
    private let logger: Logger

    /// Makes offer ids for a lottery's line (nil: the line is not rebuilt).
    private let routes: RouteCipher?

    /// `citizenSecret`: the servers' (CitizenSecret), for the ids of a
    /// lottery's offers from its line; without it the line stays empty.
    public init(databasePath: String, redis: RedisDeployment, logger: Logger, citizenSecret: [UInt8]? = nil) throws {
        routes = citizenSecret.map { RouteCipher(secret: $0) }
        database = try Schema.open(path: databasePath)
        self.redis = redis.blockingClient(timeoutMillis: 30_000)
        self.logger = logger
    }

    public func run() throws -> [CampaignReport] {
        defer { redis.close() }
        let config = StoredConfig(database: database)
        return try config.campaignIDs().map { try recover($0, config) }
    }

    private func recover(_ id: String, _ config: StoredConfig) throws -> CampaignReport {
        guard let campaign = try config.campaign(id) else { throw RedisError("campaign \(id) vanished from SQLite") }
        let layout = campaign.layout
        let keys = layout.home
        // A spread campaign's home and buckets may be on different masters,
        // and a cluster may lose some of them.
        let present = try ([keys] + (layout.isSpread ? layout.bucketKeys : [])).map {
            try redis.checked(["EXISTS", $0.config], slot: $0.slot).integer == 1
        }
        if present.allSatisfy({ $0 }) {
            logger.info("campaign present in Redis, left alone", metadata: ["campaign": "\(id)"])
            return CampaignReport(campaign: id, rebuilt: false, slots: 0, reservations: 0, placesTaken: 0)
        }
        if present.contains(true) {
            // What the surviving buckets hold (places, holdings, and events
            // SQLite may not have yet) cannot be reconciled from SQLite alone:
            // rebuilding would oversell. Refused, loudly.
            let lost = zip(["home"] + (0..<layout.bucketKeys.count).map { "bucket \($0)" }, present).filter { !$0.1 }.map(\.0)
            logger.error("campaign partly lost in Redis, not rebuilt", metadata: ["campaign": "\(id)", "lost": "\(lost)"])
            var report = CampaignReport(campaign: id, rebuilt: false, slots: 0, reservations: 0, placesTaken: 0)
            report.notRebuilt = "partly lost (\(lost.joined(separator: ", "))); not rebuilt, as the rest may hold what SQLite has not"
            return report
        }
        // Leftovers of an earlier, interrupted recovery are rebuilt from
        // scratch; a bucket's config copy goes first (no booking there).
        try redis.checked(["DEL", keys.remaining, keys.capacity, keys.holdings, keys.records, keys.stats,
                           keys.sites, keys.slots, keys.pool, keys.transfers, keys.holds, keys.holders, keys.waitlist, keys.waiters,
                           keys.waitlistSequence, keys.waitTargets, keys.waitSites], slot: keys.slot)
        if layout.isSpread {
            for bucket in layout.bucketKeys {
                try redis.checked(["DEL", bucket.config, bucket.remaining, bucket.holdings, bucket.records, bucket.stats,
                                   bucket.transfers, bucket.holds, bucket.holders, bucket.waitlist, bucket.waiters,
                                   bucket.waitlistSequence, bucket.waitTargets, bucket.waitSites], slot: bucket.slot)
            }
        }

        let reservations = try restoreRecords(layout)
        try restoreHoldings(layout)
        if let series = campaign.series { try restoreSeriesLedgers(layout, series, config) }
        let slots = try config.slots(id)
        // A lottery's offers from its line are waitlist entries too.
        if campaign.waitlist != nil || campaign.allocation == .lottery { try restoreWaitlist(layout, slots: slots) }
        var leftOut: String? = nil
        if campaign.allocation == .lottery { leftOut = try restoreLottery(campaign, route: try config.route(id)) }
        let taken = try placesTaken(id)
        // Every place not taken goes back where places wait to be handed
        // out (the pool, with several buckets): the buckets refill from it.
        var commands: [[String]] = []
        for slot in slots {
            let capacity = max(slot.capacity, taken[slot.id] ?? 0)
            commands.append(["HSET", keys.capacity, slot.id, String(capacity)])
            commands.append(["HSET", layout.unassignedPlaces, slot.id, String(capacity - (taken[slot.id] ?? 0))])
            commands.append(["HSET", keys.slots, slot.id, RedisConfig.slotMetadata(slot)])
        }
        for site in try config.sites(id) {
            commands.append(["HSET", keys.sites, site.id, RedisConfig.siteMetadata(site)])
        }
        let counts = try statusCounts(id)
        commands.append(["HSET", keys.stats, "cancelled", String(counts["cancelled"] ?? 0),
                         "redeemed", String(counts["redeemed"] ?? 0), "expired", String(counts["expired"] ?? 0)])
        try send(commands.map { RoutedCommand(slot: keys.slot, $0) })

        for bucket in layout.bucketKeys {
            let group = try redis.command(["XGROUP", "CREATE", bucket.stream, GlobalKeys.persistGroup, "$", "MKSTREAM"],
                                          slot: bucket.slot)
            if let message = group.errorMessage, !message.hasPrefix("BUSYGROUP") { throw RedisError(message) }
        }
        // Last: the config hashes open the campaign to reservations again.
        guard let route = try config.route(id) else { throw RedisError("campaign \(id) has no route in SQLite") }
        try redis.checkedPipeline(RedisConfig.publishCommands(campaign, route: route, rateLimits: try config.rateLimits(id)))
        let placesTaken = taken.values.reduce(0, +)
        logger.info("campaign rebuilt in Redis", metadata: [
            "campaign": "\(id)", "slots": "\(slots.count)", "reservations": "\(reservations)", "places_taken": "\(placesTaken)",
        ])
        var report = CampaignReport(campaign: id, rebuilt: true, slots: slots.count, reservations: reservations,
                                    placesTaken: placesTaken)
        report.leftOut = leftOut
        return report
    }

    /// A lottery's registrations back (so a citizen who registered is
    /// answered with their first registration, as before), its awards
    /// (registration → reservation: a registration reads `won`, and a draw
    /// run again awards nobody twice), and, drawn with holds, its line:
    /// the entries not drawn and not yet offered a place, by rank, each
    /// with a new id and code for its offer (ids need the servers' secret:
    /// without it the line stays empty, and the report says so). Returns
    /// what was left out.
    private func restoreLottery(_ campaign: Campaign, route: UInt32?) throws -> String? {
        let layout = campaign.layout
        var commands: [RoutedCommand] = []
        func queue(_ keys: CampaignKeys, _ command: [String]) throws {
            commands.append(RoutedCommand(slot: keys.slot, command))
            if commands.count >= Self.commandsPerPipeline {
                try send(commands)
                commands.removeAll(keepingCapacity: true)
            }
        }
        try database.statement("SELECT id, citizen_key, preferences, created_at FROM registrations WHERE campaign_id = ?")
            .forEachRow([.text(campaign.id)]) { row in
                let keys = layout.bucketKeys[layout.buckets.bucket(ofCitizenKey: row.text(1))]
                try queue(keys, ["HSET", keys.registrations, row.text(0), "\(row.text(1))|\(row.text(2))|\(row.int(3))"])
                try queue(keys, ["HSET", keys.registrants, row.text(1), row.text(0)])
            }
        // Every reservation of a lottery is its citizen's award (the draw's,
        // or an offer from the line; one registration per citizen), so the
        // awards come back from the reservations themselves, whether or not
        // the draw was published: a draw run again awards nobody twice. A
        // citizen's latest counts (a lapsed offer, then another).
        try database.statement("""
            SELECT g.id, r.id, g.citizen_key FROM reservations r
            JOIN registrations g ON g.campaign_id = r.campaign_id AND g.citizen_key = r.citizen_key
            WHERE r.campaign_id = ? ORDER BY r.created_at, r.id
            """).forEachRow([.text(campaign.id)]) { row in
                let keys = layout.bucketKeys[layout.buckets.bucket(ofCitizenKey: row.text(2))]
                try queue(keys, ["HSET", keys.awards, row.text(0), row.text(1)])
            }
        var leftOut: String? = nil
        let published = try database.statement("SELECT COUNT(*) FROM draws WHERE campaign_id = ? AND state = 'published'")
            .rows([.text(campaign.id)]) { $0.int(0) }.first ?? 0
        if campaign.holdSeconds != nil, published > 0 {
            if let routes, let route, try idsAreRouted(campaign.id, by: routes, to: route) {
                try restoreLotteryLine(campaign, routes: routes, route: route, queue: queue)
            } else if routes == nil {
                leftOut = "the lottery's line (the servers' citizen secret makes its offers' ids: run with --data-dir)"
            } else {
                leftOut = "the lottery's line (the citizen secret given does not make this campaign's ids: a wrong key?)"
            }
        }
        try send(commands)
        return leftOut
    }

    /// Whether `routes` reads the campaign's own route out of one of its
    /// registration ids: the servers' key, not another's (whose offer ids
    /// would lead nowhere).
    private func idsAreRouted(_ campaign: String, by routes: RouteCipher, to route: UInt32) throws -> Bool {
        let ids = try database.statement("SELECT id FROM registrations WHERE campaign_id = ? LIMIT 1").rows([.text(campaign)]) { $0.text(0) }
        guard let text = ids.first else { return true }
        return ReservationID(parsing: Substring(text)).map { $0.route(cipher: routes) == route } ?? false
    }

    /// The line of a drawn lottery with holds, as lottery_line.lua makes
    /// it: each entry not drawn nor offered waits in the queue of each of
    /// its preferences, by rank. (An offer whose reservation reached SQLite
    /// before its waitlist row did was made: its entry waits no more.)
    private func restoreLotteryLine(_ campaign: Campaign, routes: RouteCipher, route: UInt32,
                                    queue: (CampaignKeys, [String]) throws -> Void) throws {
        let keys = campaign.layout.home
        let now = String(WallClock.nowMillis())
        var random = SystemRandomNumberGenerator()
        try database.statement("""
            SELECT d.rank, d.registration_id, g.citizen_key, g.preferences FROM draw_entries d
            JOIN registrations g ON g.id = d.registration_id
            WHERE d.campaign_id = ? AND d.reservation_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM waitlist w WHERE w.id = d.registration_id)
              AND g.citizen_key NOT IN (SELECT citizen_key FROM reservations WHERE campaign_id = ?)
            ORDER BY d.rank
            """).forEachRow([.text(campaign.id), .text(campaign.id)]) { row in
                let preferences = row.text(3).split(separator: ",").map(String.init)
                guard let first = preferences.first else { return }
                let id = row.text(1), citizen = row.text(2)
                let offer = ReservationID.make(millis: UInt64(WallClock.nowMillis()), route: route, cipher: routes, using: &random)
                try queue(keys, ["HSET", keys.waitlist, id,
                                 ["waiting", first, citizen, now, offer.text, PickupCode.make(using: &random), now].joined(separator: "|")])
                try queue(keys, ["HSET", keys.waiters, citizen, id])
                for preference in preferences {
                    try queue(keys, ["ZADD", keys.waitQueuePrefix + preference, String(row.int(0)), id])
                }
            }
    }

    /// Every reservation back into its bucket's records hash (a citizen's
    /// reservations are all in their bucket), streamed in pages; a hold
    /// back into its bucket's holds (one past its expiry ends at the next
    /// sweep, and its place goes back on sale).
    private func restoreRecords(_ layout: CampaignLayout) throws -> Int {
        var count = 0
        var pending = Array(repeating: [String](), count: layout.buckets.count)
        var holds: [RoutedCommand] = []
        let query = try database.statement("""
            SELECT id, status, slot_id, site_id, code, citizen_key, created_at, updated_at, expires_at
            FROM reservations WHERE campaign_id = ? ORDER BY id
            """)
        try query.forEachRow([.text(layout.campaign)]) { row in
            // SQLite's CHECK keeps the status one of the five.
            let status = ReservationStatus(rawValue: row.text(1)) ?? .confirmed
            let expires = row.isNull(8) ? nil : row.int(8)
            let record = ReservationRecord(status: status == .held && expires == nil ? .confirmed : status, slot: row.text(2),
                                           site: row.text(3), code: row.text(4), citizenKey: row.text(5),
                                           createdAtMillis: row.int(6), updatedAtMillis: row.int(7), expiresAtMillis: expires)
            let bucket = layout.buckets.bucket(ofCitizenKey: record.citizenKey)
            if record.status == .held, let expires {
                let keys = layout.bucketKeys[bucket]
                holds += [RoutedCommand(slot: keys.slot, ["ZADD", keys.holds, String(expires), row.text(0)]),
                          RoutedCommand(slot: keys.slot, ["HSET", keys.holders, record.citizenKey, row.text(0)])]
                if holds.count >= Self.commandsPerPipeline {
                    try send(holds)
                    holds.removeAll(keepingCapacity: true)
                }
            }
            pending[bucket] += [row.text(0), record.text]
            count += 1
            if pending[bucket].count >= 2 * Self.commandsPerPipeline { try flush(&pending[bucket], into: layout.bucketKeys[bucket]) { $0.records } }
        }
        for bucket in pending.indices { try flush(&pending[bucket], into: layout.bucketKeys[bucket]) { $0.records } }
        try send(holds)
        return count
    }

    /// Each citizen's active reservations (held, confirmed or redeemed:
    /// only a cancel or an expiry gives a share back), grouped by SQLite,
    /// not in memory.
    private func restoreHoldings(_ layout: CampaignLayout) throws {
        var pending = Array(repeating: [String](), count: layout.buckets.count)
        let query = try database.statement("""
            SELECT citizen_key, COUNT(*) FROM reservations
            WHERE campaign_id = ? AND status IN ('held', 'confirmed', 'redeemed') GROUP BY citizen_key
            """)
        try query.forEachRow([.text(layout.campaign)]) { row in
            let bucket = layout.buckets.bucket(ofCitizenKey: row.text(0))
            pending[bucket] += [row.text(0), String(row.int(1))]
            if pending[bucket].count >= 2 * Self.commandsPerPipeline { try flush(&pending[bucket], into: layout.bucketKeys[bucket]) { $0.holdings } }
        }
        for bucket in pending.indices { try flush(&pending[bucket], into: layout.bucketKeys[bucket]) { $0.holdings } }
    }

    /// A series' campaign: the reservations of every campaign of the series
    /// still counted in its window (not cancelled, made within it) back
    /// into their citizens' ledgers, before this campaign opens again: the
    /// ledgers are shared, and a lost shard may have held them for all of
    /// the series' campaigns (adding one already there changes nothing).
    /// The series' campaigns have the same buckets, so a citizen's ledger
    /// is where this layout says.
    private func restoreSeriesLedgers(_ layout: CampaignLayout, _ series: CampaignSeries, _ config: StoredConfig) throws {
        let now = WallClock.nowMillis()
        var commands: [RoutedCommand] = []
        let campaigns = try config.campaigns(inSeries: series.id).map(\.id)
        let marks = campaigns.map { _ in "?" }.joined(separator: ",")
        let query = try database.statement("""
            SELECT id, citizen_key, created_at FROM reservations
            WHERE campaign_id IN (\(marks)) AND status IN ('held', 'confirmed', 'redeemed') AND created_at > ?
            """)
        try query.forEachRow(campaigns.map { .text($0) } + [.integer(now - series.windowMillis)]) { row in
            let keys = layout.bucketKeys[layout.buckets.bucket(ofCitizenKey: row.text(1))]
            let ledger = keys.seriesLedger(row.text(1))
            commands.append(RoutedCommand(slot: keys.slot, ["ZADD", ledger, String(row.int(2)), row.text(0)]))
            commands.append(RoutedCommand(slot: keys.slot, ["PEXPIRE", ledger, String(series.windowMillis)]))
            if commands.count >= Self.commandsPerPipeline {
                try send(commands)
                commands.removeAll(keepingCapacity: true)
            }
        }
        try send(commands)
    }

    /// A waitlist's entries back, each in its citizen's bucket, each
    /// citizen's latest named as theirs, and the waiting ones back in line
    /// in the order they joined. (Queues of a lost Redis are gone with it:
    /// only waiting entries are put back.) An entry SQLite has as waiting
    /// whose offer's reservation it has too was offered (its own event had
    /// not reached SQLite): it is offered.
    private func restoreWaitlist(_ layout: CampaignLayout, slots: [Slot]) throws {
        var commands: [RoutedCommand] = []
        var positions = Array(repeating: 0, count: layout.bucketKeys.count)
        var targets = Array(repeating: Set<String>(), count: layout.bucketKeys.count)
        let query = try database.statement("""
            SELECT w.id, CASE WHEN w.status = 'waiting' AND r.id IS NOT NULL THEN 'offered' ELSE w.status END, w.target,
                   w.citizen_key, w.joined_at, w.offer_reservation_id, w.offer_code, w.updated_at
            FROM waitlist w LEFT JOIN reservations r ON r.id = w.offer_reservation_id
            WHERE w.campaign_id = ? ORDER BY w.joined_at, w.id
            """)
        try query.forEachRow([.text(layout.campaign)]) { row in
            let id = row.text(0), status = row.text(1), target = row.text(2), citizen = row.text(3)
            let bucket = layout.buckets.bucket(ofCitizenKey: citizen)
            let keys = layout.bucketKeys[bucket]
            let record = [status, target, citizen, String(row.int(4)), row.text(5), row.text(6), String(row.int(7))].joined(separator: "|")
            commands.append(RoutedCommand(slot: keys.slot, ["HSET", keys.waitlist, id, record]))
            commands.append(RoutedCommand(slot: keys.slot, ["HSET", keys.waiters, citizen, id]))
            if status == WaitlistStatus.waiting.rawValue {
                positions[bucket] += 1
                targets[bucket].insert(target)
                commands.append(RoutedCommand(slot: keys.slot, ["ZADD", keys.waitQueuePrefix + target, String(positions[bucket]), id]))
            }
            if commands.count >= Self.commandsPerPipeline {
                try send(commands)
                commands.removeAll(keepingCapacity: true)
            }
        }
        // Each bucket's counter goes on from its line, whose targets are
        // served again (waitlist_serve), with every slot's site.
        for (bucket, keys) in layout.bucketKeys.enumerated() {
            commands.append(RoutedCommand(slot: keys.slot, ["SET", keys.waitlistSequence, String(positions[bucket])]))
            guard !targets[bucket].isEmpty else { continue }
            commands.append(RoutedCommand(slot: keys.slot, ["SADD", keys.waitTargets] + targets[bucket].sorted()))
        }
        try send(commands)
        for batch in stride(from: 0, to: slots.count, by: 500) {
            try send(RedisConfig.waitlistSiteCommands(layout, Array(slots[batch..<min(batch + 500, slots.count)])))
        }
    }

    /// HSETs field/value pairs into one of a bucket's hashes, and empties them.
    private func flush(_ pairs: inout [String], into keys: CampaignKeys, _ hash: (CampaignKeys) -> String) throws {
        guard !pairs.isEmpty else { return }
        try redis.checked(["HSET", hash(keys)] + pairs, slot: keys.slot)
        pairs.removeAll(keepingCapacity: true)
    }

    private func placesTaken(_ id: String) throws -> [String: Int] {
        let rows = try database.statement("""
            SELECT slot_id, COUNT(*) FROM reservations
            WHERE campaign_id = ? AND status IN ('held', 'confirmed', 'redeemed') GROUP BY slot_id
            """).rows([.text(id)]) { ($0.text(0), Int($0.int(1))) }
        return Dictionary(uniqueKeysWithValues: rows)
    }

    private func statusCounts(_ id: String) throws -> [String: Int] {
        let rows = try database.statement("SELECT status, COUNT(*) FROM reservations WHERE campaign_id = ? GROUP BY status")
            .rows([.text(id)]) { ($0.text(0), Int($0.int(1))) }
        return Dictionary(uniqueKeysWithValues: rows)
    }

    private func send(_ commands: [RoutedCommand]) throws {
        for start in stride(from: 0, to: commands.count, by: Self.commandsPerPipeline) {
            try redis.checkedPipeline(Array(commands[start..<min(commands.count, start + Self.commandsPerPipeline)]))
        }
    }
}
