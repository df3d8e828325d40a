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
    private let redis: any RedisSyncRouting
    private let logger: Logger
    private let health: SharedHealth
    private let metrics: ServerMetrics
    /// The hot campaigns, by id.
    private var campaigns: [CampaignLayout] = []
    /// Every bucket of every hot campaign: one stream each.
    private var streams: [CampaignKeys] = []
    /// Stream key → its campaign's keys, for the rows written from each stream.
    private var campaignOfStream: [String: CampaignKeys] = [:]
    /// Streams whose own pending entries (left by a previous run) are done.
    private var recovered: Set<String> = []
    /// Whether the last round asked every stream for new entries (id `>`),
    /// not only for its own pending ones (id `0`): only then does a round
    /// that wrote nothing mean the streams are drained.
    private(set) var lastRoundReadNewEntries = false
    private var lastAcked: [String: String] = [:]
    private var campaignsCheckedAt: Int64 = 0
    private var trimmedAt: Int64 = 0
    private var pendingCheckedAt: Int64 = 0
    private var retiredAt: Int64 = 0
    private var movesSweptAt: Int64 = 0
    private let moveSweeper: TransferSweeper
    /// Only the lease holder reads the streams and writes SQLite.
    private let lease: WriterLease
    private var fence: Int64 = 0
    /// 0: the hot set is swept at the first round.
    private var sweptAt: Int64 = 0
    private var leafMaker = EventLedger.LeafMaker()
    /// When the last read began (monotonic µs) and what it wrote.
    private var lastReadAt: Int64 = 0
    private var lastWritten = 0
    /// How often own pending entries are read again. XREADGROUP '>' hands
    /// entries over once: if the reply is lost (a timeout, the redial that
    /// resends a command) or their SQLite write fails, they wait in this
    /// consumer's pending list, which only an id-0 read returns.
    static let pendingRecheckMillis: Int64 = 2_000

    init(settings: Persister.Settings, database: SQLiteDatabase, redis: any RedisSyncRouting, logger: Logger,
         health: SharedHealth, metrics: ServerMetrics) {
        self.settings = settings
        self.database = database
        self.redis = redis
        self.logger = logger
        self.health = health
        self.metrics = metrics
        moveSweeper = TransferSweeper(staleMillis: Int64(settings.moveStaleMillis), logger: logger,
                                      replicaAcks: settings.replicaAcksRequired)
        lease = WriterLease(redis: redis, nodeID: settings.nodeID, lifeMillis: settings.writerLeaseMillis)
    }

    func close() {
        lease.release()
        redis.close()
    }

    /// One read–write–ack round; returns the entries written.
    @discardableResult
    func round() throws -> Int {
        let now = monotonicMicros() / 1000
        guard let held = lease.ensure(floor: try WriterLease.storedFence(database)) else {
            // Standing by: another process writes SQLite.
            health.holdsWriterLease.store(false, ordering: .relaxed)
            fence = 0
            lastRoundReadNewEntries = true
            Thread.sleep(forTimeInterval: Double(settings.blockMillis) / 1000)
            return 0
        }
        if held != fence {
            // Taken (again): every stream's entries pending with an earlier
            // holder are claimed before anything else is read.
            logger.info("writer lease taken", metadata: ["holder": "\(lease.holder)", "fence": "\(held)"])
            fence = held
            follow([])
            recovered.removeAll()
            health.holdsWriterLease.store(true, ordering: .relaxed)
        }
        if sweptAt == 0 || now - sweptAt >= Int64(settings.hotSetSweepMillis) {
            try sweepHotSet()
            sweptAt = now
        }
        if now - campaignsCheckedAt >= 1_000 || campaigns.isEmpty {
            try refreshCampaigns()
            campaignsCheckedAt = now
        }
        guard !campaigns.isEmpty else {
            lastRoundReadNewEntries = true  // no stream: nothing to drain
            try probeSQLite()
            Thread.sleep(forTimeInterval: Double(settings.blockMillis) / 1000)
            return 0
        }
        if now - pendingCheckedAt >= Self.pendingRecheckMillis {
            recovered.removeAll()
            pendingCheckedAt = now
            // Entries an earlier holder read after it had lost the lease
            // (a long round) wait under its name: only the holder reads, so
            // any other consumer's pending entries are taken over.
            for keys in streams { try claimAbandoned(keys) }
        }
        if lastWritten > 0, lastWritten < settings.batchRowsMax {
            let wait = lastReadAt + Int64(settings.batchGatherMillis) * 1000 - monotonicMicros()
            if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1_000_000) }
        }
        lastReadAt = monotonicMicros()
        let written: Int
        do {
            written = try readAndPersist()
            lastWritten = written
        } catch {
            lastWritten = 0
            recovered.removeAll()
            // Redis lost its data (and `allot recover` rebuilt it): learn the
            // campaigns and their groups again.
            if let redisError = error as? RedisError, redisError.description.contains("NOGROUP") { follow([]) }
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
        if now - movesSweptAt >= Int64(settings.moveSweepMillis) {
            for layout in campaigns where layout.isSpread {
                try moveSweeper.sweep(campaign: layout.campaign, buckets: layout.buckets, redis: redis)
            }
            movesSweptAt = now
        }
        return written
    }

    private func refreshCampaigns() throws {
        let members = try redis.checked(["SMEMBERS", HotSet.key], slot: HotSet.slot).elements?.compactMap(\.text) ?? []
        let fresh = members.filter { OperatorID.isValid($0) }.sorted()
        let known = Dictionary(uniqueKeysWithValues: campaigns.map { ($0.campaign, $0) })
        var next: [CampaignLayout] = []
        for campaign in fresh {
            if let layout = known[campaign] {
                next.append(layout)
                continue
            }
            let layout = CampaignLayout(campaign, buckets: try buckets(of: campaign))
            for keys in layout.bucketKeys {
                let reply = try redis.command(["XGROUP", "CREATE", keys.stream, GlobalKeys.persistGroup, "0", "MKSTREAM"],
                                              slot: keys.slot)
                if let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") { throw RedisError(message) }
                try claimAbandoned(keys)
            }
            next.append(layout)
        }
        follow(next)
    }

    /// A campaign's buckets, as SQLite (the record of configuration) says:
    /// a Redis that lost a config hash cannot hide a bucket's stream.
    private func buckets(of campaign: String) throws -> CampaignBuckets {
        try StoredConfig(database: database).buckets(campaign) ?? .single
    }

    /// Reads these campaigns' streams from now on.
    private func follow(_ layouts: [CampaignLayout]) {
        campaigns = layouts
        streams = layouts.flatMap(\.bucketKeys)
        campaignOfStream = Dictionary(uniqueKeysWithValues: streams.map { ($0.stream, $0) })
    }

    /// Takes over entries an earlier lease holder read but never
    /// acknowledged: only the holder reads, so any other consumer's are
    /// abandoned (one that wakes up later can no longer write SQLite).
    private func claimAbandoned(_ keys: CampaignKeys) throws {
        var cursor = "0-0"
        repeat {
            let reply = try redis.checked(["XAUTOCLAIM", keys.stream, GlobalKeys.persistGroup, settings.consumer,
                                           "0", cursor, "COUNT", "1000", "JUSTID"],
                                          slot: keys.slot)
            cursor = reply.elements?.first?.text ?? "0-0"
        } while cursor != "0-0"
    }

    /// Reads own pending entries first (id 0: what a crash left unacked),
    /// then new ones ('>'), blocking briefly when there are none. What every
    /// read of the round returned goes to SQLite in one transaction.
    private func readAndPersist() throws -> Int {
        let ids = streams.map { recovered.contains($0.stream) ? ">" : "0" }
        let readsNew = ids.allSatisfy { $0 == ">" }
        lastRoundReadNewEntries = readsNew
        let reads = streamReads(ids: ids, blocking: readsNew)
        let batch = try database.transaction(begunOnDemand: { begin -> WrittenBatch in
            var batch = WrittenBatch()
            var writer: EventWriter?
            for read in reads {
                do {
                    // The reply is read where hiredis keeps it: fields are bound
                    // to SQLite as slices of it, with no String per field.
                    try redis.withReply(read.arguments, slot: read.slot) { reply in
                        if let message = reply.errorMessage { throw RedisError(message) }
                        // Nothing read (BLOCK ran out): no write lock taken.
                        guard reply.count > 0 else { return }
                        try begin()
                        if writer == nil { writer = try EventWriter(database, fence: fence) }
                        try write(reply, with: &writer!, into: &batch)
                    }
                } catch let error as RedisError where reads.count > 1 && !error.description.contains("NOGROUP") {
                    // One shard away (a failover): the others' events still
                    // go to SQLite. What it handed over unread waits in this
                    // consumer's pending list (the id-0 rereads).
                    logger.warning("stream read failed; the other shards' are written", metadata: ["error": "\(error)"])
                    batch.unreadSlots.insert(read.slot)
                }
            }
            if let writer { try seal(writer, into: &batch) }
            return batch
        })
        if !batch.unreadSlots.isEmpty { lastRoundReadNewEntries = false }
        for (keys, id) in zip(streams, ids) where id == "0" && batch.acks[keys.stream] == nil && !batch.unreadSlots.contains(keys.slot) {
            recovered.insert(keys.stream)
        }
        guard batch.entries > 0 else {
            metrics.persistLagMillis.record(0)
            // Reads that could not block: the pause is here instead.
            if readsNew, reads.count > 1 { Thread.sleep(forTimeInterval: Double(settings.blockMillis) / 1000) }
            return 0
        }
        health.sqliteWritable.store(true, ordering: .relaxed)
        metrics.persistBatchRows.record(batch.entries)
        metrics.persistedRows.increment(by: batch.entries)
        if let oldest = batch.oldestMillis { metrics.persistLagMillis.record(max(0, WallClock.nowMillis() - oldest)) }
        // One info line a batch; a line per state change only at debug
        // (a surge makes thousands a second, and each line costs CPU).
        if let events = batch.events {
            logger.info("reservations persisted", metadata: [
                "changes": "\(events.count)", "campaigns": "\(batch.campaignsChanged.sorted().joined(separator: ","))",
                "audit_id": "\(batch.auditID)", "event_seqs": "\(events.lowerBound)...\(events.upperBound)",
            ])
        }
        for event in batch.debugEvents {
            logger.debug("reservation \(event.status)", metadata: [
                "campaign": "\(event.campaign)", "slot": "\(event.slot)", "actor": "\(event.actor)", "event_seq": "\(event.seq)",
            ])
        }
        for (stream, streamIDs) in batch.acks {
            guard let last = streamIDs.last, let keys = campaignOfStream[stream] else { continue }
            try redis.checked(["XACK", stream, GlobalKeys.persistGroup] + streamIDs, slot: keys.slot)
            lastAcked[stream] = last
        }
        return batch.entries
    }

    /// The round's reads: one XREADGROUP of every stream on one Redis. On a
    /// cluster a command's keys must share a slot, so it is one read per
    /// slot, none blocking (one waiting would hold up the others; the round
    /// pauses instead when all of them found nothing).
    private func streamReads(ids: [String], blocking: Bool) -> [RoutedCommand] {
        let groups = redis.isCluster
            ? Dictionary(grouping: streams.indices) { streams[$0].slot }.values.sorted { $0[0] < $1[0] }
            : [Array(streams.indices)]
        return groups.map { group in
            var command = ["XREADGROUP", "GROUP", GlobalKeys.persistGroup, settings.consumer,
                           "COUNT", String(settings.batchRowsMax)]
            if blocking, groups.count == 1 { command += ["BLOCK", String(settings.blockMillis)] }
            command += ["STREAMS"] + group.map { streams[$0].stream } + group.map { ids[$0] }
            return RoutedCommand(slot: streams[group[0]].slot, command)
        }
    }

    /// What one batch wrote, for the acknowledgements, metrics and logs.
    private struct WrittenBatch {
        var entries = 0
        /// Stream → the ids read from it (acknowledged once SQLite has them).
        var acks: [String: [String]] = [:]
        var oldestMillis: Int64?
        /// The seqs of the state changes written, and their batch's audit row.
        var events: ClosedRange<Int64>?
        var auditID: Int64 = 0
        var campaignsChanged: Set<String> = []
        /// Slots whose read failed this round (a shard away).
        var unreadSlots: Set<Int> = []
        /// Filled only when the log level is debug.
        var debugEvents: [(status: String, campaign: String, slot: String, actor: String, seq: Int64)] = []
    }

    /// One transaction's writing state: its statements, and the state
    /// changes it has numbered and hashed so far (sealed by one audit row).
    private struct EventWriter {
        let upsert: SQLiteStatement
        let insertEvent: SQLiteStatement
        let insertRegistration: SQLiteStatement
        let upsertWaitlist: SQLiteStatement
        let firstSeq: Int64
        var seq: Int64
        var root = EventLedger.RootHasher()

        init(_ database: SQLiteDatabase, fence: Int64) throws {
            try WriterLease.claim(fence, in: database)
            upsert = try database.statement(Schema.reservationUpsert)
            insertEvent = try database.statement(Schema.eventInsert)
            insertRegistration = try database.statement(Schema.registrationInsert)
            upsertWaitlist = try database.statement(Schema.waitlistUpsert)
            let lastSeq = try database.statement("SELECT COALESCE(MAX(seq), 0) FROM reservation_events").rows { $0.int(0) }
            firstSeq = (lastSeq.first ?? 0) + 1
            seq = firstSeq - 1
        }
    }

    /// The actor of a change no one else is named for.
    private static let citizenActor: StaticString = "citizen"

    /// Writes an XREADGROUP reply's entries and the state changes they make
    /// (`reservation_events`), in the transaction under way. A replayed
    /// entry changes no row, so it adds no event.
    private func write(_ reply: RedisReplyView, with writer: inout EventWriter, into batch: inout WrittenBatch) throws {
        let debug = logger.logLevel <= .debug
        let citizen = UnsafeRawBufferPointer(start: Self.citizenActor.utf8Start, count: Self.citizenActor.utf8CodeUnitCount)
        for streamIndex in 0..<reply.count {
            guard let stream = reply[streamIndex], stream.count == 2, let name = stream[0]?.text,
                  let entries = stream[1] else { continue }
            // Only the streams of `streams` are asked for; a reply naming
            // another is Redis's error, left unacknowledged, never a trap.
            guard let campaign = campaignOfStream[name]?.campaign else {
                logger.error("reply named a stream not asked for", metadata: ["stream": "\(name)"])
                continue
            }
            var acks: [String] = []
            acks.reserveCapacity(entries.count)
            let changesBefore = writer.seq
            var campaignText = campaign
            try campaignText.withUTF8 { campaignBytes in
                let campaignBytes = UnsafeRawBufferPointer(campaignBytes)
                for entryIndex in 0..<entries.count {
                    guard let entry = entries[entryIndex], let streamID = StreamEntryView.streamID(of: entry) else { continue }
                    let streamIDText = String(decoding: streamID, as: UTF8.self)
                    acks.append(streamIDText)
                    if acks.count == 1, let millis = StreamID.millis(bytes: streamID) {
                        batch.oldestMillis = min(batch.oldestMillis ?? millis, millis)
                    }
                    if let registration = RegistrationEntryView(entry) {
                        // A lottery entry: kept as it is (a replay changes nothing).
                        try writer.insertRegistration.run { row in
                            row.text(registration.id); row.text(campaignBytes); row.text(registration.citizenKey)
                            row.text(registration.preferences); row.integer(registration.createdAtMillis)
                        }
                        continue
                    }
                    if let waiting = WaitlistEntryView(entry) {
                        // A waitlist entry: written, or moved on from waiting.
                        let record = waiting.record
                        try writer.upsertWaitlist.run { row in
                            row.text(waiting.id); row.text(campaignBytes); row.text(record.target.text); row.text(record.citizenKey)
                            row.text(record.status.rawValue); row.integer(record.joinedAtMillis); row.text(record.offerReservationID)
                            row.text(record.offerCode); row.integer(record.updatedAtMillis)
                        }
                        continue
                    }
                    guard let event = StreamEntryView(entry) else {
                        logger.error("unreadable stream entry skipped", metadata: ["stream": "\(name)", "id": "\(streamIDText)"])
                        continue
                    }
                    let record = event.record
                    try writer.upsert.run { row in
                        row.text(event.reservationID); row.text(campaignBytes); row.text(record.site); row.text(record.slot)
                        row.text(record.statusText); row.text(record.code); row.text(record.citizenKey)
                        row.integer(record.createdAtMillis); row.integer(record.updatedAtMillis)
                        if let expires = record.expiresAtMillis { row.integer(expires) } else { row.null() }
                    }
                    guard database.changes > 0 else { continue }
                    writer.seq += 1
                    let seq = writer.seq
                    let fields = EventLedger.Fields(seq: seq, campaign: campaignBytes, reservation: event.reservationID,
                                                    status: record.statusText, slot: record.slot, site: record.site,
                                                    actor: event.actor ?? citizen, atMillis: record.updatedAtMillis)
                    let leaf = leafMaker.leaf(fields)
                    writer.root.add(leaf)
                    try leaf.withBytes { leafBytes in
                        try writer.insertEvent.run { row in
                            row.integer(seq); row.text(fields.reservation); row.text(campaignBytes); row.text(fields.status)
                            row.text(fields.slot); row.text(fields.site); row.text(fields.actor); row.integer(fields.atMillis)
                            row.blob(leafBytes)
                        }
                    }
                    if debug {
                        batch.debugEvents.append((record.status.rawValue, campaign, String(decoding: record.slot, as: UTF8.self),
                                                  String(decoding: fields.actor, as: UTF8.self), seq))
                    }
                }
            }
            batch.entries += acks.count
            if !acks.isEmpty { batch.acks[name, default: []] += acks }
            if writer.seq > changesBefore { batch.campaignsChanged.insert(campaign) }
        }
    }

    /// Seals the transaction's state changes with one audit row.
    private func seal(_ writer: EventWriter, into batch: inout WrittenBatch) throws {
        guard writer.seq >= writer.firstSeq else { return }
        let claim = EventLedger.BatchClaim(auditID: 0, firstSeq: writer.firstSeq, lastSeq: writer.seq, root: writer.root.root())
        batch.auditID = try AuditLog(database: database).append([AuditEntry(
            atMillis: WallClock.nowMillis(), actor: "system", action: EventLedger.batchAction,
            subject: "reservation_events:\(writer.firstSeq)-\(writer.seq)", after: claim.json)])
        batch.events = writer.firstSeq...writer.seq
    }

    /// Trims each stream below the oldest entry still pending (or below the
    /// last one acknowledged when nothing is pending).
    private func trim() throws {
        for keys in streams {
            let pending = try redis.checked(["XPENDING", keys.stream, GlobalKeys.persistGroup], slot: keys.slot).elements ?? []
            let floor: String?
            if let count = pending.first?.integer, count > 0 {
                // The smallest pending id; without it, trim nothing this round.
                floor = pending.count > 1 ? pending[1].text : nil
            } else {
                floor = lastAcked[keys.stream]
            }
            guard let floor else { continue }
            try redis.checked(["XTRIM", keys.stream, "MINID", floor], slot: keys.slot)
        }
    }

    /// Takes campaigns whose booking has ended and whose every event is in
    /// SQLite out of the hot set, so the loops' refresh and this reader
    /// follow only campaigns that can still change.
    private func retire() throws {
        var retired: [String] = []
        for layout in campaigns where try HotSet.retire(layout, consumerGroup: GlobalKeys.persistGroup, redis: redis) {
            retired.append(layout.campaign)
        }
        guard !retired.isEmpty else { return }
        follow(campaigns.filter { !retired.contains($0.campaign) })
        logger.info("campaigns retired from the hot set", metadata: ["campaigns": "\(retired.joined(separator: ","))"])
    }

    private func sweepHotSet() throws {
        for campaign in try HotSet.sweep(redis, consumerGroup: GlobalKeys.persistGroup, buckets: buckets(of:)) {
            logger.warning("campaign put back in the hot set (a node stopped between a change and its hand-off)",
                           metadata: ["campaign": "\(campaign)"])
        }
    }

    /// Proves SQLite takes writes, for /readyz, when there is nothing to write.
    private func probeSQLite() throws {
        try database.transaction { try WriterLease.claim(fence, in: database) }
        health.sqliteWritable.store(true, ordering: .relaxed)
    }
}
