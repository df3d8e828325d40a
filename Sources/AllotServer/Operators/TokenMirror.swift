import AllotDomain
import RedisClient

/// Operators' tokens in Redis, for nodes without SQLite (`--role front`):
/// a full node publishes the active grants (digests only, never a token)
/// each time it reloads them from SQLite, and a front node reads them
/// back. A revoked token stops working on a front node within one reload
/// of each. The mirror lives `lifeMillis` past each publication: with no
/// full node publishing (all down), front nodes lose every token then, so
/// a revocation made meanwhile cannot be missed for long (fail closed).
enum TokenMirror {
    static let lifeMillis = 10_000

    static func publish(_ grants: [String: Grant], to redis: any RedisSyncRouting) throws {
        let slot = GlobalKeys.tokensSlot
        let held = try redis.checked(["HGETALL", GlobalKeys.tokens], slot: slot).pairs ?? [:]
        let wanted = grants.mapValues { $0.role.rawValue + "|" + $0.name }
        let stale = held.keys.filter { wanted[$0] == nil }
        let changed = wanted.filter { held[$0.key] != $0.value }
        if !changed.isEmpty {
            try redis.checked(["HSET", GlobalKeys.tokens] + changed.flatMap { [$0.key, $0.value] }, slot: slot)
        }
        if !stale.isEmpty { try redis.checked(["HDEL", GlobalKeys.tokens] + stale, slot: slot) }
        try redis.checked(["PEXPIRE", GlobalKeys.tokens, String(lifeMillis)], slot: slot)
    }

    static func read(from redis: any RedisSyncRouting) throws -> [String: Grant] {
        let held = try redis.checked(["HGETALL", GlobalKeys.tokens], slot: GlobalKeys.tokensSlot).pairs ?? [:]
        var grants: [String: Grant] = [:]
        for (digest, value) in held {
            let parts = value.split(separator: "|", maxSplits: 1).map(String.init)
            guard parts.count == 2, let role = Role(rawValue: parts[0]) else { continue }
            grants[digest] = Grant(name: parts[1], role: role)
        }
        return grants
    }
}
