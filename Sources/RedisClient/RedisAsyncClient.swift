import CHiredis
import EventLoops
import Glibc

/// One hiredis async connection on one event loop (the libevent adapter).
/// Commands are pipelined on the socket; replies come back in order, so the
/// pending commands form a FIFO. hiredis 0.14 has no command timeout: a timer
/// checks the oldest pending command, and past its deadline every pending
/// command fails with `.timeout` and the connection is dropped and redialled,
/// so a frozen Redis gives fast failures instead of hung requests.
public final class RedisAsyncClient {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var commandTimeoutMillis = 1_000
        public var reconnectDelayMillisMin = 50
        public var reconnectDelayMillisMax = 2_000
        /// Commands in flight at once; more are refused at once (load
        /// shedding: the caller answers 503). Sized so a full queue drains
        /// well inside the command timeout at this machine's ~15k scripts/s
        /// per loop, rather than timing out and dropping the connection.
        public var pendingCommandsMax = 4_096

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public typealias Completion = (Result<RedisReply, RedisFailure>) -> Void

    private let loop: EventLoop
    let settings: Settings
    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var pending = PendingQueue()
    private var connected = false
    private var reconnectDelayMillis: Int
    private var watchdog: LoopTimer?
    private var stopped = false
    private var argv = ArgvBuffer()
    /// Where hiredis builds this client's replies (its contexts, one at a
    /// time, are all freed while the client lives: `stop` frees the last).
    private let replyArena = ReplyArena()
    /// Runs on every (re)connect, before any other command is sent.
    public var onConnect: ((RedisAsyncClient) -> Void)?

    public init(loop: EventLoop, settings: Settings) {
        self.loop = loop
        self.settings = settings
        self.reconnectDelayMillis = settings.reconnectDelayMillisMin
    }

    public var isConnected: Bool { connected }
    /// Counts connections made: a connection is this and the address.
    public private(set) var generation = 0
    public var pendingCount: Int { pending.count }

    /// Dials Redis and keeps redialling with backoff until `stop`.
    public func start() {
        loop.preconditionInLoop()
        let period = max(10, settings.commandTimeoutMillis / 4)
        watchdog = loop.schedule(everyMillis: period) { [unowned self] in self.expireOverdue() }
        connect()
    }

    public func stop() {
        loop.preconditionInLoop()
        stopped = true
        watchdog?.cancel()
        watchdog = nil
        dropConnection(.disconnected)
    }

    /// Sends one command. The completion runs exactly once, on the loop.
    public func send(_ arguments: [String], completion: @escaping Completion) {
        loop.preconditionInLoop()
        guard connected else { return completion(.failure(.disconnected)) }
        enqueue(arguments, completion: completion)
    }

    /// Sends one command already in the wire format; `call` gets the reply,
    /// lent (the hot path's: one object per command, nothing copied).
    public func send(_ command: RedisCommand, call: RedisCall) {
        loop.preconditionInLoop()
        precondition(command.isComplete, "a command with fewer arguments than announced")
        guard connected else { return call.replied(.failure(.disconnected)) }
        enqueue(call) { context, privdata in
            command.bytes.withUnsafeBytes {
                redisAsyncFormattedCommand(context, redisReplied, privdata, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
            }
        }
    }

    /// Sends one command given as arguments; `call` gets the reply, lent.
    public func send(_ arguments: [String], call: RedisCall) {
        loop.preconditionInLoop()
        guard connected else { return call.replied(.failure(.disconnected)) }
        enqueue(call) { context, privdata in
            argv.with(arguments) { argc, argv, lengths in
                redisAsyncCommandArgv(context, redisReplied, privdata, argc, argv, lengths)
            }
        }
    }

    private func enqueue(_ arguments: [String], completion: @escaping Completion) {
        enqueue(ClosureCall(completion)) { context, privdata in
            argv.with(arguments) { argc, argv, lengths in
                redisAsyncCommandArgv(context, redisReplied, privdata, argc, argv, lengths)
            }
        }
    }

    /// Hands one command to hiredis (`issue`, given the context and the
    /// callback's private data) and queues its call.
    private func enqueue(_ call: RedisCall, issue: (UnsafeMutablePointer<redisAsyncContext>, UnsafeMutableRawPointer) -> Int32) {
        guard let context, pending.count < settings.pendingCommandsMax else {
            call.replied(.failure(.disconnected))
            return
        }
        call.deadlineMicros = monotonicMicros() + Int64(settings.commandTimeoutMillis) * 1000
        call.isDone = false
        let retained = Unmanaged.passRetained(call)
        guard issue(context, retained.toOpaque()) == REDIS_OK else {
            retained.release()
            call.replied(.failure(.disconnected))
            return
        }
        pending.append(call)
    }

    fileprivate func received(_ call: RedisCall, reply: UnsafeMutablePointer<redisReply>?) {
        pending.remove(call)
        guard !call.isDone else { return }
        call.isDone = true
        call.replied(reply.map { .success(RedisReplyView($0)) } ?? .failure(.disconnected))
    }

    // MARK: connection life cycle

    private func connect() {
        guard !stopped, context == nil else { return }
        guard let ac = redisAsyncConnect(settings.host, Int32(settings.port)) else { scheduleReconnect(); return }
        if ac.pointee.err != 0 {
            redisAsyncFree(ac)
            scheduleReconnect()
            return
        }
        ac.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        replyArena.adopt(ac.pointee.c.reader)
        context = ac
        _ = allot_redis_libevent_attach(ac, loop.eventBase)
        // `data` is cleared when we free the context ourselves: hiredis then
        // still calls back (a set callback cannot be unset in 0.14).
        redisAsyncSetConnectCallback(ac) { ac, status in
            guard let data = ac?.pointee.data else { return }
            Unmanaged<RedisAsyncClient>.fromOpaque(data).takeUnretainedValue().connectFinished(ok: status == REDIS_OK)
        }
        redisAsyncSetDisconnectCallback(ac) { ac, _ in
            guard let data = ac?.pointee.data else { return }
            Unmanaged<RedisAsyncClient>.fromOpaque(data).takeUnretainedValue().disconnected()
        }
    }

    private func connectFinished(ok: Bool) {
        guard ok else {
            // hiredis frees the context itself after a failed connect.
            context = nil
            scheduleReconnect()
            return
        }
        // A TCP connection proves little: a frozen Redis (SIGSTOP, a long
        // fork) still completes the handshake in the kernel. Commands go
        // through only once Redis has answered; until then they fail at once
        // (503) instead of each waiting out its deadline, and the redial
        // delay keeps growing while Redis stays silent.
        enqueue(["PING"]) { [weak self] result in
            guard let self, case .success = result, !self.connected else { return }
            self.connected = true
            self.generation += 1
            self.reconnectDelayMillis = self.settings.reconnectDelayMillisMin
            self.onConnect?(self)
        }
    }

    /// hiredis has failed every pending callback and frees the context.
    private func disconnected() {
        context = nil
        connected = false
        failAllPending(.disconnected)
        scheduleReconnect()
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        let delay = reconnectDelayMillis
        reconnectDelayMillis = min(settings.reconnectDelayMillisMax, reconnectDelayMillis * 2)
        loop.schedule(afterMillis: delay) { [weak self] in self?.connect() }
    }

    private func expireOverdue() {
        guard let oldest = pending.first, oldest.deadlineMicros < monotonicMicros() else { return }
        dropConnection(.timeout)
        scheduleReconnect()
    }

    /// Fails what is pending, then frees the context (its callbacks then see
    /// commands already done). Called from a timer, never from a hiredis
    /// callback, as hiredis requires.
    private func dropConnection(_ failure: RedisFailure) {
        connected = false
        failAllPending(failure)
        if let context {
            self.context = nil
            context.pointee.data = nil
            redisAsyncFree(context)
        }
    }

    private func failAllPending(_ failure: RedisFailure) {
        let calls = pending.removeAll()
        for call in calls where !call.isDone {
            call.isDone = true
            call.replied(.failure(failure))
        }
    }
}

/// hiredis's reply callback for every command (a C function: it captures
/// nothing; the call comes back as the private data, its client as the
/// context's data, which is cleared when the client frees the context after
/// failing every pending call itself).
private func redisReplied(_ context: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
                          _ privdata: UnsafeMutableRawPointer?) {
    let call = Unmanaged<RedisCall>.fromOpaque(privdata!).takeRetainedValue()
    guard let data = context?.pointee.data else { return }
    Unmanaged<RedisAsyncClient>.fromOpaque(data).takeUnretainedValue()
        .received(call, reply: reply?.assumingMemoryBound(to: redisReply.self))
}

/// What waits for one command's reply: the client queues it and calls
/// `replied` exactly once per send, on the loop. Subclass it to carry what
/// the reply needs: one object per command, where a completion closure and
/// the client's own record of it would be two or three.
open class RedisCall {
    var deadlineMicros: Int64 = 0
    var isDone = false

    public init() {}

    /// The reply, lent for this call only (copy what outlives it), or why
    /// there is none.
    open func replied(_ result: Result<RedisReplyView, RedisFailure>) {}
}

/// A call whose reply goes, copied, to a completion closure.
final class ClosureCall: RedisCall {
    private let completion: RedisAsyncClient.Completion

    init(_ completion: @escaping RedisAsyncClient.Completion) { self.completion = completion }

    override func replied(_ result: Result<RedisReplyView, RedisFailure>) { completion(result.map(\.copy)) }
}

/// FIFO of commands in reply order (an array with a moving head: O(1)
/// amortised, no per-command allocation beyond the command itself).
struct PendingQueue {
    private var items: [RedisCall?] = []
    private var head = 0

    var count: Int { items.count - head }
    var first: RedisCall? { head < items.count ? items[head] : nil }

    mutating func append(_ call: RedisCall) { items.append(call) }

    mutating func remove(_ call: RedisCall) {
        guard head < items.count, items[head] === call else { return }
        items[head] = nil
        head += 1
        if head > 1024, head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() -> [RedisCall] {
        let commands = items[head...].compactMap { $0 }
        items.removeAll(keepingCapacity: true)
        head = 0
        return commands
    }
}

