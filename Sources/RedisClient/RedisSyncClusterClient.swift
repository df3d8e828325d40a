import EventLoops
import Glibc

/// The blocking twin of `RedisClusterClient`, for threads that may block
/// (the persister, the admin worker): one `RedisSyncClient` per master,
/// each command sent to its slot's master, the same redirections followed
/// (`MOVED` patches the map and resends; `ASK` sends `ASKING`, then the
/// command, to the node named), transient states and unreachable masters
/// waited out with a doubling sleep and a fresh map, all within
/// `deadlineMillis` (and `redirectsMax` redirections). Like
/// `RedisSyncClient`, it may send a command again after a connection
/// error: its callers send commands that are safe to repeat.
public final class RedisSyncClusterClient {
    public let seeds: [ClusterNodeAddress]
    public let timeoutMillis: Int
    public var redirectsMax = 5
    public var deadlineMillis = 2_000
    public private(set) var map = ClusterSlotMap()
    private var nodes: [ClusterNodeAddress: RedisSyncClient] = [:]

    public init(seeds: [ClusterNodeAddress], timeoutMillis: Int = 2_000) {
        precondition(!seeds.isEmpty, "a cluster needs at least one seed")
        self.seeds = seeds
        self.timeoutMillis = timeoutMillis
    }

    deinit { close() }

    public func close() {
        for node in nodes.values { node.close() }
        nodes.removeAll()
    }

    /// One command for `slot`; an error reply that is not the cluster's is
    /// returned, not thrown.
    public func command(_ arguments: [String], slot: Int) throws -> RedisReply {
        try withReply(arguments, slot: slot) { $0.copy }
    }

    /// One command for `slot`, its reply read in place by `body`.
    public func withReply<T>(_ arguments: [String], slot: Int, _ body: (RedisReplyView) throws -> T) throws -> T {
        if map.masters.isEmpty { try refreshMap() }
        let givingUp = monotonicMillis() + deadlineMillis
        var target: ClusterNodeAddress? = nil, asking = false, redirects = 0, retries = 0
        while true {
            guard let address = target ?? map.master(forSlot: slot) else {
                try pause(&retries, until: givingUp, "slot \(slot) has no master")
                try? refreshMap()
                continue
            }
            let outcome: Outcome<T>
            do {
                outcome = try send(arguments, to: address, asking: asking, body)
            } catch let error as RedisError where error.isConnectionError {
                // The master is gone (a failover): wait, read the map again.
                try pause(&retries, until: givingUp, error.message)
                try? refreshMap()
                target = nil
                asking = false
                continue
            }
            switch outcome {
            case .done(let value): return value
            case .redirected(let error):
                if case .moved = error { redirects += 1 } else if case .ask = error { redirects += 1 }
                guard redirects <= redirectsMax else { throw RedisError("slot \(slot): too many redirections") }
                target = nil
                asking = false
                switch error {
                case .moved(let moved, let to):
                    map.move(slot: moved, to: to.resolved(against: address))
                case .ask(_, let to):
                    target = to.resolved(against: address)
                    asking = true
                case .readOnly, .clusterDown:
                    try pause(&retries, until: givingUp, "\(error)")
                    try? refreshMap()
                case .tryAgain, .loading:
                    try pause(&retries, until: givingUp, "\(error)")
                }
            }
        }
    }

    /// The same command on every master (loading the functions library).
    public func commandOnEveryMaster(_ arguments: [String]) throws -> [ClusterNodeAddress: RedisReply] {
        if map.masters.isEmpty { try refreshMap() }
        var replies: [ClusterNodeAddress: RedisReply] = [:]
        for master in map.masters { replies[master] = try node(master).command(arguments) }
        return replies
    }

    /// Reads the map from the first master or seed that answers.
    public func refreshMap() throws {
        var lastError: Error = RedisError("no node of the cluster answered")
        for address in map.masters + seeds {
            do {
                let node = try node(address)
                let shards = try node.command(["CLUSTER", "SHARDS"])
                map = shards.errorMessage == nil
                    ? try ClusterSlotMap(shards: shards, answeredBy: address)
                    : try ClusterSlotMap(slots: node.command(["CLUSTER", "SLOTS"]), answeredBy: address)
                return
            } catch { lastError = error }
        }
        throw lastError
    }

    private enum Outcome<T> {
        case done(T)
        case redirected(ClusterError)
    }

    private func send<T>(_ arguments: [String], to address: ClusterNodeAddress, asking: Bool,
                         _ body: (RedisReplyView) throws -> T) throws -> Outcome<T> {
        let node = try node(address)
        // ASKING holds for the next command on the connection: this one.
        if asking { try node.checked(["ASKING"]) }
        return try node.withReply(arguments) { reply -> Outcome<T> in
            if reply.isError, let message = reply.errorMessage, let error = ClusterError(errorMessage: message) {
                return .redirected(error)
            }
            return .done(try body(reply))
        }
    }

    private func node(_ address: ClusterNodeAddress) throws -> RedisSyncClient {
        if let known = nodes[address] { return known }
        let client = RedisSyncClient(host: address.host, port: address.port, timeoutMillis: timeoutMillis)
        nodes[address] = client
        return client
    }

    /// Sleeps 10, 20, 40… ms, or throws if that would pass `givingUp`.
    private func pause(_ retries: inout Int, until givingUp: Int, _ why: String) throws {
        let delay = 10 << min(retries, 6)
        retries += 1
        guard monotonicMillis() + delay < givingUp else { throw RedisError("cluster unavailable: \(why)") }
        usleep(useconds_t(delay * 1_000))
    }

    private func monotonicMillis() -> Int { Int(monotonicMicros() / 1_000) }
}
