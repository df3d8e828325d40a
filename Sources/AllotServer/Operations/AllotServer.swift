import AllotDomain
import EventHTTP
import EventLoops
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
    /// Nil on a front node (no SQLite).
    private let persister: Persister?
    private let shared: SharedServices
    let metrics: ServerMetrics
    /// One per loop, made before the loops start; each loop thread fills in
    /// only its own handle (the array itself is never mutated concurrently).
    private var handles: [LoopHandle] = []
    private let stoppedLoops = DispatchGroup()
    public private(set) var port: UInt16 = 0
    /// The loops, for tests that need to load one.
    var eventLoops: [EventLoop] { handles.map(\.loop) }
    private var stopped = false

    public init(config: ServerConfig, logger: Logger) {
        precondition(config.threads >= 1 && config.threads <= 256)
        self.config = config
        self.logger = logger
        let tokens = TokenDirectory(bootstrapToken: config.adminToken)
        metrics = ServerMetrics(loops: config.threads)
        let hasDatabase = config.role == .full
        admin = AdminWorker(databasePath: hasDatabase ? config.databasePath : nil, redis: config.redis, tokens: tokens, tokenRefreshMillis: config.tokenRefreshMillis,
                            logger: logger)
        var persistSettings = Persister.Settings(databasePath: config.databasePath, redis: config.redis)
        persistSettings.batchRowsMax = config.persistBatchRowsMax
        persistSettings.blockMillis = config.persistBlockMillis
        persistSettings.retireEveryMillis = config.retireEveryMillis
        persistSettings.hotSetSweepMillis = config.hotSetSweepMillis
        persistSettings.moveStaleMillis = config.moveStaleMillis
        persistSettings.replicaAcksRequired = config.replicaAcksRequired
        persistSettings.nodeID = config.nodeID
        persistSettings.consumer = "persister-" + config.nodeID
        persistSettings.writerLeaseMillis = config.writerLeaseMillis
        persister = hasDatabase ? Persister(settings: persistSettings, logger: logger, health: health, metrics: metrics) : nil
        shared = SharedServices(config: config, logger: logger, admin: admin, tokens: tokens, metrics: metrics,
                                health: health)
    }

    /// Starts everything and returns once every loop accepts connections.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN)  // a client gone mid-write must not kill the process
        _ = OpenAPIDocument.bytes  // a missing resource stops the start, not a request
        try CitizenKeyCheck.verify(shared.keyer, redis: config.redis, logger: logger)
        let series = shared.dashboardSeries, metrics = shared.metrics
        admin.runEverySecond { store in DashboardSampler.sample(store, series: series, metrics: metrics) }
        try admin.start()
        try persister?.start()
        let limits = shared.httpLimits
        let gate = try connectionGate()
        var port = config.port
        var listeners: [Int32] = []
        for _ in 0..<config.threads {
            let (fd, bound) = try ListeningSocket.open(host: config.host, port: port)
            listeners.append(fd)
            port = bound
        }
        self.port = port
        let ready = DispatchGroup()
        handles = listeners.indices.map { LoopHandle(loop: EventLoop(index: $0)) }
        for (handle, fd) in zip(handles, listeners) {
            ready.enter()
            stoppedLoops.enter()
            let loop = handle.loop
            loop.execute { [shared] in
                let context = LoopContext(loop: loop, shared: shared)
                context.start()
                handle.context = context
                let server = try? HTTPServer(loop: loop, listenerFD: fd, limits: limits, gate: gate) { context.handle($0) }
                let requests = context.metrics
                server?.responded = { exchange, status in
                    requests.responded(route: exchange.label, status: status,
                                       elapsedMicros: monotonicMicros() - exchange.startedMicros)
                }
                server?.connectionEnded = { requests.connectionEnded($0) }
                handle.server = server
                context.openConnections = { server?.openConnections ?? 0 }
                ready.leave()
            }
            let thread = Thread { [stoppedLoops] in
                nameCurrentThread("allot-loop-\(loop.index)")
                loop.run()
                stoppedLoops.leave()
            }
            thread.name = "allot-loop-\(loop.index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        ready.wait()
        guard handles.allSatisfy({ $0.hasServer }) else { throw ServerStartError("an event loop could not start its HTTP server") }
        metrics.eventLoops.record(config.threads)
        logger.info("serving", metadata: ["host": "\(config.host)", "port": "\(port)", "loops": "\(config.threads)"])
    }

    /// The connection caps, within what the process may open: the soft
    /// descriptor limit is raised to the hard one, and the cap leaves room
    /// for Redis, SQLite and the refused connections still being answered.
    private func connectionGate() throws -> ConnectionGate {
        let descriptorsMax = FileDescriptorLimit.raiseToHard()
        let reserved = 256 + config.threads * HTTPLimits().refusedLingeringMax
        let connectionsMax = min(config.connectionsMax, descriptorsMax - reserved)
        guard connectionsMax >= 1 else {
            throw ServerStartError("the process may open only \(descriptorsMax) files; raise `ulimit -n`")
        }
        if connectionsMax < config.connectionsMax {
            logger.warning("connection cap lowered to fit the open-file limit",
                           metadata: ["connections_max": "\(connectionsMax)", "open_files_max": "\(descriptorsMax)"])
        }
        let proxies = config.trustedProxies
        return ConnectionGate(connectionsMax: connectionsMax, perAddressMax: config.connectionsPerAddressMax) { address in
            proxies.contains { $0.contains(address) }
        }
    }

    /// Graceful stop (SIGTERM, SIGINT): stop accepting, answer new requests
    /// on open connections 503 and close them, let in-flight requests finish
    /// (bounded), stop the loops, drain the persister into SQLite, stop the
    /// admin worker.
    public func stop() {
        guard !stopped else { return }
        stopped = true
        for handle in handles {
            handle.loop.execute {
                handle.server?.stopAccepting()
                handle.context?.draining = true
            }
        }
        waitForInFlight()
        for handle in handles {
            handle.loop.execute {
                handle.context?.stop()
                handle.server?.close()
                handle.loop.stop()
            }
        }
        stoppedLoops.wait()
        persister?.stop(deadlineMillis: config.shutdownDrainMillisMax)
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
            for handle in handles {
                checked.enter()
                handle.loop.execute {
                    if let context = handle.context, context.redis.pendingCount > 0 { busy.add(1, ordering: .relaxed) }
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

/// What one loop owns, reachable from other threads only through
/// `loop.execute`. `hasServer` is read after the start handshake.
private final class LoopHandle: @unchecked Sendable {
    let loop: EventLoop
    var context: LoopContext?
    var server: HTTPServer?
    var hasServer: Bool { server != nil }

    init(loop: EventLoop) { self.loop = loop }
}
