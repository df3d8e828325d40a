@testable import AllotServer
import AllotDomain
import Foundation
import Testing

@Suite(.serialized) struct IdempotencyTests {
    @Test func sameKeySameBodyGivesTheFirstAnswerByteForByte() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("i1", limit: 2, slots: 2, capacity: 10)
        let client = stack.client()
        let key = ["Idempotency-Key": "order-1"]
        let first = try stack.reserve(client, campaign: "i1", citizen: "ann", slot: "s0", headers: key)
        let again = try stack.reserve(client, campaign: "i1", citizen: "ann", slot: "s0", headers: key)
        #expect(first.status == 201)
        #expect(again.status == 201)
        #expect(again.body == first.body)
        let conflict = try stack.reserve(client, campaign: "i1", citizen: "ann", slot: "s1", headers: key)
        #expect(conflict.status == 422)
        #expect(conflict.code == "idempotency_conflict")
        #expect(try stack.stats("i1")["confirmed"] as? Int == 1)
    }

    /// A replay writes (it renews the key's life): with `--durability
    /// replicated` its WAIT then covers the write it replays.
    @Test func aReplayRenewsItsKeysLife() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("i9", limit: 1, capacity: 10)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "i9", citizen: "cy", slot: "s0", headers: ["Idempotency-Key": "renew"]).status == 201)
        let keyer = CitizenKeyer(secret: Array("test-citizen-secret-0123456789-abcdef".utf8))
        let key = CampaignKeys("i9").idempotency(keyer.citizenKey(normalizedID: "idempotency:renew"))
        _ = try stack.redis.command(["EXPIRE", key, "10"])
        #expect(try stack.reserve(client, campaign: "i9", citizen: "cy", slot: "s0", headers: ["Idempotency-Key": "renew"]).status == 201)
        let ttl = try stack.redis.command(["TTL", key]).integer ?? 0
        #expect(ttl > 1_000, "TTL \(ttl)")
    }

    @Test func concurrentRequestsWithOneKeyMakeOneReservation() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("i2", limit: 5, slots: 1, capacity: 100)
        let bodies = Locked<[[UInt8]]>([])
        concurrently(100) { _ in
            let client = HTTPClient(port: stack.port)
            if let response = try? stack.reserve(client, campaign: "i2", citizen: "bea", slot: "s0",
                                                 headers: ["Idempotency-Key": "same-key"]), response.status == 201 {
                bodies.withLock { $0.append(response.body) }
            }
        }
        let all = bodies.withLock { $0 }
        #expect(all.count == 100)
        #expect(Set(all).count == 1)
        #expect(try stack.stats("i2")["confirmed"] as? Int == 1)
        // One stored answer, kept for 24 h.
        let keys = try stack.redis.command(["KEYS", "*:idem:*"]).elements?.compactMap(\.text) ?? []
        #expect(keys.count == 1)
        let ttl = try stack.redis.command(["TTL", keys.first ?? ""]).integer ?? -1
        #expect(ttl > 24 * 3600 - 60 && ttl <= 24 * 3600)
    }

    @Test func anExpiredKeyIsANewKey() throws {
        let stack = try LiveStack { $0.idempotencyTTLSeconds = 1 }
        defer { stack.shutdown() }
        try stack.makeCampaign("i3", limit: 2, slots: 2, capacity: 10)
        let client = stack.client()
        let key = ["Idempotency-Key": "order-9"]
        #expect(try stack.reserve(client, campaign: "i3", citizen: "cy", slot: "s0", headers: key).status == 201)
        #expect(try stack.reserve(client, campaign: "i3", citizen: "cy", slot: "s1", headers: key).code == "idempotency_conflict")
        // Past its lifetime (1 s) the key is forgotten: the other body is a new booking.
        #expect(try waitUntil { try stack.redis.command(["KEYS", "{c:i3}:idem:*"]).elements?.isEmpty == true })
        #expect(try stack.reserve(client, campaign: "i3", citizen: "cy", slot: "s1", headers: key).status == 201)
        #expect(try stack.stats("i3")["confirmed"] as? Int == 2)
    }
}
