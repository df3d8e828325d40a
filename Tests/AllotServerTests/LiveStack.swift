import AllotDomain
import AllotServer
import Foundation
import Glibc
import Logging
import ProcessSupervision
import RedisClient
import SQLiteStore

/// A real redis-server on a free port (or a Redis Cluster on loopback), a
/// real SQLite file in a temporary directory, and the server itself,
/// in-process. One per test.
final class LiveStack: @unchecked Sendable {
    static let adminToken = "test-admin-token-0123456789"
    let directory: String
    private let redisProcess: RedisProcess?
    /// The cluster the server runs on, when made with `clusterMasters`.
    let cluster: LoopbackRedisCluster?
    /// The one redis-server (a cluster stack has none: use `keyspace`).
    var redis: RedisProcess {
        guard let redisProcess else { preconditionFailure("this stack runs on a cluster: use keyspace") }
        return redisProcess
    }
    /// A client of whichever Redis the server uses, for reading its keys.
    let keyspace: any RedisSyncRouting
    private(set) var server: AllotServer
    private let config: ServerConfig
    private let logger: Logger
    /// Everything the server logged, message and metadata, one entry a line.
    let logLines: Locked<[String]>
    var port: UInt16 { server.port }
    var databasePath: String { directory + "/allot.db" }
    var redisDeployment: RedisDeployment { server.config.redis }

    init(threads: Int = 2, clusterMasters: Int = 0, clusterReplicasPerMaster: Int = 0,
         configure: (inout ServerConfig) -> Void = { _ in }) throws {
        directory = NSTemporaryDirectory() + "allot-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var config = ServerConfig()
        if clusterMasters > 0 {
            let cluster = try LoopbackRedisCluster(masters: clusterMasters, replicasPerMaster: clusterReplicasPerMaster)
            (self.cluster, redisProcess) = (cluster, nil)
            config.redis = .cluster(seeds: [cluster.address(0)])
        } else {
            let redis = try RedisProcess(directory: directory + "/redis")
            (cluster, redisProcess) = (nil, redis)
            config.redis = .single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))
        }
        keyspace = config.redis.blockingClient(timeoutMillis: 2_000)
        config.port = 0
        config.threads = threads
        config.databasePath = directory + "/allot.db"
        config.adminToken = Self.adminToken
        config.citizenSecret = Array("test-citizen-secret-0123456789-abcdef".utf8)
        // Short, so fail-closed tests are quick; ALLOT_TEST_REDIS_TIMEOUT_MS
        // lengthens it for slow runs (ThreadSanitizer).
        config.redisCommandTimeoutMillis = ProcessInfo.processInfo.environment["ALLOT_TEST_REDIS_TIMEOUT_MS"]
            .flatMap { Int($0) } ?? 500
        config.tokenRefreshMillis = 100
        configure(&config)
        // Every line at every level is kept, so tests can check what was logged.
        let logLines = Locked<[String]>([])
        self.logLines = logLines
        var logger = Logger(label: "allot-test") { _ in CapturingLogHandler(lines: logLines) }
        logger.logLevel = .trace
        self.config = config
        self.logger = logger
        server = AllotServer(config: config, logger: logger)
        do {
            try server.start()
            // A cluster client connects to each master after reading the
            // map: wait until every loop has its first snapshot.
            if cluster != nil { try waitUntilServing() }
        } catch {
            stopRedis()
            throw error
        }
    }

    private func waitUntilServing() throws {
        var answered = 0
        for _ in 0..<250 where answered < 16 {
            answered = (try? HTTPClient(port: port).get("/v1/campaigns").status) == 200 ? answered + 1 : 0
            if answered == 0 { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard answered >= 16 else { throw TestFailure("the server on the cluster never served its campaigns") }
    }

    /// Stops the server, runs `meanwhile`, and starts a new one on the same
    /// Redis and SQLite file (on a new port).
    func restartServer(meanwhile: () throws -> Void = {}) throws {
        server.stop()
        try meanwhile()
        server = AllotServer(config: config, logger: logger)
        try server.start()
    }

    func shutdown() {
        server.stop()
        stopRedis()
    }

    private func stopRedis() {
        keyspace.close()
        redisProcess?.stop()
        cluster?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func client() -> HTTPClient { HTTPClient(port: port) }

    /// A front node on the same Redis (no SQLite), started; the caller stops it.
    func startFrontNode(_ id: String) throws -> AllotServer {
        var config = server.config
        config.nodeID = id
        config.role = .front
        config.port = 0
        config.databasePath = directory + "/never-opened.db"
        let front = AllotServer(config: config, logger: Logger(label: id))
        try front.start()
        return front
    }

    // MARK: operator helpers

    var adminHeaders: [String: String] { ["Authorization": "Bearer \(Self.adminToken)"] }

    @discardableResult
    func admin(_ method: String, _ path: String, _ body: String? = nil) throws -> HTTPClient.Response {
        try client().request(method, path, body: body, headers: adminHeaders)
    }

    /// A campaign with one site and `slots` slots of `capacity`, open now.
    func makeCampaign(_ id: String, scheme: String = "any", limit: Int = 1, slots: Int = 3, capacity: Int = 10,
                      status: String = "open", opensAt: String = "2020-01-01T00:00:00Z",
                      closesAt: String = "2099-01-01T00:00:00Z", buckets: Int = 1, series: String? = nil,
                      holdSeconds: Int? = nil) throws {
        let created = try admin("POST", "/v1/admin/campaigns", """
            {"id":"\(id)","name":"Test \(id)","status":"\(status)","id_scheme":"\(scheme)","per_citizen_limit":\(limit),
             "opens_at":"\(opensAt)","closes_at":"\(closesAt)","buckets":\(buckets)\(series.map { #","series":\#($0)"# } ?? "")\
            \(holdSeconds.map { #","hold_seconds":\#($0)"# } ?? "")}
            """)
        precondition(created.status == 201, created.text)
        let sites = try admin("PUT", "/v1/admin/campaigns/\(id)/sites", #"{"sites":[{"id":"hall","name":"Hall","address":"1 Road"}]}"#)
        precondition(sites.status == 200, sites.text)
        let list = (0..<slots).map {
            #"{"id":"s\#($0)","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":\#(capacity)}"#
        }.joined(separator: ",")
        let put = try admin("PUT", "/v1/admin/campaigns/\(id)/slots", #"{"slots":[\#(list)]}"#)
        precondition(put.status == 200, put.text)
        try expectVisibleEverywhere(id, slots: slots)
    }

    /// Waits until every loop shows the campaign's slots, for changes made
    /// behind the server's back (`allot recover`): each loop's timed refresh.
    func waitUntilVisible(_ id: String, slots: Int) throws {
        for _ in 0..<100 {
            if (try? expectVisibleEverywhere(id, slots: slots)) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        try expectVisibleEverywhere(id, slots: slots)
    }

    /// Checks that every loop shows the campaign's slots: an operator's
    /// change is answered only once every loop's snapshot has it, so there is
    /// nothing to wait for.
    func expectVisibleEverywhere(_ id: String, slots: Int) throws {
        for _ in 0..<16 {  // new connections: the kernel spreads them over the loops at random
            let response = try HTTPClient(port: port).get("/v1/campaigns/\(id)/slots")
            guard response.status == 200, (response.json["slots"] as? [Any])?.count == slots else {
                throw TestFailure("campaign \(id) not visible once its change was answered: \(response.status) \(response.text)")
            }
        }
    }

    /// A new token made the way `allot token create` makes it. It works at
    /// once: an unknown token makes the server reload before refusing.
    func makeToken(_ role: Role, name: String) throws -> String {
        let made = try OperatorDatabase(path: databasePath).createToken(role: role, name: name, actor: "cli:test")
        return made.token
    }

    func stats(_ id: String) throws -> [String: Any] {
        try admin("GET", "/v1/admin/campaigns/\(id)/stats").json
    }

    /// Waits until the persister has written everything Redis holds.
    func waitForPersistence(_ id: String, expected: Int) throws -> [String: Any] {
        for _ in 0..<200 {
            let stats = try stats(id)
            if stats["persisted"] as? Int == expected, stats["persist_lag_ms"] as? Int == 0 { return stats }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("persister did not catch up: \(try stats(id))")
    }

    func sqlite() throws -> SQLiteDatabase { try SQLiteDatabase(path: databasePath) }

    /// How many times Redis ran `command` since its last CONFIG RESETSTAT.
    func redisCalls(_ command: String) throws -> Int {
        let stats = try redis.command(["INFO", "commandstats"]).text ?? ""
        return stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_\(command):") }
            .flatMap { $0.split(separator: "=").dropFirst().first?.split(separator: ",").first }.flatMap { Int($0) } ?? 0
    }

    func reserve(_ client: HTTPClient, campaign: String, citizen: String, slot: String,
                 headers: [String: String] = [:]) throws -> HTTPClient.Response {
        try client.request("POST", "/v1/campaigns/\(campaign)/reservations",
                           body: #"{"citizen_id":"\#(citizen)","slot_id":"\#(slot)"}"#, headers: headers)
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; true
/// when it held. For what the server does on its own time (a flush, a
/// refresh, an expiry), instead of a fixed sleep.
@discardableResult
func waitUntil(seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    repeat {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    } while Date() < deadline
    return try condition()
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// redis-server as a child process, AOF on, on a free port.
final class RedisProcess {
    let directory: String
    let port: Int
    /// More options (`--replicaof` for a replica).
    let extraArguments: [String]
    private var process: ChildProcess?

    init(directory: String, extraArguments: [String] = []) throws {
        self.directory = directory
        self.extraArguments = extraArguments
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        port = try RedisSupervisor.freePort()
        try start()
    }

    func start() throws {
        process = try ChildProcess(path: try Self.executable(), arguments: [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes",
            "--save", "", "--logfile", directory + "/redis.log"] + extraArguments)
        let client = RedisSyncClient(host: "127.0.0.1", port: port, timeoutMillis: 300)
        defer { client.close() }
        for _ in 0..<200 {
            if (try? client.command(["PING"])) == .status("PONG") { return }
            Thread.sleep(forTimeInterval: 0.025)
        }
        throw TestFailure("redis-server did not start on \(port)")
    }

    /// SIGKILL: like a crash.
    func kill() {
        process?.signal(SIGKILL)
        process?.wait()
        process = nil
    }

    /// SIGSTOP / SIGCONT: a frozen Redis.
    func pause() { process?.signal(SIGSTOP) }
    func resume() { process?.signal(SIGCONT) }

    func stop() {
        process?.stop()
        process = nil
    }

    func command(_ arguments: [String]) throws -> RedisReply {
        let client = RedisSyncClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        return try client.command(arguments)
    }

    func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        let client = RedisSyncClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        return try client.pipeline(commands)
    }

    static func executable() throws -> String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        throw TestFailure("redis-server is not installed (apt-get install redis-server)")
    }
}

/// A value behind an NSLock: pthread mutexes are visible to ThreadSanitizer,
/// Synchronization.Mutex (a raw futex) is not.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Runs `body` on `count` threads at once and waits for all of them.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// Keeps each log line (message and metadata) and prints warnings and errors.
struct CapturingLogHandler: LogHandler {
    let lines: Locked<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let text = "\(event.level) \(event.message) \(all.map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
        lines.withLock { $0.append(text) }
        if event.level >= .warning { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }
}
