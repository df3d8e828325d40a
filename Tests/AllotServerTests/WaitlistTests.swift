@testable import AllotServer
import AllotDomain
import Foundation
import Testing

/// Issue 14's first-come waitlists, live: the line's order, offers as
/// holds, offers passing on, leaving, no offers after the close, places on
/// sale served to the line first, a spread campaign's lines, and the
/// invariants under concurrent cancels and joins.
@Suite(.serialized) struct WaitlistTests {
    static func join(_ client: HTTPClient, _ campaign: String, _ citizen: String, slot: String? = nil, site: String? = nil) throws
        -> HTTPClient.Response {
        let target = slot.map { #""slot_id":"\#($0)""# } ?? site.map { #""site_id":"\#($0)""# } ?? ""
        return try client.request("POST", "/v1/campaigns/\(campaign)/waitlist", body: #"{"citizen_id":"\#(citizen)",\#(target)}"#)
    }

    /// `count` citizens join at once, half for slot s0 and half for the
    /// site; returns the ids of those who got in line.
    static func joinAtOnce(_ stack: LiveStack, _ campaign: String, _ count: Int) -> [String] {
        let port = stack.port
        let joined = Locked<[String]>([])
        concurrently(count) { citizen in
            let answer = try? Self.join(HTTPClient(port: port), campaign, "w\(citizen)", slot: citizen % 2 == 0 ? "s0" : nil,
                                        site: citizen % 2 == 0 ? nil : "hall")
            if let id = answer?.json["id"] as? String { joined.withLock { $0.append(id) } }
        }
        return joined.withLock { $0 }
    }

    static func makeWaitlistCampaign(_ stack: LiveStack, _ id: String, capacity: Int, offerSeconds: Int,
                                     closesAt: String = "2099-01-01T00:00:00Z", buckets: Int = 1) throws {
        let created = try stack.admin("POST", "/v1/admin/campaigns", """
            {"id":"\(id)","name":"Waitlist \(id)","status":"open","id_scheme":"any","per_citizen_limit":1,"buckets":\(buckets),
             "opens_at":"2020-01-01T00:00:00Z","closes_at":"\(closesAt)","waitlist":{"offer_seconds":\(offerSeconds)}}
            """)
        precondition(created.status == 201, created.text)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/\(id)/sites", #"{"sites":[{"id":"hall","name":"Hall","address":"1 Road"}]}"#).status == 200)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/\(id)/slots", """
            {"slots":[{"id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":\(capacity)}]}
            """).status == 200)
        try stack.waitUntilVisible(id, slots: 1)
    }

    @Test func aPlaceGivenBackGoesToTheFirstInLineAndPassesOnWhenUnclaimed() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeWaitlistCampaign(stack, "wl", capacity: 2, offerSeconds: 1)
        let client = stack.client()
        #expect((try client.get("/v1/campaigns/wl").json["waitlist"] as? [String: Any])?["offer_seconds"] as? Int == 1)
        // Places left: book them, not a place in line.
        #expect(try Self.join(client, "wl", "c", slot: "s0").code == "places_left")
        let a = try #require(try stack.reserve(client, campaign: "wl", citizen: "a", slot: "s0").json["id"] as? String)
        let b = try #require(try stack.reserve(client, campaign: "wl", citizen: "b", slot: "s0").json["id"] as? String)
        #expect(try stack.reserve(client, campaign: "wl", citizen: "c", slot: "s0").code == "slot_full")

        // In line: c for the slot, d for any time at the site, e for the slot.
        let c = try Self.join(client, "wl", "c", slot: "s0")
        #expect(c.status == 201 && c.json["position"] as? Int == 1 && c.json["status"] as? String == "waiting", "\(c.text)")
        let d = try Self.join(client, "wl", "d", site: "hall")
        #expect(d.status == 201 && d.json["position"] as? Int == 1 && d.json["site_id"] as? String == "hall", "\(d.text)")
        let e = try Self.join(client, "wl", "e", slot: "s0")
        #expect(e.json["position"] as? Int == 2)
        #expect(try Self.join(client, "wl", "c", slot: "s0").code == "already_waiting")
        #expect(try Self.join(client, "wl", "a", slot: "s0").code == "citizen_limit_reached")
        #expect(try Self.join(client, "wl", "x", slot: "nope").status == 404)
        let cID = try #require(c.json["id"] as? String), dID = try #require(d.json["id"] as? String)
        let eID = try #require(e.json["id"] as? String)
        #expect(c.header("Location") == "/v1/waitlist/\(cID)")

        // a cancels: the place goes to c (first to join), as a hold.
        #expect(try client.request("DELETE", "/v1/reservations/\(a)").status == 200)
        let offered = try client.get("/v1/waitlist/\(cID)").json
        #expect(offered["status"] as? String == "offered" && offered["position"] == nil, "\(offered)")
        let offer = try #require(offered["reservation_id"] as? String)
        let hold = try client.get("/v1/reservations/\(offer)").json
        #expect(hold["status"] as? String == "held" && hold["slot_id"] as? String == "s0" && hold["expires_at"] != nil, "\(hold)")
        #expect(try stack.stats("wl")["remaining"] as? Int == 0)
        #expect(try client.get("/v1/waitlist/\(eID)").json["position"] as? Int == 1)
        #expect(try client.request("POST", "/v1/reservations/\(offer)/confirm").json["status"] as? String == "confirmed")

        // b cancels: d (the site's line, joined before e) is offered it, lets
        // it lapse, and it passes on to e; e lets it lapse too, and with no
        // one left in line it goes back on sale.
        #expect(try client.request("DELETE", "/v1/reservations/\(b)").status == 200)
        let dOffer = try #require(try client.get("/v1/waitlist/\(dID)").json["reservation_id"] as? String)
        #expect(try client.request("DELETE", "/v1/waitlist/\(dID)").code == "not_waiting")
        #expect(waitUntil(seconds: 4) { (try? client.get("/v1/waitlist/\(eID)").json["status"] as? String) == "offered" })
        #expect(try client.get("/v1/reservations/\(dOffer)").json["status"] as? String == "expired")
        #expect(waitUntil(seconds: 4) { (try? stack.stats("wl")["remaining"] as? Int) == 1 })
        // (Once this loop's snapshot has it back: a refresh, 250 ms.)
        #expect(waitUntil { (try? stack.reserve(client, campaign: "wl", citizen: "f", slot: "s0").status) == 201 })
        #expect(try invariantViolations(stack, campaign: "wl", limit: 1).isEmpty)

        // Leaving the line; what SQLite keeps of it.
        let g = try #require(try Self.join(client, "wl", "g", slot: "s0").json["id"] as? String)
        let left = try client.request("DELETE", "/v1/waitlist/\(g)")
        #expect(left.status == 200 && left.json["status"] as? String == "left")
        #expect(try client.get("/v1/waitlist/\(g)").json["status"] as? String == "left")
        #expect(waitUntil {
            (try? stack.sqlite().statement("SELECT status FROM waitlist WHERE campaign_id = 'wl' ORDER BY joined_at, id")
                .rows { $0.text(0) }) == ["offered", "offered", "offered", "left"]
        })
    }

    @Test func concurrentCancelsServeTheLineInOrderAndNeverOversell() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeWaitlistCampaign(stack, "wlc", capacity: 10, offerSeconds: 60)
        let client = stack.client()
        var booked: [String] = []
        for citizen in 0..<10 {
            booked.append(try #require(try stack.reserve(client, campaign: "wlc", citizen: "b\(citizen)", slot: "s0").json["id"] as? String))
        }
        // 30 join at once: 30 distinct places in line.
        let port = stack.port
        let entries = Self.joinAtOnce(stack, "wlc", 30)
        #expect(entries.count == 30)
        // 10 cancels at once: the first 10 in line are offered the places.
        let toCancel = booked
        concurrently(10) { index in _ = try? HTTPClient(port: port).request("DELETE", "/v1/reservations/\(toCancel[index])") }
        var statuses: [String: String] = [:]
        for entry in entries { statuses[entry] = try client.get("/v1/waitlist/\(entry)").json["status"] as? String }
        #expect(statuses.values.count { $0 == "offered" } == 10 && statuses.values.count { $0 == "waiting" } == 20, "\(statuses)")
        // Those offered joined before every one still waiting (by Redis's
        // clock, to the millisecond: the queues' own order is finer).
        let joinOrder = try stack.keyspace.command(["HGETALL", CampaignKeys("wlc").waitlist], slot: CampaignKeys("wlc").slot)
            .elements?.compactMap(\.text) ?? []
        var joinedAt: [String: Int64] = [:]
        for index in stride(from: 0, to: joinOrder.count - 1, by: 2) {
            joinedAt[joinOrder[index]] = WaitlistRecord(joinOrder[index + 1])?.joinedAtMillis
        }
        let lastOffered = statuses.filter { $0.value == "offered" }.compactMap { joinedAt[$0.key] }.max() ?? .max
        let firstWaiting = statuses.filter { $0.value == "waiting" }.compactMap { joinedAt[$0.key] }.min() ?? .min
        #expect(lastOffered <= firstWaiting)
        let stats = try stack.stats("wlc")
        #expect(stats["remaining"] as? Int == 0 && stats["held"] as? Int == 10 && stats["cancelled"] as? Int == 10, "\(stats)")
        #expect(try invariantViolations(stack, campaign: "wlc", limit: 1).isEmpty)
    }

    @Test func noOffersAfterTheCampaignCloses() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeWaitlistCampaign(stack, "wlx", capacity: 1, offerSeconds: 60)
        let client = stack.client()
        let booked = try #require(try stack.reserve(client, campaign: "wlx", citizen: "a", slot: "s0").json["id"] as? String)
        let waiting = try #require(try Self.join(client, "wlx", "b", slot: "s0").json["id"] as? String)
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/wlx", #"{"status":"closed"}"#).status == 200)
        #expect(try Self.join(client, "wlx", "c", slot: "s0").code == "campaign_not_open")
        #expect(try client.request("DELETE", "/v1/reservations/\(booked)").status == 200)
        #expect(try client.get("/v1/waitlist/\(waiting)").json["status"] as? String == "waiting")
        #expect(try stack.stats("wlx")["held"] as? Int == 0)
        #expect(try invariantViolations(stack, campaign: "wlx", limit: 1).isEmpty)
    }

    @Test func placesOnSaleGoToTheLineBeforeAnyNewcomer() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeWaitlistCampaign(stack, "wlr", capacity: 1, offerSeconds: 60)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "wlr", citizen: "a", slot: "s0").status == 201)
        let waiting = try #require(try Self.join(client, "wlr", "b", site: "hall").json["id"] as? String)
        // A place more: it is the line's, not the next to ask's.
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/wlr/slots", """
            {"slots":[{"id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":2}]}
            """).status == 200)
        #expect(try stack.reserve(client, campaign: "wlr", citizen: "c", slot: "s0").code == "slot_full")
        #expect(waitUntil(seconds: 3) { (try? client.get("/v1/waitlist/\(waiting)").json["status"] as? String) == "offered" })
        #expect(try stack.reserve(client, campaign: "wlr", citizen: "d", slot: "s0").code == "slot_full")
        // A slot added to the site later is its line's too.
        let next = try #require(try Self.join(client, "wlr", "e", site: "hall").json["id"] as? String)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/wlr/slots", #"{"slots":[{"id":"s1","site_id":"hall","starts_at":"2030-01-02T09:00:00Z","ends_at":"2030-01-02T10:00:00Z","capacity":1}]}"#).status == 200)
        #expect(waitUntil(seconds: 3) { (try? client.get("/v1/waitlist/\(next)").json["status"] as? String) == "offered" })
        let stats = try stack.stats("wlr")
        #expect(stats["remaining"] as? Int == 0 && stats["held"] as? Int == 2, "\(stats)")
        #expect(try invariantViolations(stack, campaign: "wlr", limit: 1).isEmpty)
    }

    /// A spread campaign has a line per bucket, for that bucket's citizens;
    /// places given back in a bucket with no one in line are moved to a
    /// bucket whose line waits (HoldSweeper), so every place given back is
    /// offered while anyone waits, each line in its order.
    @Test func aSpreadCampaignsLinesAreServedFromPlacesGivenBackInAnyBucket() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeWaitlistCampaign(stack, "wls", capacity: 20, offerSeconds: 60, buckets: 4)
        let client = stack.client()
        var booked: [String] = []
        for citizen in 0..<20 {
            booked.append(try #require(try stack.reserve(client, campaign: "wls", citizen: "b\(citizen)", slot: "s0").json["id"] as? String))
        }
        #expect(try stack.reserve(client, campaign: "wls", citizen: "late", slot: "s0").code == "slot_full")
        // Every loop's snapshot sees the places gone (a refresh: 250 ms);
        // until then a join may hear `places_left`, from places it saw.
        Thread.sleep(forTimeInterval: 0.6)
        let port = stack.port
        let entries = Self.joinAtOnce(stack, "wls", 40)
        #expect(entries.count == 40)
        let toCancel = booked
        concurrently(20) { index in _ = try? HTTPClient(port: port).request("DELETE", "/v1/reservations/\(toCancel[index])") }
        // Every place given back is offered, wherever it was given back.
        #expect(waitUntil(seconds: 10) { (try? stack.stats("wls")["held"] as? Int) == 20 })
        var statuses: [String: String] = [:]
        for entry in entries { statuses[entry] = try client.get("/v1/waitlist/\(entry)").json["status"] as? String }
        #expect(statuses.values.count { $0 == "offered" } == 20 && statuses.values.count { $0 == "waiting" } == 20, "\(statuses)")
        // In each bucket's line, those offered joined before those waiting.
        let layout = CampaignLayout("wls", buckets: CampaignBuckets(4)!)
        var linesServed = 0
        for keys in layout.bucketKeys {
            let pairs = try stack.keyspace.command(["HGETALL", keys.waitlist], slot: keys.slot).elements?.compactMap(\.text) ?? []
            var records: [WaitlistRecord] = []
            for index in stride(from: 0, to: pairs.count - 1, by: 2) { records.append(try #require(WaitlistRecord(pairs[index + 1]))) }
            let lastOffered = records.filter { $0.status == .offered }.map(\.joinedAtMillis).max() ?? .min
            let firstWaiting = records.filter { $0.status == .waiting }.map(\.joinedAtMillis).min() ?? .max
            #expect(lastOffered <= firstWaiting)
            if records.contains(where: { $0.status == .offered }) { linesServed += 1 }
        }
        #expect(linesServed > 1)
        let stats = try stack.stats("wls")
        #expect(stats["remaining"] as? Int == 0 && stats["cancelled"] as? Int == 20, "\(stats)")
        #expect(try stack.reserve(client, campaign: "wls", citizen: "later", slot: "s0").code == "slot_full")
        #expect(try invariantViolations(stack, campaign: "wls", limit: 1).isEmpty)
    }
}
