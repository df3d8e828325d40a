import Foundation
import SQLiteStore
import Testing

/// Invariant 3 across a crash between XREADGROUP and XACK: what was read but
/// not acknowledged is read again at start, and a replayed event changes
/// nothing that a later event has already moved on.
@Suite(.serialized) struct PersisterTests {
    @Test func replayedEventsChangeNothing() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("p1", limit: 1, slots: 1, capacity: 10)
        let client = stack.client()
        let id = try #require(try stack.reserve(client, campaign: "p1", citizen: "zoe", slot: "s0").json["id"] as? String)
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").status == 200)
        _ = try stack.waitForPersistence("p1", expected: 1)

        // The old "confirmed" event of the cancelled reservation, delivered
        // again (as after a crash before XACK), next to a new one.
        let newID = "01M8000000000000000000NEW0"
        _ = try stack.redis.command(["XADD", "{c:p1}:ev", "*", "id", id, "r", "confirmed|s0|hall|ABCD-EFGH|k2|1700000000000|1700000000000"])
        _ = try stack.redis.command(["XADD", "{c:p1}:ev", "*", "id", newID, "r", "confirmed|s0|hall|ABCD-EFGH|k1|1700000000000|1700000000000"])
        let rows = try waitForRows(stack, stream: "{c:p1}:ev", count: 2)
        #expect(rows[id] == "cancelled")
        #expect(rows[newID] == "confirmed")
    }

    @Test func entriesReadButNotAcknowledgedAreRecoveredAtStart() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("p2", limit: 1, slots: 1, capacity: 10)
        let stream = "{c:p2}:ev"
        let orphan = "01M8000000000000000000ORPH"
        try stack.restartServer {
            // With the server down, read an entry as its consumer without
            // acknowledging it: exactly what a kill -9 after XREADGROUP leaves.
            _ = try stack.redis.command(["XADD", stream, "*", "id", orphan, "r", "confirmed|s0|hall|ABCD-EFGH|k3|1700000000000|1700000000000"])
            let read = try stack.redis.command(["XREADGROUP", "GROUP", "persist", "persister", "COUNT", "10", "STREAMS", stream, ">"])
            #expect(read.elements?.count == 1)
            #expect(try stack.redis.command(["XPENDING", stream, "persist"]).elements?.first?.integer == 1)
        }
        let rows = try waitForRows(stack, stream: stream, count: 1)
        #expect(rows[orphan] == "confirmed")
    }

    /// Found by the fault harness (Redis frozen past the persister's read
    /// timeout): XREADGROUP had handed entries to the running persister, its
    /// reply was lost, and they sat in its pending list until a restart.
    /// Here another client takes entries in the persister's name while it
    /// runs; it must still write them, without a restart.
    @Test func entriesHandedOverWhileRunningButNeverReceivedAreWritten() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("p3", limit: 1, slots: 1, capacity: 10)
        let stream = "{c:p3}:ev"
        let lost = "01M8000000000000000000LOST"
        // In one transaction, so the persister's own blocking read cannot
        // take the entry between its XADD and the hand-over.
        let replies = try stack.redis.pipeline([
            ["MULTI"],
            ["XADD", stream, "*", "id", lost, "r", "confirmed|s0|hall|ABCD-EFGH|k4|1700000000000|1700000000000"],
            ["XREADGROUP", "GROUP", "persist", "persister-" + stack.server.config.nodeID, "COUNT", "10", "STREAMS", stream, ">"],
            ["EXEC"],
        ])
        #expect(replies[3].elements?[1].elements?.count == 1, "the entry was not handed over")
        let rows = try waitForRows(stack, stream: stream, count: 1)
        #expect(rows[lost] == "confirmed")
    }

    /// Waits until SQLite holds `count` rows and nothing is pending in `stream`.
    private func waitForRows(_ stack: LiveStack, stream: String, count: Int) throws -> [String: String] {
        for _ in 0..<200 {
            let rows = try stack.sqlite().statement("SELECT id, status FROM reservations").rows { ($0.text(0), $0.text(1)) }
            let pending = try stack.redis.command(["XPENDING", stream, "persist"]).elements?.first?.integer
            if rows.count >= count, pending == 0 { return Dictionary(uniqueKeysWithValues: rows) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("SQLite never held \(count) rows with nothing pending")
    }
}
