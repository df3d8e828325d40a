import Foundation
import Testing

/// Invariant 5: with Redis away the server answers 503 fast, confirms
/// nothing, and recovers by itself.
@Suite(.serialized) struct FailClosedTests {
    @Test func redisDownGives503AndRecoveryNeedsNoRestart() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("f1", limit: 1, slots: 1, capacity: 100)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "f1", citizen: "before", slot: "s0").status == 201)
        Thread.sleep(forTimeInterval: 1.2)  // AOF everysec: the 201 is on disk

        stack.redis.kill()
        let started = Date()
        let down = try stack.reserve(client, campaign: "f1", citizen: "during", slot: "s0")
        let elapsed = Date().timeIntervalSince(started)
        #expect(down.status == 503)
        #expect(down.code == "unavailable")
        #expect(Int(down.header("Retry-After") ?? "") ?? 0 >= 1)
        // "Fast" here means it does not hang on Redis: well under the
        // command timeout plus a reconnect, not a speed claim.
        #expect(elapsed < 3, "503 took \(elapsed) s")
        // Reads still answer from the snapshot while it is young.
        #expect(try client.get("/v1/campaigns/f1/slots").status == 200)
        #expect(try client.get("/readyz").status == 503)

        try stack.redis.start()
        var recovered = false
        for _ in 0..<100 where !recovered {
            Thread.sleep(forTimeInterval: 0.1)
            recovered = try stack.reserve(client, campaign: "f1", citizen: "after", slot: "s0").status == 201
        }
        #expect(recovered)
        // The reservation made before the crash survived in the AOF.
        #expect(try stack.reserve(client, campaign: "f1", citizen: "before", slot: "s0").code == "citizen_limit_reached")
        let stats = try stack.stats("f1")
        #expect(stats["confirmed"] as? Int == 2, "\(stats)")
        _ = try stack.waitForPersistence("f1", expected: 2)
    }

    @Test func frozenRedisTimesOutInsteadOfHanging() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("f2", limit: 1, slots: 1, capacity: 100)
        let client = stack.client()
        stack.redis.pause()
        let started = Date()
        let frozen = try stack.reserve(client, campaign: "f2", citizen: "x", slot: "s0")
        let elapsed = Date().timeIntervalSince(started)
        stack.redis.resume()
        #expect(frozen.status == 503)
        #expect(elapsed < 3, "503 took \(elapsed) s")
        var recovered = false
        for _ in 0..<100 where !recovered {
            Thread.sleep(forTimeInterval: 0.1)
            let response = try stack.reserve(client, campaign: "f2", citizen: "y", slot: "s0")
            recovered = response.status == 201
        }
        #expect(recovered)
    }
}
