import AllotDomain
import AllotServer
import Foundation
import SQLiteStore
import Testing

/// Issue 3: tokens and roles, the audit trail, metrics and logs.
@Suite(.serialized) struct OperatorTests {
    @Test func everyTokenRouteChecksTheRole() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("t1", slots: 1, capacity: 5)
        let staff = try stack.makeToken(.staff, name: "counter-1")
        let auditor = try stack.makeToken(.auditor, name: "inspector")
        let client = stack.client()
        func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }

        #expect(try client.get("/v1/admin/campaigns/t1/stats").code == "unauthorized")
        #expect(try client.get("/v1/admin/campaigns/t1/stats", headers: bearer("allot_nope")).code == "unauthorized")
        // Auditors read; they change nothing.
        #expect(try client.get("/v1/admin/campaigns/t1/stats", headers: bearer(auditor)).status == 200)
        #expect(try client.get("/v1/admin/campaigns/t1/reservations.csv", headers: bearer(auditor)).status == 200)
        #expect(try client.get("/v1/admin/audit", headers: bearer(auditor)).status == 200)
        #expect(try client.request("PATCH", "/v1/admin/campaigns/t1", body: #"{"status":"paused"}"#,
                                   headers: bearer(auditor)).code == "forbidden")
        // Staff redeem, and nothing else.
        #expect(try client.get("/v1/admin/campaigns/t1/stats", headers: bearer(staff)).code == "forbidden")
        #expect(try client.request("PATCH", "/v1/admin/campaigns/t1/slots/s0", body: #"{"capacity":1}"#,
                                   headers: bearer(staff)).code == "forbidden")
        let id = try #require(try stack.reserve(client, campaign: "t1", citizen: "dora", slot: "s0").json["id"] as? String)
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem", headers: bearer(auditor)).code == "forbidden")
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem", headers: bearer(staff)).status == 200)
        #expect(try stack.stats("t1")["redeemed"] as? Int == 1)

        // Listed with last use, never the token; stored only as a digest.
        let listed = try OperatorDatabase(path: stack.databasePath).tokens()
        #expect(Set(listed.map(\.name)).isSuperset(of: ["counter-1", "inspector"]))
        #expect(try waitUntil {
            try OperatorDatabase(path: stack.databasePath).tokens().first { $0.name == "counter-1" }?.lastUsedAtMillis != nil
        })
        let file = try Data(contentsOf: URL(fileURLWithPath: stack.databasePath))
            + ((try? Data(contentsOf: URL(fileURLWithPath: stack.databasePath + "-wal"))) ?? Data())
        #expect(file.range(of: Data(staff.utf8)) == nil)
        #expect(file.range(of: Data(auditor.utf8)) == nil)

        // A token made a moment ago works at once: an unknown token makes
        // the server reload them before it refuses.
        let fresh = try OperatorDatabase(path: stack.databasePath).createToken(role: .auditor, name: "fresh", actor: "cli:test")
        #expect(try client.get("/v1/admin/audit", headers: bearer(fresh.token)).status == 200)

        // Revoked: refused within a refresh.
        try OperatorDatabase(path: stack.databasePath).revokeToken(name: "counter-1", actor: "cli:test")
        let other = try #require(try stack.reserve(client, campaign: "t1", citizen: "emil", slot: "s0").json["id"] as? String)
        #expect(try waitUntil(seconds: 1) {
            try client.request("POST", "/v1/reservations/\(other)/redeem", headers: bearer(staff)).code == "unauthorized"
        })
        #expect(throws: (any Error).self) { try OperatorDatabase(path: stack.databasePath).createToken(role: .staff, name: "inspector", actor: "cli:test") }
        #expect(stack.logLines.withLock { $0.allSatisfy { !$0.contains(staff) && !$0.contains(auditor) } })
    }

    @Test func repeatedFailuresFromOneAddressAreSlowed() throws {
        let stack = try LiveStack { $0.authFailurePolicy = BucketPolicy(rate: 0.5, burst: 5)! }
        defer { stack.shutdown() }
        let client = stack.client()
        for attempt in 0..<5 {
            let answer = try client.get("/v1/admin/audit", headers: ["Authorization": "Bearer guess-\(attempt)"])
            #expect(answer.code == "unauthorized")
        }
        // The bucket is empty: no more guesses until it refills. A request
        // with no token guesses nothing: it gets its 401.
        let slowed = try client.get("/v1/admin/audit", headers: ["Authorization": "Bearer guess-6"])
        #expect(slowed.status == 429)
        #expect(slowed.code == "rate_limited")
        #expect(Int(slowed.header("Retry-After") ?? "") ?? 0 >= 1)
        #expect(try client.get("/v1/admin/audit").status == 401)
        // A valid token is never slowed: operators behind the guesser's
        // address (an office NAT) go on working.
        #expect(try client.get("/v1/admin/audit", headers: stack.adminHeaders).status == 200)
        let staff = try stack.makeToken(.staff, name: "counter-9")
        #expect(try client.get("/v1/admin/audit", headers: ["Authorization": "Bearer \(staff)"]).code == "forbidden")
        #expect(try client.get("/v1/admin/audit", headers: ["Authorization": "Bearer guess-7"]).status == 429)
        Thread.sleep(forTimeInterval: 2.2)
        #expect(try client.get("/v1/admin/audit", headers: ["Authorization": "Bearer guess-8"]).code == "unauthorized")
    }

    @Test func auditTrailRecordsWhoWhatBeforeAfterAndVerifyFindsTampering() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("a1", slots: 2, capacity: 5)
        let client = stack.client()
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/a1", #"{"status":"paused"}"#).status == 200)
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/a1", #"{"status":"open"}"#).status == 200)
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/a1/slots/s1", #"{"capacity":7}"#).status == 200)
        let id = try #require(try stack.reserve(client, campaign: "a1", citizen: "fay", slot: "s0").json["id"] as? String)
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").status == 200)
        _ = try stack.waitForPersistence("a1", expected: 1)

        // Page through it, two rows at a time.
        var entries: [[String: Any]] = []
        var after = 0
        while true {
            let page = try stack.admin("GET", "/v1/admin/audit?after=\(after)&limit=2").json
            let rows = try #require(page["entries"] as? [[String: Any]])
            if rows.isEmpty { break }
            #expect(rows.count <= 2)
            entries += rows
            after = try #require(page["next_after"] as? Int)
        }
        let actions = entries.compactMap { $0["action"] as? String }
        #expect(Array(actions.prefix(6)) == ["campaign.create", "sites.put", "slots.put", "campaign.patch", "campaign.patch",
                                             "slot.capacity"])
        // Reservation changes: one sealing row per persister batch (one or two here).
        let batchRows = entries.dropFirst(6)
        #expect((1...2).contains(batchRows.count))
        #expect(batchRows.allSatisfy { $0["action"] as? String == "reservations.persisted" && $0["actor"] as? String == "system" })
        let pause = entries[3]
        #expect(pause["actor"] as? String == "token:bootstrap")
        #expect((pause["before"] as? [String: Any])?["status"] as? String == "open")
        #expect((pause["after"] as? [String: Any])?["status"] as? String == "paused")
        #expect((entries[5]["before"] as? [String: Any])?["s1"] as? Int == 5)
        #expect((entries[5]["after"] as? [String: Any])?["s1"] as? Int == 7)
        #expect((entries[6]["after"] as? [String: Any])?["first_seq"] as? Int == 1)
        #expect(try stack.admin("GET", "/v1/admin/audit?after=-1").code == "invalid_field")
        let database = try stack.sqlite()
        let events = try database.statement("SELECT seq, reservation_id, status, actor FROM reservation_events ORDER BY seq")
            .rows { "\($0.int(0)) \($0.text(1)) \($0.text(2)) \($0.text(3))" }
        #expect(events == ["1 \(id) confirmed citizen", "2 \(id) cancelled citizen"])
        // Auditors page through them over HTTP too.
        let first = try stack.admin("GET", "/v1/admin/audit/reservation-events?after=0&limit=1").json
        let firstRows = try #require(first["events"] as? [[String: Any]])
        #expect(firstRows.count == 1 && firstRows[0]["seq"] as? Int == 1 && firstRows[0]["status"] as? String == "confirmed")
        #expect(firstRows[0]["reservation_id"] as? String == id && (firstRows[0]["leaf"] as? String)?.count == 32)
        let second = try stack.admin("GET", "/v1/admin/audit/reservation-events?after=\(try #require(first["next_after"] as? Int))").json
        #expect((second["events"] as? [[String: Any]])?.map { $0["status"] as? String } == ["cancelled"])
        #expect(try stack.admin("GET", "/v1/admin/audit/reservation-events?limit=0").code == "invalid_field")

        let operatorDB = try OperatorDatabase(path: stack.databasePath)
        let intact = try operatorDB.verifyAudit()
        #expect(intact.firstBreak == nil && intact.eventBreak == nil)
        #expect(intact.rowsChecked == entries.count && intact.eventsChecked == 2)
        // Someone edits, inserts or deletes a reservation event: verify names it.
        try database.execute("UPDATE reservation_events SET status = 'redeemed' WHERE seq = 1")
        #expect(try operatorDB.verifyAudit().eventBreak == .eventEdited(seq: 1))
        try database.execute("UPDATE reservation_events SET status = 'confirmed' WHERE seq = 1")
        try database.execute("""
            INSERT INTO reservation_events SELECT 3, reservation_id, campaign_id, 'redeemed', slot_id, site_id, 'token:x', at, leaf
            FROM reservation_events WHERE seq = 2
            """)
        #expect(try operatorDB.verifyAudit().eventBreak == .eventInserted(seq: 3))
        try database.execute("DELETE FROM reservation_events WHERE seq IN (2, 3)")
        #expect(try operatorDB.verifyAudit().eventBreak == .eventMissing(seq: 2))
        // Someone edits a row of the chain itself: verify names that row.
        try database.execute(#"UPDATE audit SET after = '{"status":"open"}' WHERE id = 4"#)
        #expect(try operatorDB.verifyAudit().firstBreak == .contentMismatch(id: 4))
        // Removing a row breaks the link of the next one.
        try database.execute("DELETE FROM audit WHERE id IN (4, 6)")
        #expect(try operatorDB.verifyAudit().firstBreak == .brokenLink(id: 5))
    }

    /// The persister commits a batch every few milliseconds meanwhile:
    /// verify reads one snapshot, so it never sees events without their seal.
    @Test func verifyWhileReservationsArePersistedFindsNothingWrong() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("vw", slots: 4, capacity: 1_000)
        let done = Locked(false)
        let verdicts = Locked<[String]>([])
        let path = stack.databasePath
        let port = stack.port
        concurrently(5) { worker in
            if worker == 4 {
                while !done.withLock({ $0 }) {
                    if let verdict = try? OperatorDatabase(path: path).verifyAudit(),
                       verdict.firstBreak != nil || verdict.eventBreak != nil {
                        verdicts.withLock { $0.append("\(String(describing: verdict.firstBreak)) \(String(describing: verdict.eventBreak))") }
                    }
                }
                return
            }
            let client = HTTPClient(port: port)
            for index in stride(from: worker, to: 600, by: 4) {
                _ = try? client.request("POST", "/v1/campaigns/vw/reservations",
                                        body: #"{"citizen_id":"vw-\#(index)","slot_id":"s\#(index % 4)"}"#)
            }
            if worker == 0 {
                Thread.sleep(forTimeInterval: 0.5)
                done.withLock { $0 = true }
            }
        }
        #expect(verdicts.withLock { $0 }.isEmpty, "\(verdicts.withLock { $0 }.prefix(3))")
        _ = try stack.waitForPersistence("vw", expected: 600)
        #expect(try OperatorDatabase(path: path).verifyAudit().eventsChecked == 600)
    }

    @Test func metricsAreInPrometheusTextFormat() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("m1", slots: 1, capacity: 2)
        let client = stack.client()
        for citizen in ["g1", "g2", "g3"] { _ = try stack.reserve(client, campaign: "m1", citizen: citizen, slot: "s0") }
        _ = try stack.waitForPersistence("m1", expected: 2)
        // Each loop publishes its connection count every 250 ms.
        func openConnections(_ text: String) -> Double {
            let line = text.split(separator: "\n").first { $0.hasPrefix("allot_open_connections ") }
            return Double(line?.split(separator: " ").last ?? "") ?? 0
        }
        #expect(try waitUntil { openConnections(try client.get("/metrics").text) >= 1 })
        let metrics = try client.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = metrics.text
        for line in [#"allot_http_requests_total{route="reserve",status="201"} 2"#,
                     #"allot_http_requests_total{route="reserve",status="409"} 1"#,
                     #"allot_reservation_outcomes_total{outcome="confirmed"} 2"#,
                     #"allot_reservation_outcomes_total{outcome="slot_full"} 1"#,
                     #"allot_http_request_duration_seconds_count{route="reserve"} 3"#,
                     #"allot_persisted_events_total 2"#,
                     #"allot_event_loops 2"#] {
            #expect(text.contains(line), "\(line)")
        }
        // The third attempt is refused by the script, or on the loop once its
        // snapshot shows the slot sold out (no script run).
        #expect(text.contains(#"allot_redis_roundtrip_seconds_count{command="reserve"} 2"#)
                || text.contains(#"allot_redis_roundtrip_seconds_count{command="reserve"} 3"#))
        #expect(text.contains("allot_persist_batch_rows_count"))
        #expect(text.contains("allot_persist_lag_milliseconds"))
        #expect(openConnections(text) >= 1)
    }

    @Test func oneInfoLinePerStateChangeAndOperatorActionNoSecrets() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("l1", slots: 1, capacity: 10)
        let client = stack.client()
        var ids: [String] = []
        for citizen in ["hugo-secret-id-1", "ines-secret-id-2", "jon-secret-id-3"] {
            ids.append(try #require(try stack.reserve(client, campaign: "l1", citizen: citizen, slot: "s0").json["id"] as? String))
        }
        #expect(try client.request("DELETE", "/v1/reservations/\(ids[0])").status == 200)
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/l1/slots/s0", #"{"capacity":12}"#).status == 200)
        _ = try stack.waitForPersistence("l1", expected: 3)
        let lines = stack.logLines.withLock { $0 }
        // A line per state change at debug, one per batch at info.
        #expect(lines.filter { $0.hasPrefix("debug reservation confirmed") }.count == 3)
        #expect(lines.filter { $0.hasPrefix("debug reservation cancelled") }.count == 1)
        #expect(lines.contains { $0.hasPrefix("info reservations persisted") && $0.contains("campaigns=l1") })
        #expect(lines.contains { $0.hasPrefix("info slot capacity changed") && $0.contains("actor=token:bootstrap") })
        for line in lines {
            #expect(!line.contains("secret-id"), "\(line)")
            #expect(!line.contains(LiveStack.adminToken), "\(line)")
            // A reservation id is a capability: logs name the audit row instead.
            for id in ids { #expect(!line.contains(id), "\(line)") }
        }
    }
}
