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
    static let header = "reservation_id,campaign_id,site_id,slot_id,status,code,citizen_key,created_at,updated_at\r\n"
    static let rowsPerPage = 1_000
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
        let exists = try database.statement("SELECT 1 FROM campaigns WHERE id = ?").rows([.text(campaign)]) { _ in true }
        guard !exists.isEmpty else {
            exchange.loop.execute { exchange.wrapped.send(.problem(.notFound("no such campaign"))) }
            return
        }
        let page = try database.statement("""
            SELECT id, campaign_id, site_id, slot_id, status, code, citizen_key, created_at, updated_at
            FROM reservations WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?
            """)
        exchange.loop.execute {
            exchange.wrapped.startStream(status: 200, contentType: "text/csv; charset=utf-8",
                                         headers: [("Content-Disposition", "attachment; filename=\"\(campaign)-reservations.csv\"")])
        }
        var after = ""
        var first = true
        while true {
            var text = first ? header : ""
            first = false
            let rows = try page.rows([.text(campaign), .text(after), .integer(Int64(rowsPerPage))]) { row -> String in
                let fields = (0..<7).map { row.text(Int32($0)) }
                    + [Timestamp.format(millis: row.int(7)), Timestamp.format(millis: row.int(8))]
                return fields.map(csvField).joined(separator: ",") + "\r\n"
            }
            text += rows.joined()
            guard !rows.isEmpty else { break }
            after = String(rows.last!.prefix(ReservationID.textLength))
            guard send(Array(text.utf8), exchange: exchange) else {
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

    /// RFC 4180: quote a field holding a comma, quote or line break.
    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

final class AtomicFlag: Sendable {
    let value = Atomic<Bool>(false)
}
