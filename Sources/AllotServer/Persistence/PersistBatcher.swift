import AllotDomain
import EventHTTP
import EventLoops
import Foundation
import Logging
import RedisClient
import SQLiteStore

/// One persister's state: which streams it reads and where it stands in
/// each. Lives on the persister thread only.
final class PersistBatcher {
    private let settings: Persister.Settings
    private let database: SQLiteDatabase
    private let redis: RedisSyncClient
    private let logger: Logger
    private let health: SharedHealth
    private let metrics: ServerMetrics
    private var campaigns: [String] = []
    /// Stream key → campaign id, for the rows written from each stream.
    private var campaignOfStream: [String: String] = [:]
    /// Streams whose own pending entries (left by a previous run) are done.
    private var recovered: Set<String> = []
    private var lastAcked: [String: String] = [:]
    private var campaignsCheckedAt: Int64 = 0
    private var trimmedAt: Int64 = 0
    private var pendingCheckedAt: Int64 = 0
    private var retiredAt: Int64 = 0
    /// How often own pending entries are read again. XREADGROUP '>' hands
    /// entries over once: if the reply is lost (a timeout, the redial that
    /// resends a command) or their SQLite write fails, they wait in this
    /// consumer's pending list, which only an id-0 read returns.
    static let pendingRecheckMillis: Int64 = 2_000

    init(settings: Persister.Settings, database: SQLiteDatabase, redis: RedisSyncClient, logger: Logger,
         health: SharedHealth, metrics: ServerMetrics) {
        self.settings = settings
        self.database = database
        self.redis = redis
        self.logger = logger
        self.health = health
        self.metrics = metrics
    }

    func close() { redis.close() }

    /// One read–write–ack round; returns the entries written.
    @discardableResult
    func round() throws -> Int {
        let now = monotonicMicros() / 1000
        if now - campaignsCheckedAt >= 1_000 || campaigns.isEmpty {
            try refreshCampaigns()
            campaignsCheckedAt = now
        }
        guard !campaigns.isEmpty else {
            try probeSQLite()
            Thread.sleep(forTimeInterval: Double(settings.blockMillis) / 1000)
            return 0
        }
        if now - pendingCheckedAt >= Self.pendingRecheckMillis {
            recovered.removeAll()
            pendingCheckedAt = now
        }
        let written: Int
        do {
            written = try readAndPersist()
        } catch {
            recovered.removeAll()
            // Redis lost its data (and `allot recover` rebuilt it): learn the
            // campaigns and their groups again.
            if let redisError = error as? RedisError, redisError.description.contains("NOGROUP") { campaigns.removeAll() }
            throw error
        }
        if now - trimmedAt >= Int64(settings.trimEveryMillis) {
            try trim()
            trimmedAt = now
            if written == 0 { try probeSQLite() }
        }
        if now - retiredAt >= Int64(settings.retireEveryMillis) {
            try retire()
            retiredAt = now
        }
        return written
    }

    private func refreshCampaigns() throws {
        let members = try redis.checked(["SMEMBERS", GlobalKeys.campaigns]).elements?.compactMap(\.text) ?? []
        let fresh = members.filter { OperatorID.isValid($0) }.sorted()
        for campaign in fresh where !campaigns.contains(campaign) {
            let stream = CampaignKeys(campaign).stream
            let reply = try redis.command(["XGROUP", "CREATE", stream, GlobalKeys.persistGroup, "0", "MKSTREAM"])
            if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") { throw RedisError(message) }
            try claimAbandoned(stream)
        }
        campaigns = fresh
        campaignOfStream = Dictionary(uniqueKeysWithValues: fresh.map { (CampaignKeys($0).stream, $0) })
    }

    /// Takes over entries a dead consumer read but never acknowledged.
    private func claimAbandoned(_ stream: String) throws {
        var cursor = "0-0"
        repeat {
            let reply = try redis.checked(["XAUTOCLAIM", stream, GlobalKeys.persistGroup, settings.consumer,
                                           String(settings.claimIdleMillis), cursor, "COUNT", "1000", "JUSTID"])
            cursor = reply.elements?.first?.text ?? "0-0"
        } while cursor != "0-0"
    }

    /// Reads own pending entries first (id 0: what a crash left unacked),
    /// then new ones ('>'), blocking briefly when there are none.
    private func readAndPersist() throws -> Int {
        let streams = campaigns.map { CampaignKeys($0).stream }
        let ids = streams.map { recovered.contains($0) ? ">" : "0" }
        var command = ["XREADGROUP", "GROUP", GlobalKeys.persistGroup, settings.consumer,
                       "COUNT", String(settings.batchRowsMax)]
        if ids.allSatisfy({ $0 == ">" }) { command += ["BLOCK", String(settings.blockMillis)] }
        command += ["STREAMS"] + streams + ids
        let reply = try redis.checked(command)
        let batch = StreamBatch(reply)
        for (stream, id) in zip(streams, ids) where id == "0" && (batch.entries[stream]?.isEmpty ?? true) {
            recovered.insert(stream)
        }
        guard batch.count > 0 else {
            metrics.persistLagMillis.record(0)
            return 0
        }
        let (changed, firstAuditID) = try write(batch)
        health.sqliteWritable.store(true, ordering: .relaxed)
        metrics.persistBatchRows.record(batch.count)
        metrics.persistedRows.increment(by: batch.count)
        if let oldest = batch.oldestMillis { metrics.persistLagMillis.record(max(0, WallClock.nowMillis() - oldest)) }
        // One info line a batch; a line per state change only at debug
        // (a surge makes thousands a second, and each line costs CPU).
        if !changed.isEmpty {
            logger.info("reservations persisted", metadata: [
                "changes": "\(changed.count)", "campaigns": "\(Set(changed.map(\.campaign)).sorted().joined(separator: ","))",
                "audit_ids": "\(firstAuditID)...\(firstAuditID + Int64(changed.count) - 1)",
            ])
        }
        if logger.logLevel <= .debug {
            for (offset, event) in changed.enumerated() {
                logger.debug("reservation \(event.record.status.rawValue)", metadata: [
                    "campaign": "\(event.campaign)", "slot": "\(event.record.slot)", "actor": "\(event.actor)",
                    "audit_id": "\(firstAuditID + Int64(offset))",
                ])
            }
        }
        for (stream, entries) in batch.entries where campaignOfStream[stream] != nil {
            guard let last = entries.last else { continue }
            try redis.checked(["XACK", stream, GlobalKeys.persistGroup] + entries.map(\.streamID))
            lastAcked[stream] = last.streamID
        }
        return batch.count
    }

    /// Writes a batch and the audit rows of the state changes it made, in
    /// one transaction. A replayed event changes no row, so it adds no
    /// audit row either. Returns the events that changed a row, whose audit
    /// rows are numbered from `firstAuditID` in that order.
    private func write(_ batch: StreamBatch) throws -> (changed: [ReservationEvent], firstAuditID: Int64) {
        try database.transaction {
            let upsert = try database.statement(ReservationEvent.upsertSQL)
            var changed: [ReservationEvent] = []
            for (stream, entries) in batch.entries {
                // Only the streams of `campaigns` are asked for; a reply naming
                // another is Redis's error, left unacknowledged, never a trap.
                guard let campaign = campaignOfStream[stream] else {
                    logger.error("reply named a stream not asked for", metadata: ["stream": "\(stream)"])
                    continue
                }
                for entry in entries {
                    guard let event = ReservationEvent(entry, campaign: campaign) else {
                        logger.error("unreadable stream entry skipped", metadata: ["stream": "\(stream)", "id": "\(entry.streamID)"])
                        continue
                    }
                    try upsert.run(event.bindings)
                    if database.changes > 0 { changed.append(event) }
                }
            }
            return (changed, try AuditLog(database: database).append(changed.map(\.auditEntry)))
        }
    }

    /// Trims each stream below the oldest entry still pending (or below the
    /// last one acknowledged when nothing is pending).
    private func trim() throws {
        for campaign in campaigns {
            let stream = CampaignKeys(campaign).stream
            let pending = try redis.checked(["XPENDING", stream, GlobalKeys.persistGroup]).elements ?? []
            let floor: String?
            if let count = pending.first?.integer, count > 0 {
                // The smallest pending id; without it, trim nothing this round.
                floor = pending.count > 1 ? pending[1].text : nil
            } else {
                floor = lastAcked[stream]
            }
            guard let floor else { continue }
            try redis.checked(["XTRIM", stream, "MINID", floor])
        }
    }

    /// Takes campaigns whose booking has ended and whose every event is in
    /// SQLite out of the hot set (retire.lua), so the loops' refresh and this
    /// reader follow only campaigns that can still change.
    private func retire() throws {
        var retired: [String] = []
        for campaign in campaigns {
            let keys = CampaignKeys(campaign)
            let reply = try redis.run(Scripts.retire, keys: [keys.config, keys.stream, GlobalKeys.campaigns],
                                      arguments: [campaign, GlobalKeys.persistGroup])
            if let message = reply.errorMessage { throw RedisError(message) }
            if reply.integer == 1 { retired.append(campaign) }
        }
        guard !retired.isEmpty else { return }
        campaigns.removeAll { retired.contains($0) }
        for campaign in retired { campaignOfStream[CampaignKeys(campaign).stream] = nil }
        logger.info("campaigns retired from the hot set", metadata: ["campaigns": "\(retired.joined(separator: ","))"])
    }

    /// Proves SQLite takes writes, for /readyz, when there is nothing to write.
    private func probeSQLite() throws {
        try database.execute("BEGIN IMMEDIATE; COMMIT")
        health.sqliteWritable.store(true, ordering: .relaxed)
    }
}

/// A state change read from a campaign stream, as a row of `reservations`.
struct ReservationEvent {
    let id: String
    let campaign: String
    let record: ReservationRecord

    /// Insert, or move a confirmed row on to its final status; replaying an
    /// older event never moves a row back.
    static let upsertSQL = """
        INSERT INTO reservations (id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
        WHERE reservations.status = 'confirmed' AND excluded.status <> 'confirmed'
        """

    /// Who made the change: `citizen` unless the event names someone
    /// (staff redeeming, a token's name).
    let actor: String


    init?(_ entry: StreamBatch.Entry, campaign: String) {
        guard let id = entry.field(StreamEntryFields.id), let record = entry.field(StreamEntryFields.record).flatMap(ReservationRecord.init)
        else { return nil }
        self.id = id
        self.campaign = campaign
        self.record = record
        actor = entry.field(StreamEntryFields.actor) ?? "citizen"
    }

    var auditEntry: AuditEntry {
        var after = JSONWriter(capacity: 128)
        after.beginObject()
        after.field("status", record.status.rawValue)
        after.field("campaign_id", campaign)
        after.field("site_id", record.site)
        after.field("slot_id", record.slot)
        after.endObject()
        return AuditEntry(atMillis: record.updatedAtMillis, actor: actor, action: "reservation." + record.status.rawValue,
                          subject: "reservation:" + id,
                          before: record.status == .confirmed ? "null" : "{\"status\":\"confirmed\"}", after: after.text)
    }

    var bindings: [SQLiteValue] {
        [.text(id), .text(campaign), .text(record.site), .text(record.slot), .text(record.status.rawValue),
         .text(record.code), .text(record.citizenKey), .integer(record.createdAtMillis), .integer(record.updatedAtMillis)]
    }
}
