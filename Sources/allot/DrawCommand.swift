import AllotDomain
import ArgumentParser
import Foundation

/// `allot draw verify DRAW_JSON RESULTS_CSV`: anyone repeats a lottery draw
/// from its published files (README, Lottery); exit 1 names the first thing
/// that does not match.
struct DrawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "draw", abstract: "Lottery draws: check a published draw.", subcommands: [Verify.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Repeat a draw from draw.json and results.csv; exit 1 on any mismatch.")
        @Argument(help: "The draw's description (draw.json).") var description: String
        @Argument(help: "The draw's results (results.csv).") var results: String

        func run() throws {
            let verdict: String?
            let count: Int
            let draw: DrawDescription
            do {
                draw = try DrawDescription(json: Array(try Data(contentsOf: URL(fileURLWithPath: description))))
                let rows = try ResultsFile.read(Array(try Data(contentsOf: URL(fileURLWithPath: results))))
                verdict = DrawVerifier.verify(description: draw, results: rows)
                count = rows.count
            } catch {
                print("draw not verified: \(error)")
                throw ExitCode(1)
            }
            if let verdict {
                print("draw not verified: \(verdict)")
                throw ExitCode(1)
            }
            print("draw verified: \(count) entries, every ticket, rank and outcome repeated from the published inputs")
            // What only a person can check: that these are what was published
            // before registration (the commitment) and after close (the value).
            print("commitment \(HexBytes.encode(draw.commitment)) (compare with the one published when registration opened)")
            print("public value \"\(draw.publicValue)\" from \"\(draw.publicValueSource)\" (compare with its source)")
        }
    }
}
