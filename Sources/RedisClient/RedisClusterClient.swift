import EventLoops

/// Redis Cluster on one event loop: one `RedisAsyncClient` per master, and
/// each command sent to the master of its key's slot (`ClusterSlotMap`).
/// A thin layer over the hiredis clients (hiredis 0.14 has no cluster
/// support): it follows the cluster specification's redirections and waits
/// out its transient states, within each command's deadline.
///
/// - `MOVED`: the map is patched, a refresh is asked for (one at a time, at
///   most one per `refreshIntervalMillisMin`), and the command goes to the
///   new master.
/// - `ASK`: `ASKING` and the command go to the node named, once; the map is
///   not changed.
/// - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, a master not connected (a
///   failover under way): the command is sent again after a growing delay,
///   and the map read again (a promoted replica is found that way).
/// - `READONLY` (a master demoted by a failover): a refresh, then again.
///
/// A command is sent again only when it cannot have run: after a cluster
/// error reply, or when it was never written. One whose connection dropped
/// while it was in flight fails (it may have run). Past `redirectsMax`
/// redirections or its deadline a command fails with `.disconnected` (the
/// caller answers 503): never a wrong answer, never one waiting forever.
public final class RedisClusterClient {
    public struct Settings: Sendable {
        public var seeds: [ClusterNodeAddress]
        /// Each master's connection (its host and port are the master's).
        public var node: RedisAsyncClient.Settings
        public var redirectsMax = 5
        /// A command's whole time, redirections and retries included.
        public var deadlineMillis = 1_000
        public var retryDelayMillisMin = 10
        public var refreshIntervalMillisMin = 100

        public init(seeds: [ClusterNodeAddress]) {
            precondition(!seeds.isEmpty, "a cluster needs at least one seed")
            self.seeds = seeds
            node = RedisAsyncClient.Settings(host: seeds[0].host, port: seeds[0].port)
        }
    }

    public typealias Completion = RedisAsyncClient.Completion

    private let loop: EventLoop
    private let settings: Settings
    public private(set) var map = ClusterSlotMap()
    private var nodes: [ClusterNodeAddress: RedisAsyncClient] = [:]
    /// A refresh is under way, or waiting out the minimum interval.
    private var refreshBusy = false
    /// Another was asked for meanwhile: it runs when this one ends.
    private var refreshQueued = false
    private var lastRefreshMicros: Int64 = 0
    private var stopped = false
    /// Commands waiting out a delay before they are sent again.
    private var waitingCount = 0
    /// The node whose reply is being delivered (read by `replyingConnection`).
    fileprivate var replyingNode: ClusterNodeAddress?
    /// Runs on each master's every (re)connect, before other commands (the
    /// functions library is loaded on every master this way).
    public var onNodeConnect: ((RedisAsyncClient) -> Void)?

    public init(loop: EventLoop, settings: Settings) {
        self.loop = loop
        self.settings = settings
    }

    /// Dials the seeds and reads the slot map from the first that answers.
    public func start() {
        loop.preconditionInLoop()
        for seed in settings.seeds { _ = connection(to: seed) }
        refreshMap()
    }

    public func stop() {
        loop.preconditionInLoop()
        stopped = true
        for node in nodes.values { node.stop() }
        nodes.removeAll()
    }

    /// The connection of the reply being handled (in a completion): the
    /// node that ran the command, after any redirection.
    public var replyingConnection: RedisConnection? {
        guard let address = replyingNode, let node = nodes[address], node.isConnected else { return nil }
        return RedisConnection(node: address, generation: node.generation)
    }

    /// The connection to `slot`'s master as the map says now.
    public func connection(forSlot slot: Int) -> RedisConnection? {
        guard let address = map.master(forSlot: slot), let node = nodes[address], node.isConnected else { return nil }
        return RedisConnection(node: address, generation: node.generation)
    }

    /// Sends on exactly that connection; fails at once if it has dropped or
    /// been made again since (its writes are not this one's).
    public func send(_ arguments: [String], on connection: RedisConnection, completion: @escaping Completion) {
        loop.preconditionInLoop()
        guard let node = nodes[connection.node], node.isConnected, node.generation == connection.generation else {
            return completion(.failure(.disconnected))
        }
        node.send(arguments, completion: completion)
    }

    /// Commands sent to a master and not answered, and those waiting to be
    /// sent again.
    public var pendingCount: Int { nodes.values.reduce(waitingCount) { $0 + $1.pendingCount } }

    /// Whether every slot has a master and every master is connected.
    public var isReady: Bool {
        map.isComplete && map.masters.allSatisfy { nodes[$0]?.isConnected == true }
    }

    /// Sends a command in the wire format for `slot`; `call` gets the
    /// reply, lent, exactly once.
    public func send(_ command: RedisCommand, slot: Int, call: RedisCall) {
        loop.preconditionInLoop()
        route(ClusterCall(.formatted(command), slot: slot, target: call, cluster: self, givingUpMicros: givingUpMicros()))
    }

    /// Sends a command for `slot`; the completion gets a copy of the reply.
    public func send(_ arguments: [String], slot: Int, completion: @escaping Completion) {
        loop.preconditionInLoop()
        route(ClusterCall(.arguments(arguments), slot: slot, target: ClosureCall(completion), cluster: self,
                          givingUpMicros: givingUpMicros()))
    }

    private func givingUpMicros() -> Int64 { monotonicMicros() + Int64(settings.deadlineMillis) * 1_000 }

    // MARK: routing

    fileprivate func route(_ call: ClusterCall, to address: ClusterNodeAddress? = nil, asking: Bool = false) {
        guard !stopped else { return call.fail() }
        guard let address = address ?? map.master(forSlot: call.slot) else {
            refreshMap()
            return retryLater(call)
        }
        let node = connection(to: address)
        guard node.isConnected else {
            // Down, or not up yet: a failover may have promoted a replica.
            refreshMap()
            return retryLater(call)
        }
        call.sentTo = address
        if asking { node.send(["ASKING"]) { _ in } }
        switch call.payload {
        case .formatted(let command): node.send(command, call: call)
        case .arguments(let arguments): node.send(arguments, call: call)
        }
    }

    fileprivate func redirected(_ call: ClusterCall, by error: ClusterError, from speaker: ClusterNodeAddress?) {
        switch error {
        case .moved, .ask:
            call.redirects += 1
            guard call.redirects <= settings.redirectsMax else { return call.fail() }
        case .readOnly, .tryAgain, .clusterDown, .loading:
            break  // bounded by the deadline
        }
        switch error {
        case .moved(let slot, let address):
            let address = speaker.map { address.resolved(against: $0) } ?? address
            map.move(slot: slot, to: address)
            refreshMap()
            route(call)
        case .ask(_, let address):
            route(call, to: speaker.map { address.resolved(against: $0) } ?? address, asking: true)
        case .readOnly:
            refreshMap()
            retryLater(call)
        case .tryAgain, .clusterDown, .loading:
            if error == .clusterDown { refreshMap() }
            retryLater(call)
        }
    }

    /// Sends `call` again after a delay that doubles with each retry, or
    /// fails it if the delay would pass its deadline.
    fileprivate func retryLater(_ call: ClusterCall) {
        guard !stopped else { return call.fail() }
        let delay = settings.retryDelayMillisMin << min(call.retries, 6)
        call.retries += 1
        guard monotonicMicros() + Int64(delay) * 1_000 < call.givingUpMicros else { return call.fail() }
        waitingCount += 1
        loop.schedule(afterMillis: delay) { [weak self] in
            guard let self else { return call.fail() }
            self.waitingCount -= 1
            self.route(call)
        }
    }

    // MARK: connections and the map

    private func connection(to address: ClusterNodeAddress) -> RedisAsyncClient {
        if let known = nodes[address] { return known }
        var node = settings.node
        node.host = address.host
        node.port = address.port
        let client = RedisAsyncClient(loop: loop, settings: node)
        client.onConnect = { [weak self] client in
            self?.onNodeConnect?(client)
            // A seed that comes up late may be the first that can answer.
            if self?.map.masters.isEmpty == true { self?.refreshMap() }
        }
        nodes[address] = client
        client.start()
        return client
    }

    /// Reads the map again from a connected node: one refresh at a time,
    /// at most one per `refreshIntervalMillisMin`; one asked for meanwhile
    /// runs after it.
    public func refreshMap() {
        guard !stopped else { return }
        guard !refreshBusy else { refreshQueued = true; return }
        refreshQueued = false
        let wait = lastRefreshMicros + Int64(settings.refreshIntervalMillisMin) * 1_000 - monotonicMicros()
        // A master first (it knows the map as well as any), then the seeds.
        let candidates = (map.masters + settings.seeds).compactMap { address in nodes[address].map { (address, $0) } }
        let answering = candidates.first { $0.1.isConnected }
        guard wait <= 0, let (address, node) = answering else {
            // Too soon, or no node to ask yet: try again in a while.
            refreshBusy = true
            loop.schedule(afterMillis: max(Int(wait / 1_000) + 1, settings.refreshIntervalMillisMin)) { [weak self] in
                self?.refreshBusy = false
                self?.refreshMap()
            }
            return
        }
        refreshBusy = true
        lastRefreshMicros = monotonicMicros()
        node.send(["CLUSTER", "SHARDS"]) { [weak self] result in
            guard let self else { return }
            if case .success(let reply) = result, reply.errorMessage == nil,
               let fresh = try? ClusterSlotMap(shards: reply, answeredBy: address) {
                return self.refreshed(fresh)
            }
            // Before Redis 7: CLUSTER SLOTS.
            node.send(["CLUSTER", "SLOTS"]) { [weak self] result in
                guard let self else { return }
                if case .success(let reply) = result, let fresh = try? ClusterSlotMap(slots: reply, answeredBy: address) {
                    return self.refreshed(fresh)
                }
                self.refreshed(nil)
            }
        }
    }

    private func refreshed(_ fresh: ClusterSlotMap?) {
        refreshBusy = false
        if let fresh {
            map = fresh
            for master in map.masters { _ = connection(to: master) }
            // A node that is neither a master nor a seed any more is let go
            // (its commands in flight fail and are sent again).
            for (address, node) in nodes where !map.masters.contains(address) && !settings.seeds.contains(address) {
                node.stop()
                nodes[address] = nil
            }
        }
        if refreshQueued {
            refreshQueued = false
            refreshMap()
        }
    }
}

/// One command on its way through the cluster: the command (sent again on
/// a redirection), its slot, and the caller's call.
private final class ClusterCall: RedisCall {
    enum Payload {
        case formatted(RedisCommand)
        case arguments([String])
    }

    let payload: Payload
    let slot: Int
    let target: RedisCall
    weak var cluster: RedisClusterClient?
    /// The command's deadline over every node it goes to (each send has
    /// its own, the node connection's).
    let givingUpMicros: Int64
    /// `MOVED` and `ASK` followed (bounded by `redirectsMax`).
    var redirects = 0
    /// Waits for a transient state (bounded by the deadline).
    var retries = 0
    /// The node the command went to last (to resolve an unknown endpoint
    /// in its redirection).
    var sentTo: ClusterNodeAddress?

    init(_ payload: Payload, slot: Int, target: RedisCall, cluster: RedisClusterClient, givingUpMicros: Int64) {
        self.payload = payload
        self.slot = slot
        self.target = target
        self.cluster = cluster
        self.givingUpMicros = givingUpMicros
    }

    override func replied(_ result: Result<RedisReplyView, RedisFailure>) {
        guard let cluster else { return fail() }
        switch result {
        case .success(let reply):
            if reply.isError, let message = reply.errorMessage, let error = ClusterError(errorMessage: message) {
                return cluster.redirected(self, by: error, from: sentTo)
            }
            cluster.replyingNode = sentTo
            target.replied(result)
            cluster.replyingNode = nil
        case .failure(.disconnected):
            // The master's connection dropped (a failover, a restart), or
            // its queue is full: the map may have changed, and the command
            // may have run, so it is not sent again.
            cluster.refreshMap()
            target.replied(result)
        case .failure:
            target.replied(result)
        }
    }

    func fail() { target.replied(.failure(.disconnected)) }
}
