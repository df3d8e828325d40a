import AllotServer
import ArgumentParser
import Foundation
import Logging

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

    func run() throws {
        let address = redis ?? ProcessInfo.processInfo.environment["ALLOT_REDIS"] ?? "127.0.0.1:6379"
        let (host, port) = try RedisAddress.parse(address)
        let recovery = try Recovery(databasePath: database.path, redisHost: host, redisPort: port,
                                    logger: Logger(label: "allot"))
        for report in try recovery.run() {
            if report.rebuilt {
                print("\(report.campaign): rebuilt, \(report.slots) slots, \(report.reservations) reservations, \(report.placesTaken) places taken")
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

enum RedisAddress {
    static func parse(_ address: String) throws -> (String, Int) {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("a Redis address is HOST:PORT, got \(address)") }
        return (String(parts[0]), port)
    }
}
