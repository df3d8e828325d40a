import AllotDomain
import SQLiteStore

/// The hash-chained `audit` table (AllotDomain/AuditEntry.swift). Appends
/// run inside the caller's IMMEDIATE transaction, which holds SQLite's write
/// lock: the admin worker, the persister and `allot token` append one at a
/// time, each reading the chain's end under that lock.
struct AuditLog {
    let database: SQLiteDatabase
    static let pageRowsMax = 1_000

    /// Appends `entries` in order, numbering them after the last row;
    /// returns the id given to the first. Must run inside a transaction.
    @discardableResult
    func append(_ entries: [AuditEntry]) throws -> Int64 {
        guard !entries.isEmpty else { return 0 }
        let last = try database.statement("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
            .rows { ($0.int(0), $0.text(1)) }.first
        var id = last?.0 ?? 0
        var previous = last?.1 ?? AuditEntry.genesisHash
        let insert = try database.statement("""
            INSERT INTO audit (id, at, actor, action, subject, before, after, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for var entry in entries {
            id += 1
            entry.id = id
            let hash = entry.chainedHash(previous: previous)
            try insert.run([.integer(id), .integer(entry.atMillis), .text(entry.actor), .text(entry.action),
                            .text(entry.subject), .text(entry.before), .text(entry.after), .text(previous), .text(hash)])
            previous = hash
        }
        return id - Int64(entries.count) + 1
    }

    struct StoredEntry {
        let entry: AuditEntry
        let previousHash: String
        let hash: String
    }

    /// Rows with id > `after`, oldest first.
    func page(after: Int64, limit: Int) throws -> [StoredEntry] {
        try database.statement("""
            SELECT id, at, actor, action, subject, before, after, prev_hash, hash FROM audit
            WHERE id > ? ORDER BY id LIMIT ?
            """).rows([.integer(after), .integer(Int64(min(limit, Self.pageRowsMax)))], Self.stored)
    }

    /// The last `limit` rows, newest first.
    func latest(limit: Int) throws -> [StoredEntry] {
        try database.statement("""
            SELECT id, at, actor, action, subject, before, after, prev_hash, hash FROM audit
            ORDER BY id DESC LIMIT ?
            """).rows([.integer(Int64(min(limit, Self.pageRowsMax)))], Self.stored)
    }

    struct Verification {
        var rowsChecked = 0
        var eventsChecked = 0
        var chainBreak: AuditChainVerifier.Break?
        var eventBreak: EventLedgerVerifier.Break?
    }

    /// Recomputes the whole chain, page by page, then (when it holds) checks
    /// every reservation event against the batch rows that seal them.
    func verify() throws -> Verification {
        // One snapshot: a batch the persister commits meanwhile must not show
        // its events without the audit row that seals them.
        try database.readSnapshot(verifySnapshot)
    }

    private func verifySnapshot() throws -> Verification {
        var verification = Verification()
        var verifier = AuditChainVerifier()
        var claims: [EventLedger.BatchClaim] = []
        var after: Int64 = 0
        pages: while true {
            let rows = try page(after: after, limit: Self.pageRowsMax)
            guard let last = rows.last else { break pages }
            for row in rows {
                if let broken = verifier.check(row.entry, storedPrevious: row.previousHash, storedHash: row.hash) {
                    verification.rowsChecked = verifier.rowsChecked
                    verification.chainBreak = broken
                    return verification
                }
                if let claim = EventLedger.BatchClaim(auditID: row.entry.id, action: row.entry.action, after: row.entry.after) {
                    claims.append(claim)
                }
            }
            after = last.entry.id
        }
        verification.rowsChecked = verifier.rowsChecked
        var events = EventLedgerVerifier(claims: claims)
        var seqAfter: Int64 = 0
        let eventPage = try database.statement("""
            SELECT seq, campaign_id, reservation_id, status, slot_id, site_id, actor, at, leaf FROM reservation_events
            WHERE seq > ? ORDER BY seq LIMIT 1000
            """)
        while true {
            var seen = 0
            var broken: EventLedgerVerifier.Break?
            try eventPage.forEachRow([.integer(seqAfter)]) { row in
                guard broken == nil else { return }
                seen += 1
                seqAfter = row.int(0)
                // The bytes as stored (a text read as a String would have
                // any invalid UTF-8 replaced, and no longer match its leaf).
                let texts = (1...6).map { row.blob(Int32($0)) }
                broken = Self.withBytes(texts) { bytes in
                    events.check(EventLedger.Fields(seq: seqAfter, campaign: bytes[0], reservation: bytes[1], status: bytes[2],
                                                    slot: bytes[3], site: bytes[4], actor: bytes[5], atMillis: row.int(7)),
                                 storedLeaf: row.blob(8))
                }
            }
            if broken != nil || seen == 0 {
                verification.eventsChecked = events.eventsChecked
                verification.eventBreak = broken ?? events.finish()
                return verification
            }
        }
    }

    /// Each byte array as a buffer, for as long as `body` runs.
    private static func withBytes<T>(_ texts: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) -> T) -> T {
        var joined: [UInt8] = []
        var ranges: [Range<Int>] = []
        for text in texts {
            let start = joined.count
            joined += text
            ranges.append(start..<joined.count)
        }
        return joined.withUnsafeBytes { all in body(ranges.map { UnsafeRawBufferPointer(rebasing: all[$0]) }) }
    }

    /// One row of `reservation_events`, as the auditors' endpoint shows it.
    struct StoredEvent {
        let seq: Int64
        let reservationID, campaignID, status, slotID, siteID, actor: String
        let atMillis: Int64
        let leaf: [UInt8]
    }

    /// Reservation events with seq > `after`, in order.
    func eventsPage(after: Int64, limit: Int) throws -> [StoredEvent] {
        try database.statement("""
            SELECT seq, reservation_id, campaign_id, status, slot_id, site_id, actor, at, leaf FROM reservation_events
            WHERE seq > ? ORDER BY seq LIMIT ?
            """).rows([.integer(after), .integer(Int64(min(limit, Self.pageRowsMax)))]) { row in
            StoredEvent(seq: row.int(0), reservationID: row.text(1), campaignID: row.text(2), status: row.text(3),
                        slotID: row.text(4), siteID: row.text(5), actor: row.text(6), atMillis: row.int(7), leaf: row.blob(8))
        }
    }

    private static func stored(_ row: SQLiteStatement) -> StoredEntry {
        StoredEntry(entry: AuditEntry(id: row.int(0), atMillis: row.int(1), actor: row.text(2), action: row.text(3),
                                      subject: row.text(4), before: row.text(5), after: row.text(6)),
                    previousHash: row.text(7), hash: row.text(8))
    }
}
