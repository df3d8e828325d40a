import Crypto

/// One row of the audit trail: who did what to which thing, before → after.
/// Rows are hash-chained: each row's hash covers the previous row's hash and
/// its own canonical content, so editing, inserting or deleting a row breaks
/// every hash from there on (`allot audit verify` names the first).
public struct AuditEntry: Equatable, Sendable {
    /// The hash the first row chains from.
    public static let genesisHash = String(repeating: "0", count: 64)

    public var id: Int64
    public var atMillis: Int64
    /// `token:<name>` for an operator, `cli:<user>` for a command run on the
    /// host, `citizen` or `system`.
    public var actor: String
    /// e.g. `campaign.patch`, `reservation.confirmed`.
    public var action: String
    /// What was acted on, e.g. `campaign:masks-w12`, `reservation:<rid>`.
    public var subject: String
    /// JSON texts; "null" when there was nothing before (or after).
    public var before: String
    public var after: String

    public init(id: Int64 = 0, atMillis: Int64, actor: String, action: String, subject: String,
                before: String = "null", after: String = "null") {
        self.id = id
        self.atMillis = atMillis
        self.actor = actor
        self.action = action
        self.subject = subject
        self.before = before
        self.after = after
    }

    /// The bytes the hash covers: a JSON array of every column, in order.
    public var canonicalContent: [UInt8] {
        var json = JSONWriter()
        json.beginArray()
        json.number(Int(id))
        json.number(Int(atMillis))
        json.string(actor)
        json.string(action)
        json.string(subject)
        json.string(before)
        json.string(after)
        json.endArray()
        return json.bytes
    }

    /// SHA-256 (hex) of the previous row's hash, a newline, and this row's
    /// canonical content.
    public func chainedHash(previous: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(previous.utf8))
        hasher.update(data: [UInt8(ascii: "\n")])
        hasher.update(data: canonicalContent)
        return Hex.encode(hasher.finalize())
    }

    /// Writes the entry as the audit endpoint shows it.
    public func write(to json: inout JSONWriter, hash: String) {
        json.beginObject()
        json.field("id", Int(id))
        json.field("at", Timestamp.format(millis: atMillis))
        json.field("actor", actor)
        json.field("action", action)
        json.field("subject", subject)
        json.key("before"); json.raw(before)
        json.key("after"); json.raw(after)
        json.field("hash", hash)
        json.endObject()
    }
}

/// Checks a chain row by row; pure, so the verify command and the tests
/// share it.
public struct AuditChainVerifier {
    public enum Break: Equatable, Sendable {
        /// The row's stored previous hash is not the hash of the row before.
        case brokenLink(id: Int64)
        /// The row's stored hash is not the hash of its content.
        case contentMismatch(id: Int64)
    }

    private var previous = AuditEntry.genesisHash
    public private(set) var rowsChecked = 0

    public init() {}

    /// Checks the next row, given what it stored.
    public mutating func check(_ entry: AuditEntry, storedPrevious: String, storedHash: String) -> Break? {
        guard storedPrevious == previous else { return .brokenLink(id: entry.id) }
        guard entry.chainedHash(previous: storedPrevious) == storedHash else { return .contentMismatch(id: entry.id) }
        previous = storedHash
        rowsChecked += 1
        return nil
    }
}
