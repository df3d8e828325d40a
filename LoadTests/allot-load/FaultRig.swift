import ArgumentParser
import Foundation
import Glibc
import Logging
import ProcessSupervision
import RedisClient
import SQLiteStore

/// The processes a fault run breaks: its own redis-server (restarted from
/// its AOF by a supervisor when killed) and `allot serve --redis …` (killed
/// and started again by the injector), with SQLite in a small tmpfs when
/// the harness may mount one.
final class FaultRig: @unchecked Sendable {
    /// Room for the run's SQLite file; filled up for the disk-full fault.
    static let sqliteFilesystemBytes = 64 * 1024 * 1024

    let directory: String
    let port: UInt16
    let adminToken: String
    let databasePath: String
    let citizenClient: BlockingClient
    private let allotBinary: String
    private let durability: String
    private let redis: RedisSupervisor
    private let sqliteDirectory: String
    private var server: ChildProcess?
    private(set) var canFillDisk = false
    private(set) var diskFullUnavailableReason = ""

    init(allotBinary: String, appendFsync: String, durability: String) throws {
        guard FileManager.default.isExecutableFile(atPath: allotBinary) else {
            throw HarnessError("no server binary at \(allotBinary): run `swift build -c release --product allot`")
        }
        self.allotBinary = allotBinary
        self.durability = durability
        directory = NSTemporaryDirectory() + "allot-faults-" + UUID().uuidString
        sqliteDirectory = directory + "/sqlite"
        try FileManager.default.createDirectory(atPath: sqliteDirectory, withIntermediateDirectories: true)
        databasePath = sqliteDirectory + "/allot.db"
        var logger = Logger(label: "allot-load-redis")
        logger.logLevel = .warning
        redis = RedisSupervisor(directory: directory + "/redis", port: try RedisSupervisor.freePort(), appendFsync: appendFsync,
                                logger: logger)
        try redis.start()
        port = UInt16(try RedisSupervisor.freePort())
        adminToken = "faults-" + UUID().uuidString
        setenv("ALLOT_ADMIN_TOKEN", adminToken, 1)
        citizenClient = BlockingClient(host: "127.0.0.1", port: port, token: nil)
        mountSmallFilesystem()
        guard startServer() else {
            shutdown(keepData: true)
            throw HarnessError("allot serve did not become ready (see \(directory)/server.log)")
        }
    }

    // MARK: allot serve

    func killServer() { server?.signal(SIGKILL); server?.wait() }

    /// Starts `allot serve` on the rig's port; true once it is ready.
    @discardableResult
    func startServer() -> Bool {
        let arguments = ["serve", "--port", String(port), "--redis", "127.0.0.1:\(redis.port)", "--db", databasePath,
                         "--data-dir", directory, "--durability", durability, "--log-level", "info"]
        guard let process = try? ChildProcess(path: allotBinary, arguments: arguments, outputPath: directory + "/server.log") else {
            return false
        }
        server = process
        return citizenClient.waitUntilReady()
    }

    func readyStatus() -> Int { citizenClient.request("GET", "/readyz").status }

    // MARK: Redis

    func killRedis() { if let pid = redis.pid { kill(pid, SIGKILL) } }
    func freezeRedis() { if let pid = redis.pid { kill(pid, SIGSTOP) } }
    func thawRedis() { if let pid = redis.pid { kill(pid, SIGCONT) } }

    /// Redis loses Allot's Functions library (as a Redis restarted without its data would).
    func flushFunctions() -> Bool {
        let client = RedisSyncClient(host: "127.0.0.1", port: redis.port, timeoutMillis: 2_000)
        defer { client.close() }
        return (try? client.command(["FUNCTION", "FLUSH"])) == .status("OK")
    }

    // MARK: SQLite

    /// Another process takes SQLite's write lock for `seconds`.
    func lockSQLite(seconds: Double) -> ChildProcess? {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return try? ChildProcess(path: me, arguments: ["hold-sqlite-lock", "--db", databasePath, "--seconds", String(seconds)])
    }

    /// Reservation ids of `ids` that SQLite holds.
    func storedCount(of ids: Set<String>) -> Int {
        guard !ids.isEmpty, let database = try? SQLiteDatabase(path: databasePath) else { return 0 }
        let stored = (try? database.statement("SELECT id FROM reservations").rows([]) { $0.text(0) }) ?? []
        return ids.intersection(stored).count
    }

    // MARK: disk full

    private var fillerPath: String { sqliteDirectory + "/filler" }

    private func mountSmallFilesystem() {
        guard geteuid() == 0 else {
            diskFullUnavailableReason = "mounting a small tmpfs for SQLite needs root"
            return
        }
        let status = run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(Self.sqliteFilesystemBytes)", "tmpfs", sqliteDirectory])
        if status == 0 { canFillDisk = true } else { diskFullUnavailableReason = "mount -t tmpfs failed (status \(status))" }
    }

    /// Takes every free byte of SQLite's filesystem.
    func fillDisk() -> Bool {
        let fd = open(fillerPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 1 << 20)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        var small = [UInt8](repeating: 0, count: 4096)
        while write(fd, &small, small.count) > 0 {}
        return errno == ENOSPC
    }

    func freeDisk() { unlink(fillerPath) }

    // MARK: end

    func shutdown(keepData: Bool) {
        thawRedis()
        server?.stop()
        redis.stop()
        if canFillDisk { _ = run("/bin/umount", [sqliteDirectory]) }
        if keepData { log("fault run data kept in \(directory)") } else { try? FileManager.default.removeItem(atPath: directory) }
    }

    private func run(_ path: String, _ arguments: [String]) -> Int32 {
        guard let child = try? ChildProcess(path: path, arguments: arguments) else { return -1 }
        child.wait()
        return child.exitCode ?? -1
    }
}

/// `allot-load hold-sqlite-lock`: the "other process" of the SQLite lock
/// fault. Takes the write lock, holds it, lets go.
struct HoldSQLiteLock: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hold-sqlite-lock", shouldDisplay: false)
    @Option var db: String
    @Option var seconds: Double

    func run() throws {
        let database = try SQLiteDatabase(path: db)
        try database.execute("BEGIN EXCLUSIVE")
        usleep(UInt32(seconds * 1_000_000))
        try database.execute("COMMIT")
    }
}
