import AllotDomain
import ArgumentParser
import Foundation

/// `allot draw verify DRAW_JSON RESULTS_CSV`: anyone repeats a lottery draw
/// from its published files (README, Lottery); exit 1 names the first thing
/// that does not match. `allot draw verify-receipt`: an entrant checks
/// their receipt against the published files.
struct DrawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "draw", abstract: "Lottery draws: check a published draw, or an entrant's receipt.",
        subcommands: [Verify.self, VerifyReceipt.self])

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

    struct VerifyReceipt: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-receipt",
            abstract: "Check an entrant's receipt against draw.json (and results.csv when given); exit 1 on any mismatch.")
        @Argument(help: "The draw's description (draw.json).") var description: String
        @Argument(help: "The receipt (GET /v1/registrations/{rid}/receipt).") var receipt: String
        @Argument(help: "The draw's results (results.csv), to check the rank and outcome too.") var results: String?

        func run() throws {
            let verdict: String?
            let checked: DrawReceipt
            do {
                let draw = try DrawDescription(json: Array(try Data(contentsOf: URL(fileURLWithPath: description))))
                checked = try DrawReceipt(json: Array(try Data(contentsOf: URL(fileURLWithPath: receipt))))
                let rows = try results.map { try ResultsFile.read(Array(try Data(contentsOf: URL(fileURLWithPath: $0)))) }
                verdict = checked.verify(description: draw, results: rows)
            } catch {
                print("receipt not verified: \(error)")
                throw ExitCode(1)
            }
            if let verdict {
                print("receipt not verified: \(verdict)")
                throw ExitCode(1)
            }
            print("receipt verified: entry \(HexBytes.encode(checked.entry.id).prefix(16))… is leaf \(checked.leafIndex) of "
                  + "\(checked.entryCount) under the published root; its ticket is HMAC-SHA256(seed, entry id)"
                  + (results == nil ? "" : "; rank \(checked.rank) and its outcome are the ones in results.csv"))
            let said = checked.wonSlot.map { "won \($0)" } ?? "not drawn (rank \(checked.rank) in line)"
            print(results == nil ? "outcome as the receipt says (give results.csv to check it too): " + said : "outcome: " + said)
        }
    }
}
