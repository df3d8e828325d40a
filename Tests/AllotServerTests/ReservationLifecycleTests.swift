import Foundation
import SQLiteStore
import Testing

@Suite(.serialized) struct ReservationLifecycleTests {
    @Test func cancelGivesThePlaceBackAtOnce() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("c1", limit: 1, slots: 1, capacity: 1)
        let client = stack.client()

        let first = try stack.reserve(client, campaign: "c1", citizen: "alice", slot: "s0")
        #expect(first.status == 201)
        let id = try #require(first.json["id"] as? String)
        #expect(first.header("Location") == "/v1/reservations/\(id)")
        #expect(try stack.reserve(client, campaign: "c1", citizen: "bob", slot: "s0").code == "slot_full")

        let cancelled = try client.request("DELETE", "/v1/reservations/\(id)")
        #expect(cancelled.status == 200)
        #expect(cancelled.json["status"] as? String == "cancelled")
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "cancelled")
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").code == "not_cancellable")

        // The place is back at once, and alice's share too.
        let second = try stack.reserve(client, campaign: "c1", citizen: "bob", slot: "s0")
        #expect(second.status == 201)
        let stats = try stack.stats("c1")
        #expect(stats["confirmed"] as? Int == 1)
        #expect(stats["cancelled"] as? Int == 1)
        #expect(stats["remaining"] as? Int == 0)

        _ = try stack.waitForPersistence("c1", expected: 2)
        let rows = try stack.sqlite().statement("SELECT id, status FROM reservations ORDER BY id").rows { ($0.text(0), $0.text(1)) }
        #expect(rows.map(\.1) == ["cancelled", "confirmed"])
        #expect(rows.first?.0 == id)
    }

    @Test func redeemIsStaffOnlyAndFinal() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("r1", limit: 1, slots: 1, capacity: 5)
        let client = stack.client()
        let id = try #require(try stack.reserve(client, campaign: "r1", citizen: "carol", slot: "s0").json["id"] as? String)
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem").status == 401)
        let redeemed = try client.request("POST", "/v1/reservations/\(id)/redeem", headers: stack.adminHeaders)
        #expect(redeemed.json["status"] as? String == "redeemed")
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem", headers: stack.adminHeaders).code == "not_redeemable")
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").code == "not_cancellable")
        #expect(try stack.stats("r1")["redeemed"] as? Int == 1)
    }

    @Test func unknownReservationIs404() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("u1")
        let client = stack.client()
        #expect(try client.get("/v1/reservations/01M818MGYNHM5WM7SR94B7ADZR").code == "not_found")
        #expect(try client.request("DELETE", "/v1/reservations/01M818MGYNHM5WM7SR94B7ADZR").code == "not_found")
        #expect(try client.get("/v1/reservations/not-an-id").code == "not_found")
    }

    @Test func campaignsThatAreNotOpenRefuse() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("paused", status: "paused")
        try stack.makeCampaign("closed", status: "closed")
        try stack.makeCampaign("ended", closesAt: "2021-01-01T00:00:00Z")
        try stack.makeCampaign("later", opensAt: "2098-01-01T00:00:00Z")
        let client = stack.client()
        for campaign in ["paused", "closed", "ended", "later"] {
            let response = try stack.reserve(client, campaign: campaign, citizen: "dave", slot: "s0")
            #expect(response.status == 403, "\(campaign)")
            #expect(response.code == "campaign_not_open", "\(campaign)")
        }
        // Listed: open now or opening later; not paused, closed or ended.
        let listed = (try client.get("/v1/campaigns").json["campaigns"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(listed == ["later"])
        #expect(try client.get("/v1/campaigns/ended").json["status"] as? String == "closed")

        // An operator reopens: it takes effect within a second on every loop.
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/paused", #"{"status":"open"}"#).status == 200)
        var opened = false
        for _ in 0..<40 where !opened {
            Thread.sleep(forTimeInterval: 0.05)
            opened = try stack.reserve(HTTPClient(port: stack.port), campaign: "paused", citizen: "erin", slot: "s0").status == 201
        }
        #expect(opened)
        #expect(try waitUntil {
            try stack.stats("paused")["rejected"].flatMap { ($0 as? [String: Int])?["campaign_not_open"] } ?? 0 >= 1
        })
    }

    @Test func draftCampaignsAreInvisibleToCitizens() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let created = try stack.admin("POST", "/v1/admin/campaigns", #"{"id":"draft1","name":"D","id_scheme":"any","per_citizen_limit":1,"opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}"#)
        #expect(created.status == 201)
        #expect(created.json["status"] as? String == "draft")
        #expect(try stack.client().get("/v1/campaigns/draft1").status == 404)
    }

    @Test func shrinkingASlotNeverGoesBelowPlacesTaken() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("q1", limit: 1, slots: 1, capacity: 5)
        let client = stack.client()
        for citizen in ["a", "b", "c"] { #expect(try stack.reserve(client, campaign: "q1", citizen: citizen, slot: "s0").status == 201) }
        let shrunk = try stack.admin("PATCH", "/v1/admin/campaigns/q1/slots/s0", #"{"capacity":1}"#)
        #expect(shrunk.json["capacity"] as? Int == 3)
        #expect(shrunk.json["remaining"] as? Int == 0)
        let grown = try stack.admin("PATCH", "/v1/admin/campaigns/q1/slots/s0", #"{"capacity":10}"#)
        #expect(grown.json["remaining"] as? Int == 7)
        let capacity = try stack.sqlite().statement("SELECT capacity FROM slots WHERE id = 's0'").rows { $0.int(0) }
        #expect(capacity == [10])
    }

    @Test func csvExportHoldsEveryPersistedReservation() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("x1", limit: 1, slots: 2, capacity: 1500)
        concurrently(8) { worker in
            let client = HTTPClient(port: stack.port)
            for index in 0..<300 {
                _ = try? stack.reserve(client, campaign: "x1", citizen: "w\(worker)-\(index)", slot: "s\(index % 2)")
            }
        }
        _ = try stack.waitForPersistence("x1", expected: 2400)
        let csv = try stack.client().get("/v1/admin/campaigns/x1/reservations.csv", headers: stack.adminHeaders)
        #expect(csv.status == 200)
        let lines = csv.text.split(separator: "\r\n")
        #expect(lines.first == "reservation_id,campaign_id,site_id,slot_id,status,code,citizen_key,created_at,updated_at")
        #expect(lines.count == 2401)
        #expect(Set(lines.dropFirst().map { $0.prefix(26) }).count == 2400)
        #expect(try stack.client().get("/v1/admin/campaigns/x1/reservations.csv").status == 401)
    }
}
