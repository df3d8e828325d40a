import AllotDomain
import Foundation
import Logging
import RedisClient
import SQLiteStore

/// A lottery's draw as SQLite keeps it (`draws`): committed before
/// registration opens (the places and the secret fixed, the commitment
/// published), then run once registration has closed (issue 14).
struct StoredDraw {
    enum State: String { case committed, running, published, failed }

    var campaignID: String
    var state: State
    var secret: [UInt8]
    var commitment: Draw.Hash
    var places: [Draw.Place]
    var publicValueSource: String
    var committedAtMillis: Int64
    var publicValue: String?
    var entryCount: Int?
    var root: String?
    var seed: String?
    var winners: Int?
    var biasJSON: String?
    var error: String?
    /// When its latest run began.
    var startedAtMillis: Int64?

    /// The draw as anyone may see it: the secret only once published.
    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("campaign_id", campaignID)
        json.field("state", state.rawValue)
        json.field("commitment", HexBytes.encode(commitment))
        json.field("public_value_source", publicValueSource)
        json.field("committed_at", Timestamp.format(millis: committedAtMillis, alwaysFraction: false))
        Draw.Place.write(places, to: &json)
        if state == .published {
            json.field("secret", HexBytes.encode(secret))
            if let publicValue { json.field("public_value", publicValue) }
            if let entryCount { json.field("entry_count", entryCount) }
            if let root { json.field("root", root) }
            if let seed { json.field("seed", seed) }
            if let winners { json.field("winners", winners) }
            if let biasJSON { json.key("bias"); json.raw(biasJSON) }
            json.field("draw_json", "/open/v1/campaigns/\(campaignID)/draw.json")
            json.field("results_csv", "/open/v1/campaigns/\(campaignID)/results.csv")
        }
        // Why, in words for anyone (the log has the rest).
        if state == .failed, error != nil { json.field("error", "the draw did not finish; it may run again with the same public value") }
        json.endObject()
    }

    var json: [UInt8] {
        var json = JSONWriter(capacity: 512)
        write(to: &json)
        return json.bytes
    }

    /// A published draw's file, streamed from disk (StreamedAnswer); 404
    /// until the draw is published.
    static func streamFile(_ file: DrawFile, campaign: String, databasePath: String, exchange: PendingExchange, logger: Logger) {
        StreamedAnswer.start("draw-file", exchange: exchange, logger: logger) { line in
            let database = try SQLiteDatabase(path: databasePath)
            let path = directory(databasePath: databasePath, campaign: campaign).appendingPathComponent(file.rawValue).path
            guard try DrawRecords(database: database).load(campaign)?.state == .published,
                  let handle = FileHandle(forReadingAtPath: path) else {
                return line.answer(.problem(.notFound("no published draw for this campaign")))
            }
            defer { try? handle.close() }
            let type = file == .results ? "text/csv; charset=utf-8; header=present" : Answer.jsonType
            try StreamedAnswer.stream(contentType: type, headers: [("Access-Control-Allow-Origin", "*")], line: &line) {
                let page = try handle.read(upToCount: 256 * 1024) ?? Data()
                return page.isEmpty ? nil : Array(page)
            }
        }
    }

    /// Where its published files are: beside the database, `draws/<cid>/`.
    static func directory(databasePath: String, campaign: String) -> URL {
        URL(fileURLWithPath: databasePath).deletingLastPathComponent().appendingPathComponent("draws").appendingPathComponent(campaign)
    }
}

/// The `draws` table.
struct DrawRecords {
    let database: SQLiteDatabase

    func load(_ campaign: String) throws -> StoredDraw? {
        try database.statement("""
            SELECT state, secret, commitment, places, public_value_source, committed_at, public_value, entry_count, root, seed,
                   winners, bias, error, started_at
            FROM draws WHERE campaign_id = ?
            """).rows([.text(campaign)]) { row in
            StoredDraw(campaignID: campaign, state: StoredDraw.State(rawValue: row.text(0)) ?? .failed,
                       secret: HexBytes.decode(Substring(row.text(1))) ?? [], commitment: HexBytes.decode(Substring(row.text(2))) ?? [],
                       places: Self.places(row.text(3)), publicValueSource: row.text(4), committedAtMillis: row.int(5),
                       publicValue: row.isNull(6) ? nil : row.text(6), entryCount: row.isNull(7) ? nil : Int(row.int(7)),
                       root: row.isNull(8) ? nil : row.text(8), seed: row.isNull(9) ? nil : row.text(9),
                       winners: row.isNull(10) ? nil : Int(row.int(10)), biasJSON: row.isNull(11) ? nil : row.text(11),
                       error: row.isNull(12) ? nil : row.text(12), startedAtMillis: row.isNull(13) ? nil : row.int(13))
        }.first
    }


    /// The places as the row keeps them: a line each, `slot site capacity`.
    static func placesText(_ places: [Draw.Place]) -> String {
        places.map { "\($0.slotID) \($0.siteID) \($0.capacity)" }.joined(separator: "\n")
    }

    static func places(_ text: String) -> [Draw.Place] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 3, let capacity = Int(parts[2]) else { return nil }
            return Draw.Place(slotID: String(parts[0]), siteID: String(parts[1]), capacity: capacity)
        }
    }
}

extension AdminStore {
    /// `POST …/draw/commit`: before registration opens, the places are
    /// fixed (every slot with places, by id) and a secret is drawn; the
    /// commitment to both is published. Sent again, it answers the same.
    func commitDraw(_ id: String, by actor: String) throws -> StoredDraw {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        guard let lottery = campaign.lottery else { throw Problem.drawState("campaign \(id) is not a lottery") }
        let records = DrawRecords(database: database)
        if let existing = try records.load(id) { return existing }
        guard WallClock.nowMillis() < campaign.opensAtMillis else {
            throw Problem.drawState("registration has opened: the commitment must come before it")
        }
        let sites = Set(try StoredConfig(database: database).sites(id).map(\.id))
        let places = try StoredConfig(database: database).slots(id).filter { $0.capacity > 0 && sites.contains($0.siteID) }
            .sorted { $0.id < $1.id }.map { Draw.Place(slotID: $0.id, siteID: $0.siteID, capacity: $0.capacity) }
        guard !places.isEmpty else { throw Problem.drawState("the lottery has no places to draw") }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<Draw.secretBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let rules = Draw.rulesDigest(campaignID: id, places: places, publicValueSource: lottery.publicValueSource)
        let draw = StoredDraw(campaignID: id, state: .committed, secret: secret, commitment: Draw.commitment(rules: rules, secret: secret),
                              places: places, publicValueSource: lottery.publicValueSource, committedAtMillis: WallClock.nowMillis())
        try database.transaction {
            try database.statement("""
                INSERT INTO draws (campaign_id, state, secret, commitment, places, public_value_source, committed_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """).run([.text(id), .text(draw.state.rawValue), .text(HexBytes.encode(secret)), .text(HexBytes.encode(draw.commitment)),
                          .text(DrawRecords.placesText(places)), .text(draw.publicValueSource), .integer(draw.committedAtMillis)])
            try audit(actor, "draw.commit", "campaign:\(id)", after: String(decoding: draw.json, as: UTF8.self))
        }
        logger.info("draw committed", metadata: ["actor": "\(actor)", "campaign": "\(id)", "places": "\(places.count)"])
        return draw
    }

    /// A committed lottery's places and window are fixed: the commitment
    /// covers the places, and its entries are those of the window.
    func refuseIfDrawCommitted(_ id: String, _ field: String) throws {
        guard try DrawRecords(database: database).load(id) == nil else {
            throw Problem.invalidField(field, "the places and window of lottery \(id) are fixed since its draw was committed")
        }
    }

    /// A run that has not ended this long after it began was cut short
    /// (the node stopped or died): it may run again. A million entries take
    /// under a minute.
    static let drawRunStaleMillis: Int64 = 10 * 60_000

    /// `POST …/draw/run`: once registration has closed, marks the draw
    /// running (the caller starts DrawRunner). A draw that failed, or one
    /// cut short, may run again, with the same public value only: the first
    /// run fixed it, so nobody can try values until one gives an outcome
    /// they like (and awards, made once per registration, stay right).
    func startDraw(_ id: String, publicValue: String, by actor: String) throws -> (Campaign, StoredDraw) {
        guard let campaign = try loadCampaign(id) else { throw Problem.notFound("no such campaign") }
        let records = DrawRecords(database: database)
        guard var draw = try records.load(id) else { throw Problem.drawState("the draw of \(id) was never committed") }
        let now = WallClock.nowMillis()
        let cutShort = draw.state == .running && now - (draw.startedAtMillis ?? 0) >= Self.drawRunStaleMillis
        guard draw.state == .committed || draw.state == .failed || cutShort else {
            throw Problem.drawState("the draw of \(id) is \(draw.state.rawValue) already")
        }
        if let first = draw.publicValue, first != publicValue {
            throw Problem.drawState("the draw of \(id) first ran with another public value; it runs again with that one only")
        }
        guard now >= campaign.closesAtMillis else {
            throw Problem.drawState("registration is still open: the draw runs after it closes")
        }
        let loaded = draw
        draw.state = .running
        draw.publicValue = publicValue
        var after = JSONWriter()
        after.beginObject()
        after.field("public_value", publicValue)
        after.endObject()
        try database.transaction {
            // Conditional: of two nodes asked at once, one starts it.
            try database.statement("""
                UPDATE draws SET state = 'running', public_value = ?, started_at = ?, error = NULL
                WHERE campaign_id = ? AND state = ? AND COALESCE(started_at, 0) = ?
                """).run([.text(publicValue), .integer(now), .text(id), .text(loaded.state.rawValue), .integer(loaded.startedAtMillis ?? 0)])
            guard database.changes == 1 else { throw Problem.drawState("the draw of \(id) was started by another request") }
            try audit(actor, "draw.run", "campaign:\(id)", after: after.text)
        }
        draw.startedAtMillis = now
        return (campaign, draw)
    }
}

extension Problem {
    /// A draw's step asked for at the wrong time (before its commitment,
    /// while registration is open, twice…).
    static func drawState(_ detail: String) -> Problem {
        Problem(status: 409, code: "draw_state", title: "Not now for this draw", detail: detail)
    }
}

/// `GET /v1/registrations/{rid}/receipt`: an entrant's receipt once the
/// draw is published, from SQLite (their entry's rank and leaf, their
/// registration, their reservation) and the draw's `tree.bin` (one read
/// per level for the proof). The entry id is derived again from the
/// citizen key and the draw key, as the draw did.
struct DrawReceipts {
    let database: SQLiteDatabase
    let databasePath: String
    let citizenSecret: [UInt8]

    func receipt(_ registrationID: String) throws -> DrawReceipt {
        let notFound = Problem.notFound("no receipt: no such registration, or its lottery is not drawn yet")
        guard let row = try database.statement("""
            SELECT e.campaign_id, e.rank, e.leaf_index, e.reservation_id, g.citizen_key, g.preferences, r.slot_id
            FROM draw_entries e JOIN registrations g ON g.id = e.registration_id
            LEFT JOIN reservations r ON r.id = e.reservation_id
            WHERE e.registration_id = ?
            """).rows([.text(registrationID)], { row in
                (campaign: row.text(0), rank: Int(row.int(1)), leafIndex: row.isNull(2) ? nil : Int(row.int(2)),
                 reservation: row.isNull(3) ? nil : row.text(3), citizenKey: row.text(4), preferences: row.text(5),
                 slot: row.isNull(6) ? nil : row.text(6))
            }).first,
            let draw = try DrawRecords(database: database).load(row.campaign), draw.state == .published,
            let count = draw.entryCount, let rootText = draw.root, let root = HexBytes.decode(Substring(rootText)),
            let seedText = draw.seed, let seed = HexBytes.decode(Substring(seedText))
        else { throw notFound }
        // A draw published before receipts kept no leaves: no proof to give.
        guard let leafIndex = row.leafIndex else { throw notFound }
        let entry = Draw.Entry(id: Draw.entryID(citizenKey: row.citizenKey,
                                                drawKey: Draw.drawKey(serverSecret: citizenSecret, campaignID: row.campaign)),
                               preferences: row.preferences.split(separator: ",").compactMap { Draw.Preference($0) })
        let path = StoredDraw.directory(databasePath: databasePath, campaign: row.campaign).appendingPathComponent("tree.bin").path
        guard let handle = FileHandle(forReadingAtPath: path) else { throw RedisError("the draw's tree.bin is missing") }
        defer { try? handle.close() }
        func read(_ offset: Int, _ length: Int) throws -> [UInt8] {
            try handle.seek(toOffset: UInt64(offset))
            return Array(try handle.read(upToCount: length) ?? Data())
        }
        // Checked before it is served: a file that does not lead to the
        // published root is an error to log, never a receipt.
        guard MerkleTreeFile.leafCount(header: try read(0, 24)) == count,
              let proof = try MerkleTreeFile.proof(index: leafIndex, count: count, read: read),
              MerkleTree.verifyInclusion(leaf: entry.leaf, index: leafIndex, count: count, proof: proof, root: root) else {
            throw RedisError("the draw's tree.bin does not match its entries")
        }
        // The slot won is the reservation's, once the persister has it
        // (within a second of the award).
        if row.reservation != nil, row.slot == nil {
            throw Problem.unavailable("the draw's reservations are still being recorded; try again shortly")
        }
        return DrawReceipt(registrationID: registrationID, campaignID: row.campaign, entry: entry, leafIndex: leafIndex,
                           entryCount: count, root: root, proof: proof, rank: row.rank, ticket: Draw.ticket(seed: seed, entryID: entry.id),
                           wonSlot: row.slot, reservationID: row.reservation)
    }
}
