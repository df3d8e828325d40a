import AllotDomain
import SQLiteStore

/// What the `allot token` and `allot audit` commands do to the SQLite file,
/// beside a running server or without one.
public struct OperatorDatabase {
    private let database: SQLiteDatabase

    public init(path: String) throws {
        database = try Schema.open(path: path)
    }

    public struct TokenRow: Sendable {
        public let name: String
        public let role: Role
        public let createdAtMillis: Int64
        public let lastUsedAtMillis: Int64?
        public let revokedAtMillis: Int64?
    }

    /// Returns the token's name and the token itself (shown once, never stored).
    public func createToken(role: Role, name: String?, actor: String) throws -> (name: String, token: String) {
        try TokenStore(database: database).create(role: role, name: name, actor: actor)
    }

    public func revokeToken(name: String, actor: String) throws {
        try TokenStore(database: database).revoke(name: name, actor: actor)
    }

    public func tokens() throws -> [TokenRow] {
        try TokenStore(database: database).list().map {
            TokenRow(name: $0.name, role: $0.role, createdAtMillis: $0.createdAtMillis,
                     lastUsedAtMillis: $0.lastUsedAtMillis, revokedAtMillis: $0.revokedAtMillis)
        }
    }

    public struct AuditVerdict: Sendable {
        public let rowsChecked: Int
        public let eventsChecked: Int
        /// The first row that does not match, and how; nil when the chain holds.
        public let firstBreak: AuditChainVerifier.Break?
        /// The first reservation event that does not match its batch's audit
        /// row (checked only when the chain holds); nil when all match.
        public let eventBreak: EventLedgerVerifier.Break?

        init(_ verification: AuditLog.Verification) {
            rowsChecked = verification.rowsChecked
            eventsChecked = verification.eventsChecked
            firstBreak = verification.chainBreak
            eventBreak = verification.eventBreak
        }

        public var holds: Bool { firstBreak == nil && eventBreak == nil }

        /// The verdict in a sentence: `allot audit verify` prints it, the
        /// dashboard's audit page shows it.
        public var summary: String {
            switch firstBreak {
            case .brokenLink(let id):
                return "audit chain broken at row \(id): its previous hash is not the hash of row \(id - 1) (a row was removed, inserted or re-chained); \(rowsChecked) rows before it are intact"
            case .contentMismatch(let id):
                return "audit chain broken at row \(id): its content does not match its hash (the row was edited); \(rowsChecked) rows before it are intact"
            case nil: break
            }
            let intact = "\(rowsChecked) audit rows intact, \(eventsChecked) reservation events before it match"
            switch eventBreak {
            case nil: return "audit chain intact: \(rowsChecked) rows, \(eventsChecked) reservation events"
            case .eventEdited(let seq): return "reservation event \(seq) was edited: its fields do not match the leaf its batch sealed; \(intact)"
            case .eventMissing(let seq): return "reservation event \(seq) is missing (deleted): a batch's audit row seals it; \(intact)"
            case .eventInserted(let seq): return "reservation event \(seq) was inserted: no batch's audit row seals it; \(intact)"
            case .batchAltered(let id):
                return "the reservation events sealed by audit row \(id) were altered (their leaves no longer make its root); \(intact)"
            }
        }
    }

    public func verifyAudit() throws -> AuditVerdict {
        AuditVerdict(try AuditLog(database: database).verify())
    }
}
