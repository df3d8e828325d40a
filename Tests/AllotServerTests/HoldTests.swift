@testable import AllotServer
import AllotDomain
import Foundation
import Logging
import RedisClient
import Testing

/// Issue 14's holds, live: an attempt holds its place until confirmed, a
/// confirm is idempotent, a late one is `hold_expired`, expired holds come
/// back on sale within a second on every node, one hold per citizen, and
/// held + confirmed + redeemed never pass capacity under real concurrency.
@Suite(.serialized) struct HoldTests {
    /// Redis's clock, in ms (the scripts' own).
    static func redisMillis(_ stack: LiveStack) throws -> Int64 {
        let time = try stack.redis.command(["TIME"]).elements?.compactMap { $0.text.flatMap { Int64($0) } } ?? []
        return time[0] * 1_000 + time[1] / 1_000
    }

    static func millis(_ timestamp: Any?) -> Int64? {
        (timestamp as? String).flatMap { Timestamp.parse($0) }
    }

    @Test func aHoldTakesItsPlaceUntilConfirmedAndAConfirmIsIdempotent() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("hold", limit: 2, slots: 1, capacity: 2, holdSeconds: 60)
        let client = stack.client()
        #expect(try client.get("/v1/campaigns/hold").json["hold_seconds"] as? Int == 60)

        let key = ["Idempotency-Key": "hold-key-1"]
        let held = try stack.reserve(client, campaign: "hold", citizen: "h1", slot: "s0", headers: key)
        #expect(held.status == 201 && held.json["status"] as? String == "held", "\(held.text)")
        let id = try #require(held.json["id"] as? String)
        let created = try #require(Self.millis(held.json["created_at"])), expires = try #require(Self.millis(held.json["expires_at"]))
        #expect(expires - created == 60_000)
        // The same key replays the hold as it was answered.
        let replay = try stack.reserve(client, campaign: "hold", citizen: "h1", slot: "s0", headers: key)
        #expect(replay.status == 201 && replay.json["id"] as? String == id && replay.json["expires_at"] as? String == held.json["expires_at"] as? String)
        // One hold at a time, though the limit is two.
        let second = try stack.reserve(client, campaign: "hold", citizen: "h1", slot: "s0")
        #expect(second.status == 409 && second.code == "hold_pending", "\(second.text)")
        // It takes its place: one left, and the stats say one held.
        var stats = try stack.stats("hold")
        #expect(stats["held"] as? Int == 1 && stats["remaining"] as? Int == 1 && stats["confirmed"] as? Int == 0)
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "held")
        // Staff cannot redeem a hold.
        let staff = try stack.makeToken(.staff, name: "counter")
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem", headers: ["Authorization": "Bearer \(staff)"]).code
            == "not_redeemable")

        let confirmed = try client.request("POST", "/v1/reservations/\(id)/confirm")
        #expect(confirmed.status == 200 && confirmed.json["status"] as? String == "confirmed" && confirmed.json["expires_at"] == nil,
                "\(confirmed.text)")
        let again = try client.request("POST", "/v1/reservations/\(id)/confirm")
        #expect(again.status == 200 && again.json["status"] as? String == "confirmed")
        stats = try stack.stats("hold")
        #expect(stats["held"] as? Int == 0 && stats["confirmed"] as? Int == 1 && stats["remaining"] as? Int == 1)
        // With the hold confirmed, the citizen may hold their second place.
        let next = try stack.reserve(client, campaign: "hold", citizen: "h1", slot: "s0")
        #expect(next.status == 201 && next.json["status"] as? String == "held")
        let nextID = try #require(next.json["id"] as? String)
        // A cancelled hold gives its place back, and cannot be confirmed.
        #expect(try client.request("DELETE", "/v1/reservations/\(nextID)").json["status"] as? String == "cancelled")
        #expect(try client.request("POST", "/v1/reservations/\(nextID)/confirm").code == "not_confirmable")
        stats = try stack.stats("hold")
        #expect(stats["held"] as? Int == 0 && stats["remaining"] as? Int == 1 && stats["cancelled"] as? Int == 1)

        // SQLite has each step, the hold's expiry kept.
        _ = try stack.waitForPersistence("hold", expected: 2)
        let rows = try stack.sqlite().statement("SELECT id, status, expires_at FROM reservations WHERE campaign_id = 'hold' ORDER BY id")
            .rows { ($0.text(0), $0.text(1), $0.int(2)) }
        #expect(rows.map(\.1).sorted() == ["cancelled", "confirmed"] && rows.allSatisfy { $0.2 > 0 })
        #expect(rows.first { $0.0 == id }?.2 == expires)
        #expect(try invariantViolations(stack, campaign: "hold", limit: 2).isEmpty)

        // A pending hold is what a holder hears at a limit of one too (not
        // citizen_limit_reached): the advice is to confirm or cancel it.
        try stack.makeCampaign("hold1", limit: 1, slots: 1, capacity: 2, holdSeconds: 60)
        #expect(try stack.reserve(client, campaign: "hold1", citizen: "h1", slot: "s0").status == 201)
        #expect(try stack.reserve(client, campaign: "hold1", citizen: "h1", slot: "s0").code == "hold_pending")
    }

    @Test func aLateConfirmIsHoldExpiredAndThePlaceIsBackOnSaleWithinASecondOnEveryNode() throws {
        let stack = try LiveStack { $0.nodeID = "full" }
        defer { stack.shutdown() }
        try stack.makeCampaign("brief", slots: 1, capacity: 3, holdSeconds: 1)
        // A second node on the same Redis (no SQLite): both sweep.
        let front = try stack.startFrontNode("front-1")
        defer { front.stop() }
        let nodes = [stack.port, front.port]
        #expect(waitUntil { nodes.allSatisfy { (try? HTTPClient(port: $0).get("/v1/campaigns/brief").status) == 200 } })

        // Three citizens hold the three places, through either node.
        var holds: [(id: String, expires: Int64)] = []
        for citizen in 0..<3 {
            let held = try stack.reserve(HTTPClient(port: nodes[citizen % 2]), campaign: "brief", citizen: "b\(citizen)", slot: "s0")
            #expect(held.status == 201, "\(held.text)")
            holds.append((try #require(held.json["id"] as? String), try #require(Self.millis(held.json["expires_at"]))))
        }
        #expect(try stack.reserve(HTTPClient(port: front.port), campaign: "brief", citizen: "b9", slot: "s0").code == "slot_full")
        let confirmedID = holds[0].id
        #expect(try HTTPClient(port: front.port).request("POST", "/v1/reservations/\(confirmedID)/confirm").status == 200)

        // Past the last expiry, each node shows the two places back within a
        // second, by Redis's clock, with no operator.
        let lastExpiry = holds.map(\.expires).max() ?? 0
        while try Self.redisMillis(stack) < lastExpiry { Thread.sleep(forTimeInterval: 0.01) }
        var seenBack: [UInt16: Int64] = [:]
        while seenBack.count < nodes.count, try Self.redisMillis(stack) < lastExpiry + 3_000 {
            for port in nodes where seenBack[port] == nil {
                for _ in 0..<4 {  // new connections land on either loop
                    let slots = try HTTPClient(port: port).get("/v1/campaigns/brief/slots").json["slots"] as? [[String: Any]]
                    guard slots?.first?["remaining"] as? Int == 2 else { break }
                    seenBack[port] = try Self.redisMillis(stack) - lastExpiry
                }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(seenBack.count == 2 && seenBack.values.allSatisfy { $0 <= 1_000 }, "ms past the expiry: \(seenBack)")
        // A confirm after the expiry: hold_expired, on either node.
        let late = try HTTPClient(port: front.port).request("POST", "/v1/reservations/\(holds[1].id)/confirm")
        #expect(late.status == 409 && late.code == "hold_expired", "\(late.text)")
        #expect(try stack.client().get("/v1/reservations/\(holds[2].id)").json["status"] as? String == "expired")
        let stats = try stack.stats("brief")
        #expect(stats["expired"] as? Int == 2 && stats["confirmed"] as? Int == 1 && stats["held"] as? Int == 0)
        // The places are for sale again.
        #expect(try stack.reserve(HTTPClient(port: front.port), campaign: "brief", citizen: "b9", slot: "s0").status == 201)
        #expect(try invariantViolations(stack, campaign: "brief", limit: 1).isEmpty)
    }

    @Test func aCitizenHoldsOnePlaceAtATimeUnderConcurrency() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("one", limit: 5, slots: 3, capacity: 50, holdSeconds: 60)
        let port = stack.port
        let answers = Locked<[String: [Int]]>([:])
        // 8 citizens, 12 attempts each at once over three slots.
        concurrently(16) { thread in
            let client = HTTPClient(port: port)
            for attempt in 0..<6 {
                let response = try? client.request("POST", "/v1/campaigns/one/reservations",
                                                   body: #"{"citizen_id":"c-\#(thread / 2)","slot_id":"s\#(attempt % 3)"}"#)
                answers.withLock { $0["c-\(thread / 2)", default: []].append(response?.status ?? -1) }
            }
        }
        for (citizen, statuses) in answers.withLock({ $0 }) {
            #expect(statuses.count { $0 == 201 } == 1 && statuses.count { $0 == 409 } == 11, "\(citizen): \(statuses)")
        }
        #expect(try stack.stats("one")["held"] as? Int == 8)
        #expect(try invariantViolations(stack, campaign: "one", limit: 5).isEmpty)
    }

    /// The surge the issue asks for: every place ends confirmed or back on
    /// sale. Citizens race for few places; each holder confirms at once,
    /// near the deadline (racing the sweep), too late, or never; some
    /// cancel; refused ones try again as places come back.
    @Test func aHoldSurgeEndsWithEveryPlaceConfirmedOrBackOnSale() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let capacity = 10
        try stack.makeCampaign("surge", limit: 1, slots: 2, capacity: capacity, holdSeconds: 1)
        let port = stack.port
        struct Outcome { var confirmed: [String] = []; var expired: [String] = []; var cancelled: [String] = [] }
        let outcomes = Locked(Outcome())
        let deadline = Date().addingTimeInterval(4)
        concurrently(16) { thread in
            let client = HTTPClient(port: port)
            var round = 0
            while Date() < deadline {
                round += 1
                let citizen = "p-\(thread)-\(round)"
                guard let held = try? client.request("POST", "/v1/campaigns/surge/reservations",
                                                     body: #"{"citizen_id":"\#(citizen)","slot_id":"s\#(thread % 2)"}"#),
                      held.status == 201, let id = held.json["id"] as? String,
                      let expires = (held.json["expires_at"] as? String).flatMap({ Timestamp.parse($0) }) else {
                    Thread.sleep(forTimeInterval: 0.02)
                    continue
                }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                switch (thread + round) % 5 {
                case 0, 1: break  // confirm at once
                case 2: Thread.sleep(forTimeInterval: Double(max(0, expires - now - 5)) / 1000)  // on the deadline
                case 3: Thread.sleep(forTimeInterval: Double(expires - now + 300) / 1000)  // too late
                default:
                    if (thread + round) % 10 == 4 {
                        if (try? client.request("DELETE", "/v1/reservations/\(id)"))?.status == 200 {
                            outcomes.withLock { $0.cancelled.append(id) }
                        }
                        continue
                    }
                    outcomes.withLock { $0.expired.append(id) }  // never confirmed
                    continue
                }
                let confirm = try? client.request("POST", "/v1/reservations/\(id)/confirm")
                outcomes.withLock {
                    if confirm?.status == 200 { $0.confirmed.append(id) } else if confirm?.code == "hold_expired" { $0.expired.append(id) }
                }
            }
        }
        // Past the last hold's expiry and a second: nothing held.
        let ended = outcomes.withLock { $0 }
        #expect(waitUntil(seconds: 3) { (try? stack.stats("surge")["held"] as? Int) == 0 })
        let stats = try stack.stats("surge")
        let confirmed = stats["confirmed"] as? Int ?? -1, remaining = stats["remaining"] as? Int ?? -1
        #expect(confirmed + remaining == 2 * capacity, "\(stats)")
        #expect(confirmed == ended.confirmed.count, "\(stats) \(ended.confirmed.count) confirms answered 200")
        #expect(ended.confirmed.count > 0 && ended.expired.count > 0)
        // Each answer is what the reservation became.
        let client = stack.client()
        for id in ended.confirmed { #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "confirmed") }
        for id in ended.expired { #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "expired") }
        for id in ended.cancelled { #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "cancelled") }
        let made = (stats["confirmed"] as? Int ?? 0) + (stats["cancelled"] as? Int ?? 0) + (stats["expired"] as? Int ?? 0)
        _ = try stack.waitForPersistence("surge", expected: made)
        let rows = try stack.sqlite().statement("SELECT status, COUNT(*) FROM reservations WHERE campaign_id = 'surge' GROUP BY status")
            .rows { ($0.text(0), Int($0.int(1))) }
        let counts = Dictionary(uniqueKeysWithValues: rows)
        #expect(counts["held"] == nil && counts["confirmed"] == confirmed, "\(counts)")
        #expect(try invariantViolations(stack, campaign: "surge", limit: 1).isEmpty)
    }
}
