import AllotDomain
import Crypto
import EventHTTP
import EventLoops
import Foundation
import SQLiteStore
import Synchronization

/// A valid bearer token: whose it is and what it may do.
struct Grant: Equatable, Sendable {
    let name: String
    let role: Role

    /// How the audit trail names whoever used this token.
    var actor: String { "token:" + name }
}

/// Bearer tokens as the loops see them: SHA-256 digests → grants, refreshed
/// from SQLite by the admin worker (a revoked token stops working within
/// one refresh). The loops never touch SQLite; they look up here and note
/// when each token was last used, which the admin worker writes back.
final class TokenDirectory: Sendable {
    static let bootstrapName = "bootstrap"
    private let bootstrapDigest: String?
    private let grants = Mutex<[String: Grant]>([:])
    private let lastUsed = Mutex<[String: Int64]>([:])

    init(bootstrapToken: String?) {
        bootstrapDigest = bootstrapToken.map(Self.digest)
    }

    static func digest(_ token: some StringProtocol) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    /// The grant of a presented token, or nil. Compares digests, never
    /// tokens: a lookup's timing says nothing about any token's bytes.
    func grant(for token: Substring) -> Grant? {
        grant(forDigest: Self.digest(token))
    }

    /// The grant of the token whose digest this is (a dashboard session
    /// names its token so): nil once the token is revoked.
    func grant(forDigest digest: String) -> Grant? {
        if digest == bootstrapDigest { return Grant(name: Self.bootstrapName, role: .admin) }
        guard let grant = grants.withLock({ $0[digest] }) else { return nil }
        lastUsed.withLock { $0[grant.name] = WallClock.nowMillis() }
        return grant
    }

    func replace(with stored: [String: Grant]) {
        grants.withLock { $0 = stored }
    }

    /// Last-use times noted since the previous call.
    func takeLastUsed() -> [String: Int64] {
        lastUsed.withLock { used in
            defer { used.removeAll() }
            return used
        }
    }
}

/// Slows online guessing of tokens: each address may fail authentication
/// `policy.burst` times at once and `policy.rate` times a second after
/// that; past it, token routes answer 429 without looking at the token.
/// Bounded: at most `addressesMax` addresses are tracked.
final class AuthFailureLimiter: Sendable {
    static let addressesMax = 10_000
    let policy: BucketPolicy
    private let buckets = Mutex<[String: TokenBucket]>([:])

    init(policy: BucketPolicy) { self.policy = policy }

    /// Seconds to wait when this address has no failures left, else nil.
    func retryAfter(_ address: String, nowMicros: Int64 = monotonicMicros()) -> Int? {
        buckets.withLock { buckets in
            guard let bucket = buckets[address] else { return nil }
            return bucket.waitSeconds(policy: policy, nowMicros: nowMicros)
        }
    }

    func failed(_ address: String, nowMicros: Int64 = monotonicMicros()) {
        buckets.withLock { buckets in
            if buckets[address] == nil, buckets.count >= Self.addressesMax {
                // Forget the addresses whose buckets have refilled; if all are
                // still busy, start over rather than grow.
                buckets = buckets.filter { $0.value.waitSeconds(policy: policy, nowMicros: nowMicros) != nil }
                if buckets.count >= Self.addressesMax { buckets.removeAll() }
            }
            var bucket = buckets[address] ?? TokenBucket(policy: policy, nowMicros: nowMicros)
            _ = bucket.take(policy: policy, nowMicros: nowMicros)
            buckets[address] = bucket
        }
    }
}

/// The `tokens` table: made, listed and revoked by `allot token`, read by
/// the admin worker. Only SHA-256 digests are stored.
struct TokenStore {
    let database: SQLiteDatabase

    struct Listed: Sendable {
        let name: String
        let role: Role
        let createdAtMillis: Int64
        let lastUsedAtMillis: Int64?
        let revokedAtMillis: Int64?
    }

    enum Failure: Error, CustomStringConvertible {
        case nameTaken(String)
        case badName(String)
        case unknown(String)

        var description: String {
            switch self {
            case .nameTaken(let name): "a token named \(name) already exists"
            case .badName(let name): "token names match ^[a-z0-9][a-z0-9_-]{0,63}$, got \(name)"
            case .unknown(let name): "no active token named \(name)"
            }
        }
    }

    /// Makes a token and returns it: the only time it is ever shown.
    func create(role: Role, name: String?, actor: String) throws -> (name: String, token: String) {
        var secret = [UInt8](repeating: 0, count: 32)
        secret.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        let token = "allot_" + Hex.encode(secret)
        let name = name ?? "\(role.rawValue)-\(Hex.encode(secret.prefix(3)))"
        guard OperatorID.isValid(Substring(name)) else { throw Failure.badName(name) }
        let now = WallClock.nowMillis()
        try database.transaction {
            let taken = try database.statement("SELECT 1 FROM tokens WHERE name = ?").rows([.text(name)]) { _ in true }
            guard taken.isEmpty else { throw Failure.nameTaken(name) }
            try database.statement("INSERT INTO tokens (name, role, digest, created_at) VALUES (?, ?, ?, ?)")
                .run([.text(name), .text(role.rawValue), .text(TokenDirectory.digest(token)), .integer(now)])
            try AuditLog(database: database).append([AuditEntry(
                atMillis: now, actor: actor, action: "token.create", subject: "token:\(name)",
                after: "{\"role\":\"\(role.rawValue)\"}")])
        }
        return (name, token)
    }

    func revoke(name: String, actor: String) throws {
        let now = WallClock.nowMillis()
        try database.transaction {
            let roles = try database.statement("SELECT role FROM tokens WHERE name = ? AND revoked_at IS NULL")
                .rows([.text(name)]) { $0.text(0) }
            guard let role = roles.first else { throw Failure.unknown(name) }
            try database.statement("UPDATE tokens SET revoked_at = ? WHERE name = ?").run([.integer(now), .text(name)])
            try AuditLog(database: database).append([AuditEntry(
                atMillis: now, actor: actor, action: "token.revoke", subject: "token:\(name)",
                before: "{\"role\":\"\(role)\"}")])
        }
    }

    func list() throws -> [Listed] {
        try database.statement("SELECT name, role, created_at, last_used_at, revoked_at FROM tokens ORDER BY created_at, name")
            .rows { row in
                Listed(name: row.text(0), role: Role(rawValue: row.text(1)) ?? .auditor, createdAtMillis: row.int(2),
                       lastUsedAtMillis: row.isNull(3) ? nil : row.int(3), revokedAtMillis: row.isNull(4) ? nil : row.int(4))
            }
    }

    /// Digest → grant of every token not revoked.
    func activeGrants() throws -> [String: Grant] {
        let rows = try database.statement("SELECT digest, name, role FROM tokens WHERE revoked_at IS NULL").rows { row in
            (row.text(0), row.text(1), Role(rawValue: row.text(2)))
        }
        var grants: [String: Grant] = [:]
        for (digest, name, role) in rows { if let role { grants[digest] = Grant(name: name, role: role) } }
        return grants
    }

    func recordLastUsed(_ used: [String: Int64]) throws {
        guard !used.isEmpty else { return }
        try database.transaction {
            let update = try database.statement("UPDATE tokens SET last_used_at = ? WHERE name = ?")
            for (name, at) in used { try update.run([.integer(at), .text(name)]) }
        }
    }
}
