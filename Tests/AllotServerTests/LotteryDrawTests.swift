@testable import AllotServer
import AllotDomain
import Foundation
import Logging
import Testing

/// Issue 14, a lottery from commitment to published draw against a live
/// server: the commitment before registration opens (the places fixed
/// from then on), registrations, the draw once registration has closed,
/// every winner's reservation in Redis and SQLite, and published files
/// that `draw verify` repeats (and that fail it when one byte changes).
@Suite(.serialized) struct LotteryDrawTests {
    static func time(_ date: Date) -> String { Timestamp.format(millis: Int64(date.timeIntervalSince1970 * 1000), alwaysFraction: true) }

    /// A lottery with holds (issue 14): winners get holds to confirm; a
    /// place not confirmed in time goes to the next entry in ticket order
    /// that asked for its slot or its site, as a hold too.
    @Test func unconfirmedWinnersPlacesGoToTheNextEntriesInTicketOrder() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let opens = Date().addingTimeInterval(2), closes = opens.addingTimeInterval(2)
        try LotteryRegistrationTests.makeLottery(stack, "dh", opensAt: Self.time(opens), closesAt: Self.time(closes),
                                                 settings: #","hold_seconds":2"#)
        let client = stack.client()
        #expect(try stack.admin("POST", "/v1/admin/campaigns/dh/draw/commit").status == 201)
        Thread.sleep(until: opens.addingTimeInterval(0.1))
        for citizen in 0..<20 { #expect(try LotteryRegistrationTests.register(client, "dh", "person-\(citizen)").status == 201) }
        Thread.sleep(until: closes.addingTimeInterval(0.1))
        #expect(try stack.admin("POST", "/v1/admin/campaigns/dh/draw/run", #"{"public_value":"round 7"}"#).status == 202)
        #expect(try waitUntil(seconds: 20) { try client.get("/v1/campaigns/dh/draw").json["state"] as? String == "published" })

        // Ten places, twenty entries: the ten first get holds.
        let entries = try stack.sqlite().statement(
            "SELECT rank, registration_id, reservation_id FROM draw_entries WHERE campaign_id = 'dh' ORDER BY rank")
            .rows { (Int($0.int(0)), $0.text(1), $0.isNull(2) ? nil : $0.text(2)) }
        let winners = entries.filter { $0.2 != nil }
        #expect(winners.map(\.0) == Array(1...10))
        for winner in winners {
            #expect(try client.get("/v1/reservations/\(winner.2!)").json["status"] as? String == "held")
        }
        // Seven confirm; three let it lapse.
        for winner in winners.dropFirst(3) {
            #expect(try client.request("POST", "/v1/reservations/\(winner.2!)/confirm").status == 200)
        }
        // Their places go to ranks 11, 12 and 13, in that order; 14 waits.
        var offers: [String] = []
        #expect(waitUntil(seconds: 6) {
            offers = entries[10..<13].compactMap { try? client.get("/v1/registrations/\($0.1)").json["reservation_id"] as? String }
            return offers.count == 3
        }, "\(offers)")
        for offer in offers { #expect(try client.get("/v1/reservations/\(offer)").json["status"] as? String == "held") }
        #expect(try client.get("/v1/registrations/\(entries[13].1)").json["status"] as? String == "registered")
        #expect(try client.get("/v1/waitlist/\(entries[13].1)").json["position"] as? Int == 1)
        for offer in offers { #expect(try client.request("POST", "/v1/reservations/\(offer)/confirm").status == 200) }
        let stats = try stack.stats("dh")
        #expect(stats["confirmed"] as? Int == 10 && stats["expired"] as? Int == 3 && stats["held"] as? Int == 0, "\(stats)")

        // Paused, a place given back is offered to no one; open again, the
        // place left over goes to the next in line (nobody else could take it).
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/dh", #"{"status":"paused"}"#).status == 200)
        #expect(try client.request("DELETE", "/v1/reservations/\(winners[5].2!)").status == 200)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try client.get("/v1/registrations/\(entries[13].1)").json["status"] as? String == "registered")
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/dh", #"{"status":"open"}"#).status == 200)
        #expect(waitUntil(seconds: 3) {
            (try? client.get("/v1/registrations/\(entries[13].1)").json["status"] as? String) == "won"
        })
        #expect(try stack.stats("dh")["remaining"] as? Int == 0)
        #expect(try invariantViolations(stack, campaign: "dh", limit: 1).isEmpty)

        // Redis is lost; `allot recover` brings back the registrations, the
        // awards (the line's offers' too) and the line, ranks 15 to 20.
        _ = try stack.waitForPersistence("dh", expected: 14)
        #expect(try stack.redis.command(["FLUSHALL"]) == .status("OK"))
        let reports = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment, logger: Logger(label: "recover-test"),
                                   citizenSecret: stack.server.config.citizenSecret).run()
        #expect(reports.map(\.rebuilt) == [true] && reports[0].leftOut == nil)
        try stack.waitUntilVisible("dh", slots: 2)
        #expect(try client.get("/v1/registrations/\(entries[3].1)").json["status"] as? String == "won")
        #expect(try client.get("/v1/registrations/\(entries[12].1)").json["status"] as? String == "won")
        #expect(try client.get("/v1/registrations/\(entries[14].1)").json["status"] as? String == "registered")
        #expect(try client.get("/v1/waitlist/\(entries[14].1)").json["position"] as? Int == 1)
        // A place given back goes to rank 15, the first still in line.
        #expect(try client.request("DELETE", "/v1/reservations/\(winners[6].2!)").status == 200)
        #expect(waitUntil(seconds: 3) {
            (try? client.get("/v1/registrations/\(entries[14].1)").json["status"] as? String) == "won"
        })
        #expect(try client.get("/v1/waitlist/\(entries[15].1)").json["position"] as? Int == 1)
        #expect(try invariantViolations(stack, campaign: "dh", limit: 1).isEmpty)
        // Without the servers' secret the line is left out, and said to be.
        #expect(try stack.redis.command(["FLUSHALL"]) == .status("OK"))
        let blind = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment, logger: Logger(label: "recover-test")).run()
        #expect(blind.first?.leftOut?.contains("line") == true)
        // Nor with another install's key, whose offer ids would lead nowhere.
        #expect(try stack.redis.command(["FLUSHALL"]) == .status("OK"))
        let wrong = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment, logger: Logger(label: "recover-test"),
                                 citizenSecret: Array("another-install-secret-0123456789-xyz".utf8)).run()
        #expect(wrong.first?.leftOut?.contains("wrong key") == true)
    }

    @Test func fromCommitmentToAPublishedDrawAnyoneCanCheck() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let opens = Date().addingTimeInterval(2), closes = opens.addingTimeInterval(3)
        try LotteryRegistrationTests.makeLottery(stack, "dr", opensAt: Self.time(opens), closesAt: Self.time(closes))
        let client = stack.client()
        #expect(try client.get("/v1/campaigns/dr/draw").status == 404)

        // Before registration opens: the commitment, and the places fixed.
        let committed = try stack.admin("POST", "/v1/admin/campaigns/dr/draw/commit")
        #expect(committed.status == 201, "\(committed.text)")
        let commitment = try #require(committed.json["commitment"] as? String)
        #expect(commitment.count == 64 && committed.json["secret"] == nil && (committed.json["places"] as? [Any])?.count == 2)
        #expect(try client.get("/v1/campaigns/dr/draw").json["commitment"] as? String == commitment)
        #expect(try stack.admin("POST", "/v1/admin/campaigns/dr/draw/commit").json["commitment"] as? String == commitment)
        let frozen = try stack.admin("PATCH", "/v1/admin/campaigns/dr/slots/s0", #"{"capacity":50}"#)
        #expect(frozen.status == 400 && frozen.text.contains("fixed"), "\(frozen.text)")
        let early = try stack.admin("POST", "/v1/admin/campaigns/dr/draw/run", #"{"public_value":"early"}"#)
        #expect(early.status == 409 && early.code == "draw_state")

        // Registration: 40 citizens for 10 places.
        Thread.sleep(until: opens.addingTimeInterval(0.1))
        for citizen in 0..<40 {
            let preferences = citizen % 2 == 0 ? #"["s0","site:kiosk"]"# : #"["site:kiosk"]"#
            #expect(try LotteryRegistrationTests.register(client, "dr", "person-\(citizen)", preferences).status == 201)
        }
        Thread.sleep(until: closes.addingTimeInterval(0.1))
        #expect(try LotteryRegistrationTests.register(client, "dr", "late", #"["s0"]"#).status == 403)

        // The draw, once closed, with a public value named in advance.
        let started = try stack.admin("POST", "/v1/admin/campaigns/dr/draw/run", #"{"public_value":"beacon round 4242: 9f1c"}"#)
        #expect(started.status == 202 && started.header("Location") == "/v1/campaigns/dr/draw", "\(started.text)")
        #expect(try waitUntil(seconds: 20) { try client.get("/v1/campaigns/dr/draw").json["state"] as? String == "published" })
        let draw = try client.get("/v1/campaigns/dr/draw").json
        #expect(draw["entry_count"] as? Int == 40 && draw["winners"] as? Int == 10, "\(draw)")
        #expect((draw["secret"] as? String)?.count == 64 && draw["commitment"] as? String == commitment)
        let bias = try #require(draw["bias"] as? [String: Any])
        #expect(bias["suspicious"] as? Bool == false && (bias["by_site"] as? [Any])?.count == 2)
        #expect(try stack.admin("POST", "/v1/admin/campaigns/dr/draw/run", #"{"public_value":"again"}"#).status == 409)

        // The published files, checked as anyone would check them.
        let json = try client.get("/open/v1/campaigns/dr/draw.json")
        let csv = try client.get("/open/v1/campaigns/dr/results.csv")
        #expect(json.status == 200 && csv.status == 200)
        let description = try DrawDescription(json: Array(json.text.utf8))
        #expect(HexBytes.encode(description.commitment) == commitment && description.publicValue == "beacon round 4242: 9f1c")
        let results = try ResultsFile.read(Array(csv.text.utf8))
        #expect(results.count == 40 && DrawVerifier.verify(description: description, results: results) == nil)
        var tampered = Array(csv.text.utf8)
        let position = tampered.count / 2
        tampered[position] = tampered[position] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        let broken = (try? ResultsFile.read(tampered)).map { DrawVerifier.verify(description: description, results: $0) }
        #expect(broken != .some(nil), "a changed byte passed")

        // Every winner has a confirmed reservation, in Redis and in SQLite,
        // of the slot results.csv gives its rank; its receipt names it.
        let winners = try stack.sqlite().statement("""
            SELECT rank, registration_id, reservation_id FROM draw_entries
            WHERE campaign_id = 'dr' AND reservation_id IS NOT NULL ORDER BY rank
            """).rows { (Int($0.int(0)), $0.text(1), $0.text(2)) }
        #expect(winners.count == 10 && winners.map(\.0) == results.indices.filter { results[$0].wonSlot != nil }.map { $0 + 1 })
        _ = try stack.waitForPersistence("dr", expected: 10)
        for (rank, registration, reservation) in winners {
            let booked = try client.get("/v1/reservations/\(reservation)").json
            #expect(booked["status"] as? String == "confirmed" && booked["slot_id"] as? String == results[rank - 1].wonSlot)
            #expect(try stack.sqlite().statement("SELECT status FROM reservations WHERE id = ?").rows([.text(reservation)]) { $0.text(0) }
                == ["confirmed"])
            let receipt = try client.get("/v1/registrations/\(registration)").json
            #expect(receipt["status"] as? String == "won" && receipt["reservation_id"] as? String == reservation)
        }
        let loser = try #require(try stack.sqlite().statement(
            "SELECT registration_id FROM draw_entries WHERE campaign_id = 'dr' AND reservation_id IS NULL LIMIT 1").rows { $0.text(0) }.first)
        #expect(try client.get("/v1/registrations/\(loser)").json["status"] as? String == "registered")
        #expect(try stack.stats("dr")["remaining"] as? Int == 0)

        // Every entrant's receipt holds against the published files: their
        // entry under the root (its proof read from tree.bin), their ticket,
        // rank and outcome; with one step of the proof changed, it fails.
        let registrations = try stack.sqlite().statement("SELECT registration_id, rank FROM draw_entries WHERE campaign_id = 'dr'")
            .rows { ($0.text(0), Int($0.int(1))) }
        #expect(registrations.count == 40)
        for (registration, rank) in registrations {
            let answer = try client.get("/v1/registrations/\(registration)/receipt")
            #expect(answer.status == 200, "\(answer.text)")
            let receipt = try DrawReceipt(json: Array(answer.text.utf8))
            #expect(receipt.rank == rank && (4...6).contains(receipt.proof.count) && receipt.verify(description: description, results: results) == nil)
            #expect((receipt.wonSlot != nil) == (receipt.reservationID != nil))
            var bent = receipt
            bent.proof[0][0] ^= 1
            #expect(bent.verify(description: description) != nil)
            var otherRank = receipt
            otherRank.rank = rank % 40 + 1
            #expect(otherRank.verify(description: description, results: results) != nil)
        }
        #expect(try client.get("/v1/registrations/\(winners[0].2)/receipt").status == 404)
        #expect(try invariantViolations(stack, campaign: "dr", limit: 1).isEmpty)

        // A draw that did not finish runs again with its first public value
        // only, and gives nobody a second reservation.
        try stack.sqlite().execute("UPDATE draws SET state = 'failed', error = 'test' WHERE campaign_id = 'dr'")
        let otherValue = try stack.admin("POST", "/v1/admin/campaigns/dr/draw/run", #"{"public_value":"a luckier value"}"#)
        #expect(otherValue.status == 409 && otherValue.text.contains("public value"), "\(otherValue.text)")
        let again = try stack.admin("POST", "/v1/admin/campaigns/dr/draw/run", #"{"public_value":"beacon round 4242: 9f1c"}"#)
        #expect(again.status == 202, "\(again.text)")
        #expect(try waitUntil(seconds: 20) { try client.get("/v1/campaigns/dr/draw").json["state"] as? String == "published" })
        #expect(try client.get("/v1/campaigns/dr/draw").json["root"] as? String == draw["root"] as? String)
        let rerun = try stack.sqlite().statement(
            "SELECT reservation_id FROM draw_entries WHERE campaign_id = 'dr' AND reservation_id IS NOT NULL ORDER BY rank").rows { $0.text(0) }
        #expect(rerun == winners.map(\.2))
        #expect(try stack.sqlite().statement("SELECT COUNT(*) FROM reservations WHERE campaign_id = 'dr'").rows { $0.int(0) } == [10])
        #expect(try invariantViolations(stack, campaign: "dr", limit: 1).isEmpty)
        // The window is part of the promise: it cannot move once committed.
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/dr", #"{"closes_at":"2099-01-01T00:00:00Z"}"#).status == 400)
    }
}
