import RedisClient

extension RedisRouting {
    /// FCALL of keys in `slot`; when the function is missing (Redis
    /// restarted without its data, or FUNCTION FLUSH) the library is loaded
    /// and the call made once more.
    func run(_ function: StoredFunction, slot: Int, keys: [String], arguments: [String],
             completion: @escaping RedisAsyncClient.Completion) {
        var command = function.command(keys: keys.count, arguments: arguments.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        CopyingFunctionCall(command, slot: slot, on: self, completion).send()
    }
}

extension RedisAsyncClient {
    /// Loads the library: run on each (re)connect.
    func loadScripts() {
        send(Scripts.loadCommand) { _ in }
    }
}

/// An FCALL whose reply is lent to `completed`, on the loop (the
/// reservation path's: one object per attempt). When the function is
/// missing, the library is loaded and the same command sent once more.
class FunctionCall: RedisCall {
    let command: RedisCommand
    /// The hash slot of its keys (a cluster sends it, and the reload, to
    /// that slot's master).
    let slot: Int
    let redis: any RedisRouting
    private var reloaded = false

    init(_ command: RedisCommand, slot: Int, on redis: any RedisRouting) {
        self.command = command
        self.slot = slot
        self.redis = redis
    }

    /// Sends the command, with this call waiting for its reply.
    func send() { redis.send(command, slot: slot, call: self) }

    override final func replied(_ result: Result<RedisReplyView, RedisFailure>) {
        guard !reloaded, case .success(let reply) = result, let message = reply.errorMessage,
              Scripts.isMissingFunction(message) else {
            return completed(result)
        }
        reloaded = true
        redis.send(Scripts.loadCommand, slot: slot) { [self] _ in send() }
    }

    /// The reply, lent for this call only.
    func completed(_ result: Result<RedisReplyView, RedisFailure>) {}
}

/// A FunctionCall whose reply goes, copied, to a completion closure.
private final class CopyingFunctionCall: FunctionCall {
    private let completion: RedisAsyncClient.Completion

    init(_ command: RedisCommand, slot: Int, on redis: any RedisRouting, _ completion: @escaping RedisAsyncClient.Completion) {
        self.completion = completion
        super.init(command, slot: slot, on: redis)
    }

    override func completed(_ result: Result<RedisReplyView, RedisFailure>) { completion(result.map(\.copy)) }
}

extension RedisSyncRouting {
    /// The blocking twin of `RedisRouting.run`.
    func run(_ function: StoredFunction, slot: Int, keys: [String], arguments: [String]) throws -> RedisReply {
        let command = function.command(keys: keys, arguments: arguments)
        let reply = try self.command(command, slot: slot)
        guard let message = reply.errorMessage, Scripts.isMissingFunction(message) else { return reply }
        let loaded = try self.command(Scripts.loadCommand, slot: slot)
        guard Scripts.isLoaded(loaded) else { throw RedisError(loaded.errorMessage ?? "FUNCTION LOAD failed") }
        return try self.command(command, slot: slot)
    }
}
