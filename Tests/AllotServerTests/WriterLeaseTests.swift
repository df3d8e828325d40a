@testable import AllotServer
import AllotDomain
import EventLoops
import Foundation
import Logging
import RedisClient
import SQLiteStore
import Testing

/// One SQLite writer among the nodes sharing a database: the holder of the
/// writer lease; a standby takes over when it ends, and a holder that lost
/// it can no longer write.
@Suite(.serialized) struct WriterLeaseTests {
    @Test func aStandbyTakesOverAnExpiredLeaseAndTheOldHolderIsFencedOut() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let redis = RedisSyncClient(host: "127.0.0.1", port: stack.redis.port)
        defer { redis.close() }
        let database = try Schema.open(path: stack.directory + "/fenced.db")
        let first = WriterLease(redis: redis, nodeID: "a", lifeMillis: 300)
        let second = WriterLease(redis: redis, nodeID: "b", lifeMillis: 300)
        // The running server holds the real lease: these take a fresh one.
        _ = try redis.command(["DEL", GlobalKeys.writerLease])
        let firstFence = try #require(first.ensure())
        #expect(second.ensure() == nil)
        try database.transaction { try WriterLease.claim(firstFence, in: database) }
        // The first stops renewing (paused); its lease runs out.
        Thread.sleep(forTimeInterval: 0.4)
        let secondFence = try #require(second.ensure())
        #expect(secondFence > firstFence)
        try database.transaction { try WriterLease.claim(secondFence, in: database) }
        // The first wakes up: its write is refused and rolled back.
        #expect(throws: WriterLease.FencedOut.self) {
            try database.transaction {
                try database.execute("INSERT INTO tokens (name, role, digest, created_at) VALUES ('a', 'staff', 'd', 0)")
                try WriterLease.claim(firstFence, in: database)
            }
        }
        #expect(try database.statement("SELECT COUNT(*) FROM tokens").rows { $0.int(0) } == [0])
        // And it learns it is no longer the holder once it asks.
        #expect(first.ensure(nowMicros: monotonicMicros() + 1_000_000) == nil)
        // A clean stop lets the lease go at once.
        second.release()
        #expect(first.ensure() != nil)
    }

    /// Redis lost its fencing counter (a recover, a failover that lost the
    /// INCR): the next lease is still drawn above SQLite's last fence, or
    /// every write would be refused for good.
    @Test func aLostFenceCounterStartsAboveTheDatabasesLastFence() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let redis = RedisSyncClient(host: "127.0.0.1", port: stack.redis.port)
        defer { redis.close() }
        let database = try Schema.open(path: stack.directory + "/fenced.db")
        try database.transaction { try WriterLease.claim(9, in: database) }
        _ = try redis.command(["DEL", GlobalKeys.writerLease, GlobalKeys.writerFence])
        let lease = WriterLease(redis: redis, nodeID: "after-loss", lifeMillis: 5_000)
        let fence = try #require(lease.ensure(floor: try WriterLease.storedFence(database)))
        #expect(fence == 10)
        try database.transaction { try WriterLease.claim(fence, in: database) }
        #expect(try redis.command(["GET", GlobalKeys.writerFence]).text == "10")
    }

    /// Entries an earlier holder read after losing its lease wait under its
    /// name: the holder takes them over while it runs, not only when it
    /// takes the lease.
    @Test func entriesLeftWithAFormerHolderAreTakenOverWhileRunning() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("former", limit: 1, slots: 1, capacity: 10)
        // The persister follows the campaign already (a new one's streams
        // are claimed when first seen, which would hide what is tested).
        #expect(try stack.reserve(stack.client(), campaign: "former", citizen: "first", slot: "s0").status == 201)
        _ = try stack.waitForPersistence("former", expected: 1)
        let stream = "{c:former}:ev", orphan = "01M8000000000000000000FORM"
        let replies = try stack.redis.pipeline([
            ["MULTI"],
            ["XADD", stream, "*", "e", orphan + "|confirmed|s0|hall|ABCD-EFGH|k5|1700000000000|1700000000000"],
            ["XREADGROUP", "GROUP", "persist", "persister-a-former-holder", "COUNT", "10", "STREAMS", stream, ">"],
            ["EXEC"],
        ])
        #expect(replies[3].elements?[1].elements?.count == 1, "the entry was not handed over")
        #expect(try waitUntil(seconds: 8) {
            try stack.sqlite().statement("SELECT COUNT(*) FROM reservations WHERE id = ?").rows([.text(orphan)]) { $0.int(0) } == [1]
        })
    }

    @Test func aNodeWithAnotherCitizenKeyRefusesToStart() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        var other = stack.server.config
        other.port = 0
        other.nodeID = "wrong-key"
        other.citizenSecret = Array("another-citizen-secret-0123456789-xyz".utf8)
        let server = AllotServer(config: other, logger: Logger(label: "wrong-key"))
        #expect(throws: CitizenKeyCheck.Mismatch.self) { try server.start() }
    }

    @Test func twoNodesOnOneDatabaseShareTheWorkAndTheStandbyTakesOver() throws {
        let stack = try LiveStack { $0.nodeID = "node-a" }
        defer { stack.shutdown() }
        try stack.makeCampaign("lease", capacity: 100)
        var second = stack.server.config
        second.nodeID = "node-b"
        second.port = 0
        let standby = AllotServer(config: second, logger: Logger(label: "standby"))
        try standby.start()
        defer { standby.stop() }
        // The standby serves citizens (once its loops have read the campaign);
        // the first node writes SQLite.
        let viaStandby = HTTPClient(port: standby.port)
        #expect(waitUntil { (0..<8).allSatisfy { _ in (try? HTTPClient(port: standby.port).get("/v1/campaigns/lease").status) == 200 } })
        for citizen in 0..<5 { #expect(try stack.reserve(viaStandby, campaign: "lease", citizen: "s\(citizen)", slot: "s0").status == 201) }
        _ = try stack.waitForPersistence("lease", expected: 5)
        #expect(try viaStandby.get("/readyz").status == 200)
        #expect(try stack.redis.command(["GET", GlobalKeys.writerLease]).text?.hasPrefix("node-a/") == true)
        // The first node stops: the standby takes the lease and persists.
        stack.server.stop()
        #expect(try waitUntil { try stack.redis.command(["GET", GlobalKeys.writerLease]).text?.hasPrefix("node-b/") == true })
        for citizen in 5..<10 { #expect(try stack.reserve(viaStandby, campaign: "lease", citizen: "s\(citizen)", slot: "s0").status == 201) }
        #expect(try waitUntil(seconds: 10) {
            try stack.sqlite().statement("SELECT COUNT(*) FROM reservations WHERE campaign_id = 'lease'").rows { $0.int(0) } == [10]
        })
        #expect(try invariantViolations(stack, campaign: "lease", limit: 1).isEmpty)
    }
}

/// `--role front`: a node with no SQLite serves citizens and staff; tokens
/// reach it through Redis; operator requests go to a full node.
@Suite(.serialized) struct FrontNodeTests {
    @Test func aFrontNodeServesCitizensAndStaffAndSendsOperatorsAway() throws {
        let stack = try LiveStack { $0.nodeID = "full" }
        defer { stack.shutdown() }
        try stack.makeCampaign("front", capacity: 100)
        let front = try stack.startFrontNode("front-1")
        defer { front.stop() }
        #expect(waitUntil { (0..<8).allSatisfy { _ in (try? HTTPClient(port: front.port).get("/v1/campaigns/front").status) == 200 } })
        let client = HTTPClient(port: front.port)
        #expect(try client.get("/readyz").status == 200)
        // Citizens book through it; the full node writes SQLite.
        let booked = try stack.reserve(client, campaign: "front", citizen: "f1", slot: "s0")
        #expect(booked.status == 201)
        let id = try #require(booked.json["id"] as? String)
        _ = try stack.waitForPersistence("front", expected: 1)
        // A staff token made on the full node works here once published.
        let staff = try stack.makeToken(.staff, name: "counter-front")
        var redeemed: HTTPClient.Response?
        #expect(waitUntil {
            redeemed = try? client.request("POST", "/v1/reservations/\(id)/redeem", headers: ["Authorization": "Bearer \(staff)"])
            return redeemed?.status == 200
        }, "\(redeemed?.text ?? "")")
        // Operators are sent to the full node.
        let operatorRequest = try client.request("GET", "/v1/admin/campaigns/front/stats", headers: stack.adminHeaders)
        #expect(operatorRequest.status == 503 && operatorRequest.text.contains("no database"))
        #expect(!FileManager.default.fileExists(atPath: front.config.databasePath))
        // A revoked token stops working here too.
        try OperatorDatabase(path: stack.databasePath).revokeToken(name: "counter-front", actor: "cli:test")
        #expect(waitUntil {
            (try? client.request("POST", "/v1/reservations/\(id)/redeem", headers: ["Authorization": "Bearer \(staff)"]).status) == 401
        })
    }
}
