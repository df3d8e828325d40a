import RedisClient

extension RedisAsyncClient {
    /// FCALL; when the function is missing (Redis restarted without its
    /// data, or FUNCTION FLUSH) the library is loaded and the call made once
    /// more.
    func run(_ function: StoredFunction, keys: [String], arguments: [String], completion: @escaping Completion) {
        var command = function.command(keys: keys.count, arguments: arguments.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        run(command, completion: completion)
    }

    /// `run`, for an FCALL already in the wire format
    /// (`StoredFunction.command(keys:arguments:)`, keys and arguments appended).
    func run(_ command: RedisCommand, completion: @escaping Completion) {
        CopyingFunctionCall(command, on: self, completion).send()
    }

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
    let redis: RedisAsyncClient
    private var reloaded = false

    init(_ command: RedisCommand, on redis: RedisAsyncClient) {
        self.command = command
        self.redis = redis
    }

    /// Sends the command, with this call waiting for its reply.
    func send() { redis.send(command, call: self) }

    override final func replied(_ result: Result<RedisReplyView, RedisFailure>) {
        guard !reloaded, case .success(let reply) = result, let message = reply.errorMessage,
              Scripts.isMissingFunction(message) else {
            return completed(result)
        }
        reloaded = true
        redis.send(Scripts.loadCommand) { [self] _ in send() }
    }

    /// The reply, lent for this call only.
    func completed(_ result: Result<RedisReplyView, RedisFailure>) {}
}

/// A FunctionCall whose reply goes, copied, to a completion closure.
private final class CopyingFunctionCall: FunctionCall {
    private let completion: RedisAsyncClient.Completion

    init(_ command: RedisCommand, on redis: RedisAsyncClient, _ completion: @escaping RedisAsyncClient.Completion) {
        self.completion = completion
        super.init(command, on: redis)
    }

    override func completed(_ result: Result<RedisReplyView, RedisFailure>) { completion(result.map(\.copy)) }
}

extension RedisSyncClient {
    /// The blocking twin of `RedisAsyncClient.run`.
    func run(_ function: StoredFunction, keys: [String], arguments: [String]) throws -> RedisReply {
        let command = function.command(keys: keys, arguments: arguments)
        let reply = try self.command(command)
        guard let message = reply.errorMessage, Scripts.isMissingFunction(message) else { return reply }
        let loaded = try self.command(Scripts.loadCommand)
        guard Scripts.isLoaded(loaded) else { throw RedisError(loaded.errorMessage ?? "FUNCTION LOAD failed") }
        return try self.command(command)
    }
}
