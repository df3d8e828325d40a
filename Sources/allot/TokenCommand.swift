import AllotDomain
import AllotServer
import ArgumentParser
import Foundation

/// Where the operator commands find the database: the same defaults as `serve`.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "SQLite database file (env ALLOT_DB); default: <data-dir>/allot.db.") var db: String?
    @Option(help: "Data directory of the server.") var dataDir = "var"

    var path: String { db ?? ProcessInfo.processInfo.environment["ALLOT_DB"] ?? dataDir + "/allot.db" }

    /// How the audit trail names whoever runs a command on this host.
    var actor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown") }
}

extension Role: ExpressibleByArgument {}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Make, list and revoke bearer tokens for operators, staff and auditors.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a new token once; only its SHA-256 is stored.")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "admin, staff or auditor.") var role: Role
        @Option(help: "A name to list and revoke it by (default: <role>-<random>).") var name: String?

        func run() throws {
            let made = try OperatorDatabase(path: database.path).createToken(role: role, name: name, actor: database.actor)
            FileHandle.standardError.write(Data("token \(made.name) (\(role.rawValue)) created; it is shown only this once:\n".utf8))
            print(made.token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Names, roles, created, last used (never the token).")
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let rows = try OperatorDatabase(path: database.path).tokens()
            print(["NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"].joined(separator: "\t"))
            for row in rows {
                print([row.name, row.role.rawValue, Timestamp.format(millis: row.createdAtMillis, alwaysFraction: false),
                       row.lastUsedAtMillis.map { Timestamp.format(millis: $0, alwaysFraction: false) } ?? "-",
                       row.revokedAtMillis.map { Timestamp.format(millis: $0, alwaysFraction: false) } ?? "-"]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; servers stop taking it within a second.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The token's name.") var name: String

        func run() throws {
            try OperatorDatabase(path: database.path).revokeToken(name: name, actor: database.actor)
            print("token \(name) revoked")
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Check the hash-chained audit trail.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the chain; name the first row that does not match (exit 1).")
        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let verdict = try OperatorDatabase(path: database.path).verifyAudit()
            print(verdict.summary)
            guard verdict.holds else { throw ExitCode(1) }
        }
    }
}
