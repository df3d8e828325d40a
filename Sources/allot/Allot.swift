import AllotServer
import ArgumentParser

@main
struct Allot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allot",
        abstract: "A reservation backend that stays up when a whole city books at once.",
        subcommands: [Serve.self, TokenCommand.self, AuditCommand.self, RecoverCommand.self, ExportCommand.self, DrawCommand.self])
}
