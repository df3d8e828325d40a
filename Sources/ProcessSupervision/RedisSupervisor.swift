import EventHTTP
import EventLoops
import Foundation
import Logging
import RedisClient
import Synchronization

/// Starts and watches a private `redis-server` for `allot serve` without
/// `--redis`: AOF on (fsync every second), data under the data directory,
/// restarted if it dies (it reloads its AOF), stopped with the server.
public final class RedisSupervisor: Sendable {
    static let startTimeoutMillis = 10_000
    static let restartDelayMillisMin = 200
    static let restartDelayMillisMax = 5_000

    public let port: Int
    let directory: String
    let appendFsync: String
    /// More `redis-server` options (a cluster node's, in tests and scripts).
    let extraArguments: [String]
    private let logger: Logger
    private let process = Mutex<ChildProcess?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let restartDelayMillis = Atomic<Int>(restartDelayMillisMin)
    private let launchedMicros = Atomic<Int64>(0)

    /// The running redis-server's process id (fault injection in the load harness).
    public var pid: pid_t? { process.withLock { $0?.pid } }

    public init(directory: String, port: Int, appendFsync: String = "everysec", extraArguments: [String] = [], logger: Logger) {
        // Absolute: redis-server changes into --dir before it opens its log.
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.port = port
        self.appendFsync = appendFsync
        self.extraArguments = extraArguments
        self.logger = logger
    }

    /// Ports this process has handed out: a port is free when checked and
    /// bound only later, by a redis-server starting, so two servers started
    /// at once (tests run in parallel, clusters of six) must not be given
    /// the same one, nor one's port as the other's cluster bus port.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port nobody listens on now (the kernel's choice), not handed out before.
    public static func freePort() throws -> Int {
        for _ in 0..<1_000 {
            let (fd, port) = try ListeningSocket.open(host: "127.0.0.1", port: 0)
            close(fd)
            if handedOut.withLock({ $0.insert(Int(port)).inserted }) { return Int(port) }
        }
        throw RedisError("no free port")
    }

    /// A free port whose cluster bus port (port + 10 000, at most 65 535)
    /// is free too, neither handed out before: for a cluster node.
    public static func freeClusterPort() throws -> Int {
        for _ in 0..<1_000 {
            let port = Int.random(in: 20_000...50_000)
            guard let node = try? ListeningSocket.open(host: "127.0.0.1", port: UInt16(port)) else { continue }
            defer { close(node.fd) }
            guard let bus = try? ListeningSocket.open(host: "127.0.0.1", port: UInt16(port + 10_000)) else { continue }
            close(bus.fd)
            let taken = handedOut.withLock { ports -> Bool in
                guard !ports.contains(port), !ports.contains(port + 10_000) else { return false }
                ports.formUnion([port, port + 10_000])
                return true
            }
            if taken { return port }
        }
        throw RedisError("no free port pair for a cluster node")
    }

    public func start() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try launch()
        try waitUntilAnswering()
        logger.info("redis-server started", metadata: ["port": "\(port)", "dir": "\(directory)"])
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        // SIGTERM: redis flushes its AOF and exits.
        process.withLock { $0 }?.stop()
    }

    private func launch() throws {
        let arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory,
                         "--appendonly", "yes", "--appendfsync", appendFsync, "--save", "",
                         "--protected-mode", "yes", "--daemonize", "no",
                         "--logfile", directory + "/redis.log"] + extraArguments
        let child = try ChildProcess(path: try Self.redisServerPath(), arguments: arguments) { [weak self] status in
            self?.exited(status: status)
        }
        process.withLock { $0 = child }
        launchedMicros.store(monotonicMicros(), ordering: .relaxed)
    }

    private func exited(status: Int32) {
        guard !stopping.load(ordering: .relaxed) else { return }
        // Back off while it keeps dying at once (a bad config, a full disk);
        // one that ran for a while starts again at the shortest delay.
        if monotonicMicros() - launchedMicros.load(ordering: .relaxed) > 10_000_000 {
            restartDelayMillis.store(Self.restartDelayMillisMin, ordering: .relaxed)
        }
        let delay = restartDelayMillis.load(ordering: .relaxed)
        restartDelayMillis.store(min(Self.restartDelayMillisMax, delay * 2), ordering: .relaxed)
        logger.error("redis-server exited; restarting", metadata: ["status": "\(status)", "delay_ms": "\(delay)"])
        Thread.sleep(forTimeInterval: Double(delay) / 1000)
        guard !stopping.load(ordering: .relaxed) else { return }
        do { try launch() } catch { logger.error("redis-server restart failed", metadata: ["error": "\(error)"]) }
    }

    private func waitUntilAnswering() throws {
        let client = RedisSyncClient(host: "127.0.0.1", port: port, timeoutMillis: 500)
        defer { client.close() }
        let deadline = Date().addingTimeInterval(Double(Self.startTimeoutMillis) / 1000)
        while Date() < deadline {
            // LOADING while the AOF is read back: keep waiting.
            if let reply = try? client.command(["PING"]), reply == .status("PONG") {
                restartDelayMillis.store(Self.restartDelayMillisMin, ordering: .relaxed)
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw RedisError("redis-server did not answer on port \(port) within \(Self.startTimeoutMillis) ms")
    }

    static func redisServerPath() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        for directory in directories {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RedisError("redis-server not found: install the Debian package redis-server, or pass --redis HOST:PORT")
    }
}
