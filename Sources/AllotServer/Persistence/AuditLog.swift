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

    /// Recomputes the whole chain, page by page; the first break, or nil.
    func verify() throws -> (rowsChecked: Int, firstBreak: AuditChainVerifier.Break?) {
        var verifier = AuditChainVerifier()
        var after: Int64 = 0
        while true {
            let rows = try page(after: after, limit: Self.pageRowsMax)
            guard let last = rows.last else { return (verifier.rowsChecked, nil) }
            for row in rows {
                if let broken = verifier.check(row.entry, storedPrevious: row.previousHash, storedHash: row.hash) {
                    return (verifier.rowsChecked, broken)
                }
            }
            after = last.entry.id
        }
    }

    private static func stored(_ row: SQLiteStatement) -> StoredEntry {
        StoredEntry(entry: AuditEntry(id: row.int(0), atMillis: row.int(1), actor: row.text(2), action: row.text(3),
                                      subject: row.text(4), before: row.text(5), after: row.text(6)),
                    previousHash: row.text(7), hash: row.text(8))
    }
}
