import RedisClient

/// How much a 201 survives (README "Durability"). `standard`: Redis's AOF
/// with `appendfsync everysec`, so a machine crash can lose up to ~1 s of
/// answered reservations. `strict`: `appendfsync always`, so a 201 is on
/// disk before it is sent, at a throughput cost (BENCHMARKS.md).
/// `replicated`: a 201 is sent once `WAIT 1` confirms the write reached a
/// replica (on a cluster, a replica of the master that made it), so a
/// failover to that replica keeps it.
public enum Durability: String, Sendable, CaseIterable {
    case standard, strict, replicated

    /// Replicas that must confirm a reservation's write before its 201.
    public var replicaAcksRequired: Int { self == .replicated ? 1 : 0 }

    /// The `appendfsync` the private redis-server is started with.
    public var appendFsync: String { self == .strict ? "always" : "everysec" }

    public struct Unmet: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks a Redis the server did not start (on a cluster, every master).
    /// Strict refuses to run on a Redis that would not fsync every write
    /// (fail closed: better no server than 201s that are not what they
    /// promise); standard warns when the AOF is off. Returns the warnings.
    public func check(_ deployment: RedisDeployment) throws -> [String] {
        switch deployment {
        case .single(let address):
            return try check(address).map { [$0] } ?? []
        case .cluster(let seeds):
            let cluster = RedisSyncClusterClient(seeds: seeds)
            defer { cluster.close() }
            try cluster.refreshMap()
            guard cluster.map.isComplete else {
                throw Unmet(description: "the cluster at \(seeds[0]) does not serve every slot (\(cluster.map.unownedSlotCount) have no master)")
            }
            guard self == .replicated else { return try cluster.map.masters.compactMap { try check($0) } }
            // Replicated: a master without a replica may be one just
            // promoted in a failover (its replica is coming); its shard's
            // reservations are refused until one confirms (ReplicationGate).
            // A cluster with no replica anywhere is a mistake: refused.
            var warnings: [String] = [], unreplicated: [String] = []
            for master in cluster.map.masters {
                do {
                    if let warning = try check(master) { warnings.append(warning) }
                } catch let unmet as Unmet {
                    unreplicated.append(unmet.description)
                }
            }
            guard unreplicated.count < cluster.map.masters.count else {
                throw Unmet(description: unreplicated.first ?? "--durability replicated needs replicas")
            }
            return warnings + unreplicated.map { $0 + "; its shard's reservations are refused until a replica confirms" }
        }
    }

    private func check(_ address: ClusterNodeAddress) throws -> String? {
        let (host, port) = (address.host, address.port)
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
        case .replicated:
            let info = try redis.command(["INFO", "replication"]).text ?? ""
            let field = { (name: String) in
                info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
            }
            // A replica still syncing counts in connected_slaves but could
            // confirm nothing: one must be online (`slaveN:…,state=online`).
            let online = info.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("slave") && $0.contains("state=online") }.count
            guard field("role") == "master", online >= 1 else {
                throw Unmet(description: "--durability replicated needs a Redis master with an online replica at \(host):\(port) "
                            + "(it is \(field("role") ?? "?") with \(online) online)")
            }
            return appendOnly == "yes" ? nil : "Redis at \(host):\(port) runs without AOF: 201s rely on its replica alone"
        default:
            return nil
        }
    }
}
