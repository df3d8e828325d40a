import AllotDomain
import EventHTTP
import EventLoops
import Foundation
import Logging
import SQLiteStore
import Synchronization

/// `GET …/reservations.csv`: streamed from SQLite in pages (StreamedAnswer).
enum CSVExport {
    static func start(campaign: String, databasePath: String, exchange: PendingExchange, logger: Logger) {
        StreamedAnswer.start("export", exchange: exchange, logger: logger) { line in
            let database = try SQLiteDatabase(path: databasePath)
            guard try ReservationRows.campaignExists(campaign, in: database) else {
                return line.answer(.problem(.notFound("no such campaign")))
            }
            var rows = try ReservationRows(database: database, campaign: campaign, format: .csv)
            try StreamedAnswer.stream(contentType: "text/csv; charset=utf-8",
                                      headers: [("Content-Disposition", "attachment; filename=\"\(campaign)-reservations.csv\"")],
                                      line: &line) { try rows.nextPage().map { Array($0.utf8) } }
        }
    }
}

/// A long answer (an export, a draw's published files) streamed on a thread
/// of its own. Each page is handed to the loop and the next one is read
/// only once the client has taken the previous one, so memory stays at one
/// page however long the answer is.
enum StreamedAnswer {
    static let concurrentMax = 4
    static let running = Atomic<Int>(0)

    /// Runs `produce` on a thread of its own, at most `concurrentMax` at once
    /// (else 503); an error it throws ends the answer (a 503, or the stream cut).
    static func start(_ what: String, exchange: PendingExchange, logger: Logger,
                      produce: @escaping @Sendable (inout PendingExchange) throws -> Void) {
        guard running.add(1, ordering: .relaxed).newValue <= concurrentMax else {
            running.subtract(1, ordering: .relaxed)
            return exchange.answer(.problem(.unavailable("too many long answers at once", retryAfterSeconds: 5)))
        }
        let thread = Thread {
            nameCurrentThread("allot-\(what)")
            defer { running.subtract(1, ordering: .relaxed) }
            // Always holds one place in the loop's inbox (runKeepingPlace).
            var line = exchange
            do {
                try produce(&line)
            } catch {
                logger.error("\(what) failed", metadata: ["error": "\(error)"])
                line.run { exchange in
                    if exchange.isStreaming { exchange.abortStream() }
                    else if !exchange.isAnswered { exchange.send(.problem(.unavailable("\(what) failed"))) }
                }
            }
        }
        thread.name = "allot-\(what)"
        thread.start()
    }

    /// A 200 whose body is `pages`, in order, until it returns nil.
    static func stream(contentType: String, headers: [(String, String)], line: inout PendingExchange,
                       pages: () throws -> [UInt8]?) throws {
        guard let started = line.runKeepingPlace({ $0.startStream(status: 200, contentType: contentType, headers: headers) })
        else { return line.answer(.problem(.busy)) }
        line = started
        while let page = try pages() {
            let (next, delivered) = send(page, line: line)
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
