import AllotServer
import ArgumentParser
import Foundation
import Logging
import RedisClient

struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Rebuild the Redis state of every campaign from SQLite after Redis lost its data.",
        discussion: """
            Campaigns still present in Redis are left alone. Only what reached SQLite comes back: \
            rejection counters, idempotency keys and rate buckets start afresh.
            """)

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Redis HOST:PORT (env ALLOT_REDIS).") var redis: String?
    @Option(help: "A Redis Cluster, as some of its nodes: HOST:PORT[,HOST:PORT…] (env ALLOT_REDIS_CLUSTER).")
    var redisCluster: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let cluster = redisCluster ?? environment["ALLOT_REDIS_CLUSTER"]
        let given = cluster ?? redis ?? environment["ALLOT_REDIS"] ?? "127.0.0.1:6379"
        guard let deployment = RedisDeployment.parse(given, cluster: cluster != nil) else {
            throw ValidationError("a Redis address is HOST:PORT (a cluster's: HOST:PORT[,HOST:PORT…]), got \(given)")
        }
        // The servers' key, if this host has it: a lottery's line needs it
        // for its offers' ids (the report names what is left out without).
        let secret = try? CitizenSecret.load(environment: environment, dataDirectory: database.dataDir, mayCreate: false)
        let recovery = try Recovery(databasePath: database.path, redis: deployment, logger: Logger(label: "allot"), citizenSecret: secret)
        for report in try recovery.run() {
            if let reason = report.notRebuilt {
                print("\(report.campaign): \(reason)")
            } else if report.rebuilt {
                print("\(report.campaign): rebuilt, \(report.slots) slots, \(report.reservations) reservations, \(report.placesTaken) places taken"
                      + (report.leftOut.map { "; not rebuilt: \($0)" } ?? ""))
            } else {
                print("\(report.campaign): present in Redis, left alone")
            }
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a campaign's reservations from SQLite (CSV or JSON lines).")

    @OptionGroup var database: DatabaseOptions
    @Argument(help: "The campaign id.") var campaign: String
    @Option(help: "csv or jsonl.") var format = "csv"
    @Option(name: .shortAndLong, help: "File to write (default: standard output).") var output: String?

    func run() throws {
        let handle: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil) else {
                throw ValidationError("cannot write \(output)")
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        } else {
            handle = FileHandle.standardOutput
        }
        defer { try? handle.close() }
        try ReservationExporter.export(databasePath: database.path, campaign: campaign, format: format) { page in
            try handle.write(contentsOf: Data(page.utf8))
        }
    }
}

