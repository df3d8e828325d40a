import RedisClient

/// How much a 201 survives (README "Durability"). `standard`: Redis's AOF
/// with `appendfsync everysec`, so a machine crash can lose up to ~1 s of
/// answered reservations. `strict`: `appendfsync always`, so a 201 is on
/// disk before it is sent, at a throughput cost (BENCHMARKS.md).
public enum Durability: String, Sendable, CaseIterable {
    case standard, strict

    /// The `appendfsync` the private redis-server is started with.
    public var appendFsync: String { self == .strict ? "always" : "everysec" }

    public struct Unmet: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks a Redis the server did not start. Strict refuses to run on a
    /// Redis that would not fsync every write (fail closed: better no
    /// server than 201s that are not what they promise); standard warns
    /// when the AOF is off. Returns the warning, if any.
    public func check(host: String, port: Int) throws -> String? {
        let redis = RedisSyncClient(host: host, port: port)
        defer { redis.close() }
        let replies = try redis.pipeline([["CONFIG", "GET", "appendonly"], ["CONFIG", "GET", "appendfsync"]])
        let appendOnly = replies[0].elements?.last?.text ?? "?"
        let fsync = replies[1].elements?.last?.text ?? "?"
        switch self {
        case .strict where appendOnly != "yes" || fsync != "always":
            throw Unmet(description: "--durability strict needs appendonly yes and appendfsync always on \(host):\(port) "
                        + "(it has appendonly \(appendOnly), appendfsync \(fsync)); set them, or run --durability standard")
        case .standard where appendOnly != "yes":
            return "Redis at \(host):\(port) runs without AOF: a crash of Redis loses every reservation not yet in SQLite"
        default:
            return nil
        }
    }
}
