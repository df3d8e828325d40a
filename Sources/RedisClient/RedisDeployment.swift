import EventLoops

/// Where Redis is: one server, or a cluster reached through some of its
/// nodes (the seeds). The rest of the server asks this for its clients and
/// names a slot with every command; which clients carry them is decided
/// here alone.
public enum RedisDeployment: Sendable, Hashable, CustomStringConvertible {
    case single(ClusterNodeAddress)
    case cluster(seeds: [ClusterNodeAddress])

    /// `HOST:PORT` for one server, `HOST:PORT[,HOST:PORT…]` for a cluster's
    /// seeds; nil if any address is not one.
    public static func parse(_ text: String, cluster: Bool) -> RedisDeployment? {
        let addresses = text.split(separator: ",").map { ClusterNodeAddress(parsing: $0.drop { $0 == " " }) }
        guard !addresses.isEmpty, addresses.allSatisfy({ $0.map { ClusterNodeAddress.isKnownHost($0.host) } ?? false })
        else { return nil }
        let known = addresses.compactMap { $0 }
        if cluster { return .cluster(seeds: known) }
        return known.count == 1 ? .single(known[0]) : nil
    }

    public var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    /// Every address given (one server, or the seeds).
    public var addresses: [ClusterNodeAddress] {
        switch self {
        case .single(let address): [address]
        case .cluster(let seeds): seeds
        }
    }

    /// A blocking client (the persister, the admin worker, `allot recover`).
    public func blockingClient(timeoutMillis: Int) -> any RedisSyncRouting {
        switch self {
        case .single(let address):
            return RedisSyncClient(host: address.host, port: address.port, timeoutMillis: timeoutMillis)
        case .cluster(let seeds):
            let client = RedisSyncClusterClient(seeds: seeds, timeoutMillis: timeoutMillis)
            client.deadlineMillis = max(client.deadlineMillis, timeoutMillis)
            return client
        }
    }

    /// A loop's client, each command answered or failed within
    /// `commandTimeoutMillis` (redirections and retries included).
    public func loopClient(on loop: EventLoop, commandTimeoutMillis: Int) -> any RedisRouting {
        switch self {
        case .single(let address):
            var settings = RedisAsyncClient.Settings(host: address.host, port: address.port)
            settings.commandTimeoutMillis = commandTimeoutMillis
            return RedisAsyncClient(loop: loop, settings: settings)
        case .cluster(let seeds):
            var settings = RedisClusterClient.Settings(seeds: seeds)
            settings.node.commandTimeoutMillis = commandTimeoutMillis
            settings.deadlineMillis = commandTimeoutMillis
            return RedisClusterClient(loop: loop, settings: settings)
        }
    }

    public var description: String {
        switch self {
        case .single(let address): "\(address)"
        case .cluster(let seeds): "cluster " + seeds.map(\.description).joined(separator: ",")
        }
    }
}
