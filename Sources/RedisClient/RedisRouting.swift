/// Where a loop's Redis commands go, each with the hash slot of its keys:
/// one Redis (`RedisAsyncClient`, which needs no slot) or a cluster's
/// masters (`RedisClusterClient`, which sends each to its slot's master).
/// The server's code names the slot of every command; which of the two
/// carries it is the deployment's choice.
public protocol RedisRouting: AnyObject {
    /// Whether commands can go out now (one Redis: connected; a cluster:
    /// every slot has a connected master).
    var isConnected: Bool { get }
    /// Commands sent and not yet answered (retries waiting included).
    var pendingCount: Int { get }
    /// Runs on every (re)connect of each server's connection, before the
    /// commands queued for it (the functions library is loaded this way).
    var onServerConnect: ((RedisAsyncClient) -> Void)? { get set }
    /// In a completion: the connection its reply came on (nil if it has
    /// dropped). `WAIT` counts the writes of its own connection only.
    var replyingConnection: RedisConnection? { get }
    /// The connection a command for `slot` would go on now (nil: none is up).
    func connection(forSlot slot: Int) -> RedisConnection?
    /// Sends on exactly `connection`; fails at once if it has dropped or
    /// been made again since.
    func send(_ arguments: [String], on connection: RedisConnection, completion: @escaping RedisAsyncClient.Completion)
    /// Connects (and keeps reconnecting); on the loop.
    func start()
    /// Fails what is pending and lets the connections go; on the loop.
    func stop()
    /// A command in the wire format; `call` gets the reply, lent.
    func send(_ command: RedisCommand, slot: Int, call: RedisCall)
    /// A command; the completion gets a copy of the reply.
    func send(_ arguments: [String], slot: Int, completion: @escaping RedisAsyncClient.Completion)
}

/// One connection to one Redis server: its address and which of the
/// client's successive connections it is.
public struct RedisConnection: Hashable, Sendable {
    public let node: ClusterNodeAddress
    public let generation: Int
}

extension RedisAsyncClient: RedisRouting {
    public var replyingConnection: RedisConnection? {
        isConnected ? RedisConnection(node: ClusterNodeAddress(host: settings.host, port: settings.port), generation: generation) : nil
    }

    public func send(_ arguments: [String], on connection: RedisConnection, completion: @escaping Completion) {
        guard isConnected, generation == connection.generation else { return completion(.failure(.disconnected)) }
        send(arguments, completion: completion)
    }

    public func connection(forSlot slot: Int) -> RedisConnection? { replyingConnection }

    public var onServerConnect: ((RedisAsyncClient) -> Void)? {
        get { onConnect }
        set { onConnect = newValue }
    }

    public func send(_ command: RedisCommand, slot: Int, call: RedisCall) { send(command, call: call) }

    public func send(_ arguments: [String], slot: Int, completion: @escaping Completion) { send(arguments, completion: completion) }
}

extension RedisClusterClient: RedisRouting {
    public var isConnected: Bool { isReady }

    public var onServerConnect: ((RedisAsyncClient) -> Void)? {
        get { onNodeConnect }
        set { onNodeConnect = newValue }
    }
}

/// A command and the hash slot of its keys (a keyless one, such as `TIME`,
/// takes the slot of the keys it goes with).
public struct RoutedCommand: Sendable {
    public let slot: Int
    public let arguments: [String]

    public init(slot: Int, _ arguments: [String]) {
        self.slot = slot
        self.arguments = arguments
    }
}

/// The blocking side (the persister, the admin worker, `allot recover`):
/// one `RedisSyncClient`, or a `RedisSyncClusterClient`.
public protocol RedisSyncRouting: AnyObject {
    /// Whether the commands go to a cluster, where one command's keys must
    /// share a slot (a read of many streams is one command per slot).
    var isCluster: Bool { get }
    /// One command; an error reply is returned, not thrown.
    func command(_ arguments: [String], slot: Int) throws -> RedisReply
    /// One command, its reply read in place by `body`.
    func withReply<T>(_ arguments: [String], slot: Int, _ body: (RedisReplyView) throws -> T) throws -> T
    /// Every command, their replies in order (one Redis: one round trip).
    func pipeline(_ commands: [RoutedCommand]) throws -> [RedisReply]
    func close()
}

extension RedisSyncRouting {
    /// Like `command`, but an error reply throws.
    @discardableResult
    public func checked(_ arguments: [String], slot: Int) throws -> RedisReply {
        let reply = try command(arguments, slot: slot)
        if let message = reply.errorMessage { throw RedisError(message) }
        return reply
    }

    /// Like `pipeline`, but the first error reply throws.
    @discardableResult
    public func checkedPipeline(_ commands: [RoutedCommand]) throws -> [RedisReply] {
        let replies = try pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError(message) }
        return replies
    }
}

extension RedisSyncClient: RedisSyncRouting {
    public var isCluster: Bool { false }

    public func command(_ arguments: [String], slot: Int) throws -> RedisReply { try command(arguments) }

    public func withReply<T>(_ arguments: [String], slot: Int, _ body: (RedisReplyView) throws -> T) throws -> T {
        try withReply(arguments, body)
    }

    public func pipeline(_ commands: [RoutedCommand]) throws -> [RedisReply] { try pipeline(commands.map(\.arguments)) }
}

extension RedisSyncClusterClient: RedisSyncRouting {
    public var isCluster: Bool { true }

    /// One command after the other: a pipeline's commands may belong to
    /// several masters.
    public func pipeline(_ commands: [RoutedCommand]) throws -> [RedisReply] {
        try commands.map { try command($0.arguments, slot: $0.slot) }
    }
}
