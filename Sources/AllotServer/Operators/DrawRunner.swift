import AllotDomain
import Foundation
import Logging
import RedisClient
import SQLiteStore

/// Runs a lottery's draw on a thread of its own (a million entries take
/// seconds): freezes the entries (every registration Redis holds, once its
/// clock is past the close), draws, gives each winner a confirmed
/// reservation (award.lua: the persister then writes them to SQLite like
/// any other), writes the published files, and records the draw published.
/// Any failure records it failed, with why; it may run again (awards are
/// once per registration).
enum DrawRunner {
    static let awardsPerCall = 500

    static func start(campaign: Campaign, draw: StoredDraw, config: ServerConfig, logger: Logger) {
        let thread = Thread {
            do {
                try run(campaign: campaign, draw: draw, config: config, logger: logger)
            } catch {
                logger.error("draw failed", metadata: ["campaign": "\(campaign.id)", "error": "\(error)"])
                do {
                    // Only this run's: never over a draw published or started again.
                    try SQLiteDatabase(path: config.databasePath)
                        .statement("UPDATE draws SET state = 'failed', error = ? WHERE campaign_id = ? AND state = 'running' AND started_at = ?")
                        .run([.text("\(error)"), .text(campaign.id), .integer(draw.startedAtMillis ?? 0)])
                } catch {
                    // It stays 'running' until it is stale (AdminStore.drawRunStaleMillis), then may run again.
                    logger.error("draw failure not recorded", metadata: ["campaign": "\(campaign.id)", "error": "\(error)"])
                }
            }
        }
        thread.name = "allot-draw"
        thread.start()
    }

    static func run(campaign: Campaign, draw: StoredDraw, config: ServerConfig, logger: Logger) throws {
        let started = Date()
        let redis = config.redis.blockingClient(timeoutMillis: 30_000)
        defer { redis.close() }
        let layout = campaign.layout
        // Frozen: register.lua refuses by the close its shard holds and the
        // shard's own clock, so once that clock is past that close (and the
        // window cannot change: AdminStore.patchCampaign) nothing can come
        // in after this read.
        for keys in layout.bucketKeys {
            let time = try redis.checked(["TIME"], slot: keys.slot).elements?.compactMap(\.text).compactMap { Int64($0) } ?? []
            let closes = try redis.checked(["HGET", keys.config, "closes"], slot: keys.slot).text.flatMap { Int64($0) }
            guard let closes, closes == campaign.closesAtMillis, time.count == 2, time[0] * 1000 + time[1] / 1000 >= closes else {
                throw RedisError("registration has not closed by the clock of Redis yet; run the draw again shortly")
            }
        }
        let database = try SQLiteDatabase(path: config.databasePath)
        let registrations = try readRegistrations(layout, campaign: campaign.id, redis: redis, database: database)
        let lottery = LotteryDraw(campaignID: campaign.id, places: draw.places, secret: draw.secret,
                                  publicValueSource: draw.publicValueSource, publicValue: draw.publicValue ?? "",
                                  drawKey: Draw.drawKey(serverSecret: config.citizenSecret, campaignID: campaign.id),
                                  registrations: registrations)
        guard lottery.description.commitment == draw.commitment else {
            throw RedisError("the places or the secret no longer match the published commitment")
        }
        let route = try StoredConfig(database: database).route(campaign.id)
        let reservations = try award(lottery, campaign: campaign, route: route, config: config, redis: redis)
        try publishFiles(lottery, databasePath: config.databasePath)
        let winners = reservations.count { $0 != nil }
        var bias = JSONWriter(capacity: 1024)
        lottery.bias.write(to: &bias)
        try database.transaction {
            try database.statement("""
                UPDATE draws SET state = 'published', entry_count = ?, root = ?, seed = ?, winners = ?, bias = ?, ran_at = ?, error = NULL
                WHERE campaign_id = ? AND state = 'running' AND started_at = ?
                """).run([.integer(Int64(lottery.results.count)), .text(HexBytes.encode(lottery.description.root)),
                          .text(HexBytes.encode(lottery.description.seed)), .integer(Int64(winners)), .text(bias.text),
                          .integer(WallClock.nowMillis()), .text(campaign.id), .integer(draw.startedAtMillis ?? 0)])
            guard database.changes == 1 else { throw RedisError("the draw was started again meanwhile; this run is not recorded") }
            try database.statement("DELETE FROM draw_entries WHERE campaign_id = ?").run([.text(campaign.id)])
            let insert = try database.statement(
                "INSERT INTO draw_entries (campaign_id, rank, registration_id, reservation_id, leaf_index) VALUES (?, ?, ?, ?, ?)")
            for (index, registration) in lottery.registrations.enumerated() {
                try insert.run([.text(campaign.id), .integer(Int64(index + 1)), .text(registration.id),
                                reservations[index].map { .text($0) } ?? .null, .integer(Int64(lottery.leafIndexOfRank[index]))])
            }
            try AuditLog(database: database).append([AuditEntry(
                atMillis: WallClock.nowMillis(), actor: "system", action: "draw.publish", subject: "campaign:\(campaign.id)",
                after: #"{"entries":\#(lottery.results.count),"winners":\#(winners),"root":"\#(HexBytes.encode(lottery.description.root))"}"#)])
        }
        logger.info("draw published", metadata: [
            "campaign": "\(campaign.id)", "entries": "\(lottery.results.count)", "winners": "\(winners)",
            "suspicious": "\(lottery.bias.suspicious)", "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))",
        ])
    }

    /// Every registration: each bucket's, by HSCAN (bounded replies; an
    /// element HSCAN returns twice is kept once), and any SQLite has that
    /// Redis no longer does (Redis lost with events SQLite had not got,
    /// then rebuilt by `allot recover`). One per citizen, or the draw stops.
    private static func readRegistrations(_ layout: CampaignLayout, campaign: String, redis: any RedisSyncRouting,
                                          database: SQLiteDatabase) throws -> [LotteryDraw.Registration] {
        var byID: [String: LotteryDraw.Registration] = [:]
        for keys in layout.bucketKeys {
            var cursor = "0"
            repeat {
                let reply = try redis.checked(["HSCAN", keys.registrations, cursor, "COUNT", "5000"], slot: keys.slot)
                guard let parts = reply.elements, parts.count == 2, let next = parts[0].text, let items = parts[1].elements else {
                    throw RedisError("unreadable HSCAN reply")
                }
                let texts = items.compactMap(\.text)
                for index in stride(from: 0, to: texts.count - 1, by: 2) {
                    guard let record = RegistrationRecord(texts[index + 1]) else {
                        throw RedisError("unreadable registration \(texts[index])")
                    }
                    byID[texts[index]] = LotteryDraw.Registration(id: texts[index], citizenKey: record.citizenKey,
                                                                  preferences: record.preferences, createdAtMillis: record.createdAtMillis)
                }
                cursor = next
            } while cursor != "0"
        }
        try database.statement("SELECT id, citizen_key, preferences, created_at FROM registrations WHERE campaign_id = ?")
            .forEachRow([.text(campaign)]) { row in
                let id = row.text(0)
                guard byID[id] == nil else { return }
                let preferences = row.text(2).split(separator: ",").compactMap { Preference(String($0)) }
                byID[id] = LotteryDraw.Registration(id: id, citizenKey: row.text(1), preferences: preferences, createdAtMillis: row.int(3))
            }
        guard Set(byID.values.map(\.citizenKey)).count == byID.count else {
            throw RedisError("a citizen has two registrations; the draw is not run")
        }
        return Array(byID.values)
    }

    /// Confirmed reservations for the winners, in the citizens' buckets, a
    /// batch per call; returns each rank's reservation id (nil: no place).
    private static func award(_ lottery: LotteryDraw, campaign: Campaign, route firstRoute: UInt32?, config: ServerConfig,
                              redis: any RedisSyncRouting) throws -> [String?] {
        guard let firstRoute else { throw RedisError("campaign \(campaign.id) has no route") }
        let layout = campaign.layout
        let cipher = RouteCipher(secret: config.citizenSecret)
        var random = SystemRandomNumberGenerator()
        let siteOfSlot = Dictionary(lottery.description.places.map { ($0.slotID, $0.siteID) }) { first, _ in first }
        var reservations = [String?](repeating: nil, count: lottery.results.count)
        // Per bucket: the winners' values for award.lua, and their ranks.
        var batches = [[String]](repeating: [], count: layout.bucketKeys.count)
        var ranks = [[Int]](repeating: [], count: layout.bucketKeys.count)
        let now = WallClock.nowMillis()
        func flush(_ bucket: Int) throws {
            guard !batches[bucket].isEmpty else { return }
            let keys = layout.bucketKeys[bucket]
            let reply = try redis.checked(Scripts.award.command(
                keys: [keys.config, keys.remaining, keys.holdings, keys.records, keys.stream, keys.awards, keys.holds, keys.holders],
                arguments: [String(config.streamEntriesMax), String(now)] + batches[bucket]), slot: keys.slot)
            let ids = reply.elements?.compactMap(\.text) ?? []
            guard ids.first == "ok", ids.count == ranks[bucket].count + 1 else { throw RedisError("award refused: \(ids)") }
            // A run again after a crash keeps the first run's reservations.
            for (index, id) in zip(ranks[bucket], ids.dropFirst()) { reservations[index] = id }
            // Back in the hot set, so the persister reads the new events.
            try redis.checkedPipeline([HotSet.addCommand(campaign.id)])
            batches[bucket].removeAll(keepingCapacity: true)
            ranks[bucket].removeAll(keepingCapacity: true)
        }
        // With holds, the line is there before any winner's hold can end.
        if campaign.holdSeconds != nil { try putInLine(lottery, keys: layout.home, now: now, cipher: cipher, firstRoute: firstRoute,
                                                       redis: redis) }
        for (index, result) in lottery.results.enumerated() {
            guard let slot = result.wonSlot else { continue }
            let registration = lottery.registrations[index]
            let bucket = layout.isSpread ? layout.buckets.bucket(ofCitizenKey: registration.citizenKey) : 0
            let id = ReservationID.make(millis: UInt64(now), route: layout.buckets.route(ofBucket: bucket, firstRoute: firstRoute),
                                        cipher: cipher, using: &random)
            batches[bucket] += [registration.id, id.text, slot, siteOfSlot[slot] ?? "", PickupCode.make(using: &random),
                                registration.citizenKey]
            ranks[bucket].append(index)
            if ranks[bucket].count >= awardsPerCall { try flush(bucket) }
        }
        for bucket in batches.indices { try flush(bucket) }
        return reservations
    }

    /// A lottery with holds: its entries not drawn, in line by rank for
    /// each of their preferences (lottery_line.lua), each with the id and
    /// code its offer would have. A lottery has one bucket: its home.
    private static func putInLine(_ lottery: LotteryDraw, keys: CampaignKeys, now: Int64, cipher: RouteCipher, firstRoute: UInt32,
                                  redis: any RedisSyncRouting) throws {
        var random = SystemRandomNumberGenerator()
        var batch: [String] = []
        func flush() throws {
            guard !batch.isEmpty else { return }
            try redis.checked(Scripts.lotteryLine.command(keys: [keys.config, keys.waitlist, keys.waiters],
                                                          arguments: [keys.prefix, String(now)] + batch), slot: keys.slot)
            batch.removeAll(keepingCapacity: true)
        }
        for (index, registration) in lottery.registrations.enumerated() where lottery.results[index].wonSlot == nil {
            let offer = ReservationID.make(millis: UInt64(now), route: firstRoute, cipher: cipher, using: &random)
            batch += [registration.id, registration.citizenKey, registration.preferences.map(\.text).joined(separator: ","),
                      offer.text, PickupCode.make(using: &random), String(index + 1)]
            if batch.count >= awardsPerCall * 6 { try flush() }
        }
        try flush()
    }

    /// `draw.json` and `results.csv`, written whole then renamed into place,
    /// and `tree.bin` (the receipts' proofs are read from it).
    private static func publishFiles(_ lottery: LotteryDraw, databasePath: String) throws {
        let directory = StoredDraw.directory(databasePath: databasePath, campaign: lottery.description.campaignID)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, bytes) in [("tree.bin", lottery.treeFile), ("draw.json", lottery.description.json),
                              ("results.csv", ResultsFile.write(lottery.results))] {
            // Named per run: two runs of a draw never write one temporary file.
            let temporary = directory.appendingPathComponent(name + ".tmp-" + UUID().uuidString)
            FileManager.default.createFile(atPath: temporary.path, contents: nil)
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: bytes)
            // On disk before it is named: a crash never publishes half a file.
            try handle.synchronize()
            try handle.close()
            // rename(2): a reader sees the old file or the new one, whole.
            guard rename(temporary.path, directory.appendingPathComponent(name).path) == 0 else {
                throw RedisError("could not publish \(name): errno \(errno)")
            }
        }
    }
}
