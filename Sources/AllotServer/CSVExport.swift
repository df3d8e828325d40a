import AllotDomain
import EventHTTP
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

    static func start(campaign: String, databasePath: String, exchange: LoopBound<HTTPExchange>, logger: Logger) {
        guard running.add(1, ordering: .relaxed).newValue <= exportsConcurrentMax else {
            running.subtract(1, ordering: .relaxed)
            return exchange.wrapped.send(.problem(.unavailable("too many exports at once", retryAfterSeconds: 5)))
        }
        let thread = Thread {
            defer { running.subtract(1, ordering: .relaxed) }
            do {
                try stream(campaign: campaign, databasePath: databasePath, exchange: exchange)
            } catch {
                logger.error("export failed", metadata: ["campaign": "\(campaign)", "error": "\(error)"])
                exchange.loop.execute {
                    let exchange = exchange.wrapped
                    if exchange.isStreaming { exchange.abortStream() }
                    else if !exchange.isAnswered { exchange.send(.problem(.unavailable("export failed"))) }
                }
            }
        }
        thread.name = "allot-export"
        thread.start()
    }

    private static func stream(campaign: String, databasePath: String, exchange: LoopBound<HTTPExchange>) throws {
        let database = try SQLiteDatabase(path: databasePath)
        guard try ReservationRows.campaignExists(campaign, in: database) else {
            exchange.loop.execute { exchange.wrapped.send(.problem(.notFound("no such campaign"))) }
            return
        }
        var rows = try ReservationRows(database: database, campaign: campaign, format: .csv)
        exchange.loop.execute {
            exchange.wrapped.startStream(status: 200, contentType: "text/csv; charset=utf-8",
                                         headers: [("Content-Disposition", "attachment; filename=\"\(campaign)-reservations.csv\"")])
        }
        while let page = try rows.nextPage() {
            guard send(Array(page.utf8), exchange: exchange) else {
                exchange.loop.execute { exchange.wrapped.abortStream() }
                return
            }
        }
        exchange.loop.execute { exchange.wrapped.endStream() }
    }

    /// Hands one page to the loop and waits until it is written out.
    private static func send(_ bytes: [UInt8], exchange: LoopBound<HTTPExchange>) -> Bool {
        let written = DispatchSemaphore(value: 0)
        let alive = AtomicFlag()
        exchange.loop.execute {
            exchange.wrapped.sendChunk(bytes) { connected in
                alive.value.store(connected, ordering: .relaxed)
                written.signal()
            }
        }
        // A client that stops reading for this long loses its export.
        guard written.wait(timeout: .now() + 60) == .success else { return false }
        return alive.value.load(ordering: .relaxed)
    }
}

final class AtomicFlag: Sendable {
    let value = Atomic<Bool>(false)
}
