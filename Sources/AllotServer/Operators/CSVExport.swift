import AllotDomain
import EventHTTP
import EventLoops
import Foundation
import Logging
import SQLiteStore
import Synchronization

/// `GET …/reservations.csv`: streamed from SQLite in pages on a thread of
/// its own. Each page is handed to the loop and the next one is read only
/// once the client has taken the previous one, so memory stays at one page
/// however many rows there are.
enum CSVExport {
    static let exportsConcurrentMax = 4
    static let running = Atomic<Int>(0)

    static func start(campaign: String, databasePath: String, exchange: PendingExchange, logger: Logger) {
        guard running.add(1, ordering: .relaxed).newValue <= exportsConcurrentMax else {
            running.subtract(1, ordering: .relaxed)
            return exchange.answer(.problem(.unavailable("too many exports at once", retryAfterSeconds: 5)))
        }
        let thread = Thread {
            nameCurrentThread("allot-export")
            defer { running.subtract(1, ordering: .relaxed) }
            // Always holds one place in the loop's inbox (runKeepingPlace).
            var line = exchange
            do {
                try stream(campaign: campaign, databasePath: databasePath, line: &line)
            } catch {
                logger.error("export failed", metadata: ["campaign": "\(campaign)", "error": "\(error)"])
                line.run { exchange in
                    if exchange.isStreaming { exchange.abortStream() }
                    else if !exchange.isAnswered { exchange.send(.problem(.unavailable("export failed"))) }
                }
            }
        }
        thread.name = "allot-export"
        thread.start()
    }

    private static func stream(campaign: String, databasePath: String, line: inout PendingExchange) throws {
        let database = try SQLiteDatabase(path: databasePath)
        guard try ReservationRows.campaignExists(campaign, in: database) else {
            return line.answer(.problem(.notFound("no such campaign")))
        }
        var rows = try ReservationRows(database: database, campaign: campaign, format: .csv)
        guard let started = line.runKeepingPlace({
            $0.startStream(status: 200, contentType: "text/csv; charset=utf-8",
                           headers: [("Content-Disposition", "attachment; filename=\"\(campaign)-reservations.csv\"")])
        }) else { return line.answer(.problem(.busy)) }
        line = started
        while let page = try rows.nextPage() {
            let (next, delivered) = send(Array(page.utf8), line: line)
            line = next
            guard delivered else { return line.run { $0.abortStream() } }
        }
        line.run { $0.endStream() }
    }

    /// Hands one page to the loop and waits until it is written out. Returns
    /// the line to use next and whether the client took the page.
    private static func send(_ bytes: [UInt8], line: PendingExchange) -> (PendingExchange, Bool) {
        let written = DispatchSemaphore(value: 0)
        let alive = AtomicFlag()
        guard let next = line.runKeepingPlace({ exchange in
            exchange.sendChunk(bytes) { connected in
                alive.value.store(connected, ordering: .relaxed)
                written.signal()
            }
        }) else { return (line, false) }
        // A client that stops reading for this long loses its export.
        guard written.wait(timeout: .now() + 60) == .success else { return (next, false) }
        return (next, alive.value.load(ordering: .relaxed))
    }
}

final class AtomicFlag: Sendable {
    let value = Atomic<Bool>(false)
}
