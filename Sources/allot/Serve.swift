import AllotDomain
import AllotServer
import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Logging
import ProcessSupervision
import RedisClient

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API (starts its own redis-server unless --redis is given).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: UInt16 = 8080
    @Option(help: "Event loops (threads); default: number of cores.") var threads: Int?
    @Option(help: "Redis HOST:PORT to use (env ALLOT_REDIS); without it a private redis-server is started.")
    var redis: String?
    @Option(help: "A Redis Cluster, as some of its nodes: HOST:PORT[,HOST:PORT…] (env ALLOT_REDIS_CLUSTER).")
    var redisCluster: String?
    @Option(help: "SQLite database file (env ALLOT_DB); default: <data-dir>/allot.db.") var db: String?
    @Option(help: "Directory for the database, the citizen key and the private Redis.") var dataDir = "var"
    @Option(help: "This node's name, unique among the nodes sharing a Redis (env ALLOT_NODE_ID; default HOST:PORT).")
    var nodeID: String?
    @Option(help: "full (the SQLite file too: the persister, while it holds the writer lease, and the admin API) or front (citizens and staff only, no SQLite; needs --redis or --redis-cluster); env ALLOT_ROLE.")
    var role: NodeRole?
    @Flag(help: "Seed a demo campaign (open now, for a week).") var demo = false
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: Logger.Level = .info
    @Option(help: "standard (Redis AOF fsync every second), strict (fsync before every 201) or replicated (a replica confirms before every 201; needs --redis or --redis-cluster); env ALLOT_DURABILITY.")
    var durability: Durability?
    @Option(name: .customLong("trusted-proxy"),
            help: "A proxy (address or CIDR) whose X-Forwarded-For is believed; repeatable; env ALLOT_TRUSTED_PROXIES (comma-separated).")
    var trustedProxies: [String] = []
    @Flag(help: "Mark the dashboard's session cookie Secure (serving behind TLS); env ALLOT_SECURE_COOKIES=1.")
    var secureCookies = false
    @Option(help: "Connections open at once; past it new ones are answered 503.") var connectionsMax = 10_000
    @Option(help: "Connections open at once from one address (trusted proxies exempt).") var connectionsPerAddressMax = 128
    @Option(help: "Seconds a request may take to arrive whole from its first byte.") var requestDeadlineSeconds = 10

    func run() throws {
        // Every log line formats a local time: with TZ unset, glibc stats
        // /etc/localtime again for each one (a few % of the persister's CPU
        // in a profile). Naming the zone file once keeps it read once.
        if getenv("TZ") == nil { setenv("TZ", ":/etc/localtime", 1) }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "allot")
        let environment = ProcessInfo.processInfo.environment
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)

        var config = ServerConfig()
        config.host = host
        config.port = port
        config.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard connectionsMax >= 1, connectionsPerAddressMax >= 1, requestDeadlineSeconds >= 1 else {
            throw ValidationError("--connections-max, --connections-per-address-max and --request-deadline-seconds are at least 1")
        }
        config.connectionsMax = connectionsMax
        config.connectionsPerAddressMax = connectionsPerAddressMax
        config.requestDeadlineSeconds = requestDeadlineSeconds
        config.databasePath = db ?? environment["ALLOT_DB"] ?? dataDir + "/allot.db"
        config.nodeID = nodeID ?? environment["ALLOT_NODE_ID"] ?? "\(ProcessInfo.processInfo.hostName):\(port)"
        guard let role = role ?? NodeRole(rawValue: environment["ALLOT_ROLE"] ?? "full") else {
            throw ValidationError("ALLOT_ROLE is full or front")
        }
        config.role = role
        if demo, role != .full { throw ValidationError("--demo needs a full node (the database)") }
        config.citizenSecret = try CitizenSecret.load(environment: environment, dataDirectory: dataDir, mayCreate: role == .full)
        guard !config.nodeID.isEmpty, config.nodeID.utf8.count <= 100, !config.nodeID.contains("|") else {
            throw ValidationError("--node-id is 1 to 100 bytes without '|'")
        }
        config.adminToken = environment["ALLOT_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        config.killAfterDebit = FaultTrigger(path: environment["ALLOT_FAULT_KILL_AFTER_DEBIT"])
        if let trigger = config.killAfterDebit {
            logger.warning("fault trigger on: this node kills itself after a move's debit once \(trigger.path) exists")
        }

        let proxies = trustedProxies.isEmpty
            ? (environment["ALLOT_TRUSTED_PROXIES"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            : trustedProxies
        config.trustedProxies = try proxies.map { text in
            guard let range = AddressRange(text) else { throw ValidationError("--trusted-proxy takes an address or CIDR, got \(text)") }
            return range
        }
        config.secureCookies = secureCookies || environment["ALLOT_SECURE_COOKIES"] == "1"
        if config.adminToken == nil {
            logger.warning("ALLOT_ADMIN_TOKEN is not set: the admin API will answer 401 to every request")
        }

        guard let durability = durability ?? Durability(rawValue: environment["ALLOT_DURABILITY"] ?? "standard") else {
            throw ValidationError("ALLOT_DURABILITY is standard, strict or replicated")
        }
        config.replicaAcksRequired = durability.replicaAcksRequired
        var supervisor: RedisSupervisor?
        let single = redis ?? environment["ALLOT_REDIS"]
        let cluster = redisCluster ?? environment["ALLOT_REDIS_CLUSTER"]
        if single != nil, cluster != nil { throw ValidationError("give --redis or --redis-cluster, not both") }
        if let given = single ?? cluster {
            guard let deployment = RedisDeployment.parse(given, cluster: cluster != nil) else {
                throw ValidationError(cluster != nil ? "--redis-cluster takes HOST:PORT[,HOST:PORT…], got \(given)"
                                                     : "a Redis address is HOST:PORT, got \(given)")
            }
            config.redis = deployment
            for warning in try durability.check(deployment) { logger.warning("\(warning)") }
        } else {
            guard durability != .replicated else {
                throw ValidationError("--durability replicated needs --redis: a Redis master with a replica")
            }
            guard config.role == .full else {
                throw ValidationError("--role front shares a Redis with a full node: give --redis or --redis-cluster")
            }
            let own = RedisSupervisor(directory: dataDir + "/redis", port: try RedisSupervisor.freePort(),
                                      appendFsync: durability.appendFsync, logger: logger)
            try own.start()
            config.redis = .single(ClusterNodeAddress(host: "127.0.0.1", port: own.port))
            supervisor = own
        }

        let server = AllotServer(config: config, logger: logger)
        do {
            try server.start()
            if demo { try server.seedDemoCampaign() }
        } catch {
            supervisor?.stop()
            throw error
        }
        print("allot: serving on http://\(config.host):\(server.port)")
        fflush(nil)  // every output stream: a log file or a pipe sees the line now, not at exit
        waitForTermination()
        logger.info("shutting down")
        server.stop()
        supervisor?.stop()
    }

    /// Blocks until SIGTERM or SIGINT.
    private func waitForTermination() {
        let done = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { done.signal() }
            source.resume()
            sources.append(source)
        }
        done.wait()
        sources.forEach { $0.cancel() }
    }
}
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension Durability: ExpressibleByArgument {}
extension NodeRole: ExpressibleByArgument {}
