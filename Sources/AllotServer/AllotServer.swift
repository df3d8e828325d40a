import AllotDomain
import EventHTTP
import Foundation
import Glibc
import Logging
import Synchronization

/// The whole server: N loops serving HTTP, the admin worker, the persister.
/// Started in that reverse order of shutdown (STYLE.md "Threads and loops").
public final class AllotServer: @unchecked Sendable {
    public let config: ServerConfig
    private let logger: Logger
    private let health = SharedHealth()
    private let admin: AdminWorker
    var adminWorker: AdminWorker { admin }
    private let persister: Persister
    private let shared: SharedServices
    private var loops: [EventLoop] = []
    private var contexts: [LoopContext?] = []
    private var servers: [HTTPServer?] = []
    private var threads: [Thread] = []
    private let stoppedLoops = DispatchGroup()
    public private(set) var port: UInt16 = 0
    private var stopped = false

    public init(config: ServerConfig, logger: Logger) {
        precondition(config.threads >= 1 && config.threads <= 256)
        self.config = config
        self.logger = logger
        admin = AdminWorker(databasePath: config.databasePath, redisHost: config.redisHost,
                            redisPort: config.redisPort, logger: logger)
        var persistSettings = Persister.Settings(databasePath: config.databasePath, redisHost: config.redisHost,
                                                 redisPort: config.redisPort)
        persistSettings.batchRowsMax = config.persistBatchRowsMax
        persistSettings.blockMillis = config.persistBlockMillis
        persister = Persister(settings: persistSettings, logger: logger, health: health)
        shared = SharedServices(config: config, logger: logger, admin: admin, health: health)
    }

    /// Starts everything and returns once every loop accepts connections.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN)  // a client gone mid-write must not kill the process
        try admin.start()
        try persister.start()
        let limits = {
            var limits = HTTPLimits()
            limits.bodyBytesMax = max(config.adminBodyBytesMax, config.citizenBodyBytesMax)
            return limits
        }()
        var port = config.port
        var listeners: [Int32] = []
        for _ in 0..<config.threads {
            let (fd, bound) = try ListeningSocket.open(host: config.host, port: port)
            listeners.append(fd)
            port = bound
        }
        self.port = port
        let ready = DispatchGroup()
        for (index, fd) in listeners.enumerated() {
            let loop = EventLoop(index: index)
            loops.append(loop)
            contexts.append(nil)
            servers.append(nil)
            ready.enter()
            stoppedLoops.enter()
            loop.execute { [self] in
                let context = LoopContext(loop: loop, shared: shared)
                context.start()
                contexts[index] = context
                servers[index] = try? HTTPServer(loop: loop, listenerFD: fd, limits: limits) { context.handle($0) }
                ready.leave()
            }
            let thread = Thread { [self] in
                loop.run()
                stoppedLoops.leave()
            }
            thread.name = "allot-loop-\(index)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
        ready.wait()
        guard servers.allSatisfy({ $0 != nil }) else { throw ServerStartError("an event loop could not start its HTTP server") }
        logger.info("serving", metadata: ["host": "\(config.host)", "port": "\(port)", "loops": "\(config.threads)"])
    }

    /// Graceful stop: stop accepting, let in-flight requests finish, stop
    /// the loops, drain the persister into SQLite, stop the admin worker.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        for (index, loop) in loops.enumerated() {
            loop.execute { [self] in servers[index]?.stopAccepting() }
        }
        waitForInFlight()
        for (index, loop) in loops.enumerated() {
            loop.execute { [self] in
                contexts[index]?.stop()
                servers[index]?.close()
                loop.stop()
            }
        }
        stoppedLoops.wait()
        persister.stop(deadlineMillis: config.shutdownDrainMillisMax)
        admin.stop()
        logger.info("stopped")
    }

    /// Waits (bounded) until no loop has a Redis command in flight.
    private func waitForInFlight() {
        let deadline = monotonicMillis() + Int64(config.shutdownDrainMillisMax)
        Thread.sleep(forTimeInterval: 0.05)
        while monotonicMillis() < deadline {
            let busy = Atomic<Int>(0)
            let checked = DispatchGroup()
            for (index, loop) in loops.enumerated() {
                checked.enter()
                loop.execute { [self] in
                    if let context = contexts[index], context.redis.pendingCount > 0 { busy.add(1, ordering: .relaxed) }
                    checked.leave()
                }
            }
            checked.wait()
            if busy.load(ordering: .relaxed) == 0 { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    private func monotonicMillis() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }
}

public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
