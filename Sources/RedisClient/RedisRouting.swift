/// Where a loop's Redis commands go, each with the hash slot of its keys:
/// one Redis (`RedisAsyncClient`, which needs no slot) or a cluster's
/// masters (`RedisClusterClient`, which sends each to its slot's master).
/// The server's code names the slot of every command; which of the two
/// carries it is the deployment's choice.
public protocol RedisRouting: AnyObject {
    /// Whether commands can go out now (one Redis: connected; a cluster:
    /// every slot has a connected master).
    var isConnected: Bool { get }
    /// A command in the wire format; `call` gets the reply, lent.
    func send(_ command: RedisCommand, slot: Int, call: RedisCall)
    /// A command; the completion gets a copy of the reply.
    func send(_ arguments: [String], slot: Int, completion: @escaping RedisAsyncClient.Completion)
}

extension RedisAsyncClient: RedisRouting {
    public func send(_ command: RedisCommand, slot: Int, call: RedisCall) { send(command, call: call) }

    public func send(_ arguments: [String], slot: Int, completion: @escaping Completion) { send(arguments, completion: completion) }
}

extension RedisClusterClient: RedisRouting {
    public var isConnected: Bool { isReady }
}
