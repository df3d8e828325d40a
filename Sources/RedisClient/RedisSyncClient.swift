import CHiredis
import Glibc

public struct RedisError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// The connection failed (not an error reply from Redis).
    public var isConnectionError = false
    public init(_ message: String) { self.message = message }
    public var description: String { "Redis: \(message)" }
}

/// A blocking hiredis connection for threads that may block (the persister,
/// the admin worker): never used on an event loop. Reconnects on the next
/// command after an I/O error.
public final class RedisSyncClient {
    public let host: String
    public let port: Int
    public let timeoutMillis: Int
    private var context: UnsafeMutablePointer<redisContext>?
    private var argv = ArgvBuffer()
    /// Where hiredis builds this client's replies; freed with
    /// `freeArenaReply`.
    private let replyArena = ReplyArena()

    public init(host: String, port: Int, timeoutMillis: Int = 2_000) {
        self.host = host
        self.port = port
        self.timeoutMillis = timeoutMillis
    }

    deinit {
        if let context { redisFree(context) }
    }

    private func connection() throws -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        let timeout = timeval(tv_sec: timeoutMillis / 1000, tv_usec: (timeoutMillis % 1000) * 1000)
        guard let fresh = redisConnectWithTimeout(host, Int32(port), timeout) else { throw RedisError("out of memory") }
        if fresh.pointee.err != 0 {
            let message = errorText(fresh)
            redisFree(fresh)
            var error = RedisError("connect \(host):\(port): \(message)")
            error.isConnectionError = true
            throw error
        }
        redisSetTimeout(fresh, timeout)
        replyArena.adopt(fresh.pointee.reader)
        context = fresh
        return fresh
    }

    /// One command, one reply. A Redis error reply is returned, not thrown;
    /// I/O failures throw and drop the connection.
    public func command(_ arguments: [String]) throws -> RedisReply {
        try pipeline([arguments])[0]
    }

    /// Sends every command, then reads every reply: one round trip. A
    /// connection that was idle may have been closed by a Redis restart: the
    /// first failure on a reused connection redials and sends once more, so
    /// callers must send commands that are safe to repeat (all of Allot's
    /// operator and persister commands are).
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        let reused = context != nil
        do {
            return try send(commands)
        } catch let error as RedisError where reused && error.isConnectionError {
            return try send(commands)
        }
    }

    /// One command, its reply read in place by `body` (no copy), then freed.
    /// An I/O failure throws (and redials once, as `pipeline`) before `body`
    /// runs; an error reply is handed to `body` like any other.
    public func withReply<T>(_ arguments: [String], _ body: (RedisReplyView) throws -> T) throws -> T {
        let reused = context != nil
        let raw: UnsafeMutableRawPointer
        do {
            raw = try sendOne(arguments)
        } catch let error as RedisError where reused && error.isConnectionError {
            raw = try sendOne(arguments)
        }
        defer { freeArenaReply(raw) }
        return try body(RedisReplyView(raw.assumingMemoryBound(to: redisReply.self)))
    }

    private func sendOne(_ arguments: [String]) throws -> UnsafeMutableRawPointer {
        let context = try connection()
        let status = argv.with(arguments) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
        guard status == REDIS_OK else { throw drop(context) }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw drop(context) }
        return raw
    }

    private func send(_ commands: [[String]]) throws -> [RedisReply] {
        let context = try connection()
        for arguments in commands {
            let status = argv.with(arguments) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            guard status == REDIS_OK else { throw drop(context) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw drop(context) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(RedisReply(copying: reply))
            freeArenaReply(raw)
        }
        return replies
    }

    /// Like `command`, but an error reply throws.
    @discardableResult
    public func checked(_ arguments: [String]) throws -> RedisReply {
        let reply = try command(arguments)
        if let message = reply.errorMessage { throw RedisError(message) }
        return reply
    }

    /// Like `pipeline`, but the first error reply throws.
    @discardableResult
    public func checkedPipeline(_ commands: [[String]]) throws -> [RedisReply] {
        let replies = try pipeline(commands)
        if let message = replies.lazy.compactMap(\.errorMessage).first { throw RedisError(message) }
        return replies
    }

    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    private func drop(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        var error = RedisError(errorText(context))
        error.isConnectionError = true
        redisFree(context)
        self.context = nil
        return error
    }

    private func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
