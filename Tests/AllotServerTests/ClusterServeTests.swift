@testable import AllotServer
import AllotDomain
import Foundation
import Logging
import ProcessSupervision
import RedisClient
import Testing

/// `allot serve --redis-cluster`: the whole server on a three-master Redis
/// Cluster that the test makes, each campaign's keys on the master of its
/// tag's slot.
@Suite(.serialized) struct ClusterServeTests {
    /// Campaign ids whose keys land on masters 0, 1 and 2, in that order.
    static func campaignsOnEveryMaster(_ cluster: LoopbackRedisCluster) -> [String] {
        (0..<cluster.mastersAtStart).map { master in
            (0...).lazy.map { "camp\($0)" }.first { cluster.owner(ofSlot: CampaignKeys($0).slot) == master }!
        }
    }

    @Test func aSurgeOverThreeMastersKeepsEveryInvariant() throws {
        let stack = try LiveStack(clusterMasters: 3)
        defer { stack.shutdown() }
        let cluster = try #require(stack.cluster)
        let campaigns = Self.campaignsOnEveryMaster(cluster)
        for campaign in campaigns { try stack.makeCampaign(campaign, slots: 3, capacity: 10) }
        // Each master's connection of each loop loaded the library.
        for master in 0..<3 {
            let libraries = try cluster.clients[master].command(["FUNCTION", "LIST"]).elements ?? []
            #expect(libraries.count == 1, "master \(master) has \(libraries.count) libraries")
        }

        let port = stack.port
        let outcomes = Locked<[Int: [(Int, String?, String?)]]>([:])
        concurrently(24) { connection in
            let client = HTTPClient(port: port)
            for attempt in 0..<20 {
                let n = connection * 20 + attempt
                let campaign = n % 3
                let response = try? client.request("POST", "/v1/campaigns/\(campaigns[campaign])/reservations",
                                                   body: #"{"citizen_id":"c\#(n % 150)","slot_id":"s\#(n / 3 % 3)"}"#)
                outcomes.withLock {
                    $0[campaign, default: []].append((response?.status ?? -1, response?.code, response?.json["id"] as? String))
                }
            }
        }
        let client = stack.client()
        for (index, campaign) in campaigns.enumerated() {
            let answers = outcomes.withLock { $0[index] ?? [] }
            let unexpected = answers.filter { !($0.0 == 201 || ($0.0 == 409 && ["slot_full", "citizen_limit_reached"].contains($0.1))) }
            #expect(unexpected.isEmpty, "\(campaign): \(unexpected.prefix(3))")
            // 160 attempts, 50 citizens, 30 places: every place is taken.
            let booked = answers.compactMap(\.2)
            #expect(booked.count == 30, "\(campaign): \(booked.count) booked")
            #expect(try client.request("DELETE", "/v1/reservations/\(booked[0])").status == 200)
            #expect(try client.request("POST", "/v1/reservations/\(booked[1])/redeem", headers: stack.adminHeaders).status == 200)
            _ = try stack.waitForPersistence(campaign, expected: 30)
            #expect(try invariantViolations(stack, campaign: campaign, limit: 1).isEmpty)
            let stats = try stack.stats(campaign)
            #expect(stats["remaining"] as? Int == 1 && stats["cancelled"] as? Int == 1 && stats["redeemed"] as? Int == 1)
        }
        // Each master ran the reservations of its campaign.
        for master in 0..<3 {
            let stats = try cluster.clients[master].command(["INFO", "commandstats"]).text ?? ""
            #expect(stats.contains("cmdstat_fcall:"), "master \(master) ran no function")
        }
    }

    @Test func recoverRebuildsEveryCampaignOnItsMaster() throws {
        let stack = try LiveStack(clusterMasters: 3)
        defer { stack.shutdown() }
        let cluster = try #require(stack.cluster)
        let campaigns = Self.campaignsOnEveryMaster(cluster)
        let client = stack.client()
        for campaign in campaigns {
            try stack.makeCampaign(campaign, slots: 2, capacity: 5)
            for citizen in 0..<4 { #expect(try stack.reserve(client, campaign: campaign, citizen: "c\(citizen)", slot: "s0").status == 201) }
            _ = try stack.waitForPersistence(campaign, expected: 4)
        }
        // Every master loses its data; the operator runs `allot recover`.
        for master in 0..<3 { try cluster.clients[master].checked(["FLUSHALL"]) }
        let reports = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment,
                                   logger: Logger(label: "recover-test")).run()
        #expect(reports.map(\.rebuilt) == [true, true, true] && reports.allSatisfy { $0.placesTaken == 4 })
        for campaign in campaigns {
            try stack.waitUntilVisible(campaign, slots: 2)
            #expect(try invariantViolations(stack, campaign: campaign, limit: 1).isEmpty)
            #expect(try stack.reserve(client, campaign: campaign, citizen: "c0", slot: "s1").code == "citizen_limit_reached")
            #expect(try stack.reserve(client, campaign: campaign, citizen: "c9", slot: "s0").status == 201)
            #expect(try stack.reserve(client, campaign: campaign, citizen: "c8", slot: "s0").code == "slot_full")
        }
    }

    @Test func anEndedCampaignRetiresAndALaterChangeReachesSQLite() throws {
        let stack = try LiveStack(clusterMasters: 3) { $0.retireEveryMillis = 100 }
        defer { stack.shutdown() }
        let closesAt = Timestamp.format(millis: WallClock.nowMillis() + 1_500, alwaysFraction: false)
        try stack.makeCampaign("ends", capacity: 10, closesAt: closesAt)
        let client = stack.client()
        let id = try #require(try stack.reserve(client, campaign: "ends", citizen: "a", slot: "s0").json["id"] as? String)
        let isHot = { try stack.keyspace.command(["SISMEMBER", HotSet.key, "ends"], slot: HotSet.slot).integer == 1 }
        #expect(try waitUntil(seconds: 10) { try !isHot() })
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").json["status"] as? String == "cancelled")
        #expect(try waitUntil { try isHot() })
        #expect(try waitUntil {
            try stack.sqlite().statement("SELECT status FROM reservations WHERE id = ?").rows([.text(id)]) { $0.text(0) } == ["cancelled"]
        })
    }
}

/// A campaign spread over 16 buckets on three masters (issue 12): places
/// move from the pool and between buckets as demand lands.
@Suite(.serialized) struct SpreadCampaignTests {
    @Test func aSurgeOnSixteenBucketsTakesEveryPlaceWithFewMoves() throws {
        let stack = try LiveStack(clusterMasters: 3)
        defer { stack.shutdown() }
        let cluster = try #require(stack.cluster)
        try stack.makeCampaign("wide", limit: 1, slots: 2, capacity: 2_000, buckets: 16)
        let port = stack.port
        let outcomes = Locked<[(Int, String?, String?)]>([])
        concurrently(32) { connection in
            let client = HTTPClient(port: port)
            for attempt in 0..<180 {
                let n = connection * 180 + attempt
                let response = try? client.request("POST", "/v1/campaigns/wide/reservations",
                                                   body: #"{"citizen_id":"c\#(n * 7 % 5_000)","slot_id":"s\#(n % 2)"}"#)
                outcomes.withLock { $0.append((response?.status ?? -1, response?.code, response?.json["id"] as? String)) }
            }
        }
        let answers = outcomes.withLock { $0 }
        let unexpected = answers.filter { !($0.0 == 201 || ($0.0 == 409 && ["slot_full", "citizen_limit_reached"].contains($0.1))) }
        #expect(unexpected.isEmpty, "\(unexpected.prefix(3))")
        // 5,760 attempts by 5,000 citizens on 4,000 places: every place is taken.
        let booked = answers.compactMap(\.2)
        #expect(booked.count == 4_000)
        _ = try stack.waitForPersistence("wide", expected: 4_000)
        #expect(try invariantViolations(stack, campaign: "wide", limit: 1).isEmpty)
        let stats = try stack.stats("wide")
        #expect(stats["remaining"] as? Int == 0 && stats["confirmed"] as? Int == 4_000)
        // Few moves: each settled one leaves a mark on its source.
        var moves = 0
        for master in 0..<3 {
            var cursor = "0"
            repeat {
                let page = try cluster.clients[master].checked(["SCAN", cursor, "MATCH", "{c:wide*:xdone:*", "COUNT", "1000"])
                cursor = page.elements?[0].text ?? "0"
                moves += page.elements?[1].elements?.count ?? 0
            } while cursor != "0"
        }
        #expect(moves > 0 && moves * 10 <= 4_000, "\(moves) moves for 4,000 places")
        print("spread surge: \(moves) moves for 4,000 places")
        // Every master ran reservations (16 buckets over 3 masters).
        for master in 0..<3 {
            let commandStats = try cluster.clients[master].command(["INFO", "commandstats"]).text ?? ""
            #expect(commandStats.contains("cmdstat_fcall:"), "master \(master)")
        }
        // A cancel gives its place back to its bucket; a citizen of any
        // other bucket still gets it (moved to theirs).
        let client = stack.client()
        #expect(try client.request("DELETE", "/v1/reservations/\(booked[0])").status == 200)
        let lookup = try client.get("/v1/reservations/\(booked[0])")
        let slot = try #require(lookup.json["slot_id"] as? String)
        var newcomer: HTTPClient.Response?
        for citizen in 1_000..<1_040 where newcomer?.status != 201 {
            newcomer = try stack.reserve(client, campaign: "wide", citizen: "n\(citizen)", slot: slot)
        }
        #expect(newcomer?.status == 201)
        #expect(try stack.reserve(client, campaign: "wide", citizen: "late", slot: slot).code == "slot_full")
        _ = try stack.waitForPersistence("wide", expected: 4_001)
        #expect(try invariantViolations(stack, campaign: "wide", limit: 1).isEmpty)
    }

    /// A node killed between debit and credit leaves places in a record:
    /// they are not sold, so citizens hear 503 (try again), never
    /// slot_full, until the sweeper lands them; then they are booked.
    @Test func placesLeftHalfWayAreNeverSoldOutAndTheSweeperLandsThem() throws {
        let stack = try LiveStack(clusterMasters: 3) { $0.moveStaleMillis = 1_500 }
        defer { stack.shutdown() }
        try stack.makeCampaign("half", limit: 1, slots: 1, capacity: 20, buckets: 4)
        let move = PlaceTransfer(id: "killed-node", campaign: "half", buckets: CampaignBuckets(4)!, slot: "s0",
                                 source: .pool, target: 2)
        #expect(try move.run(from: .debit(.places(20)), on: stack.keyspace, stepsMax: 1) == .credit(places: 20))
        // Operators' stats count them as places left, not taken.
        let stats = try stack.stats("half")
        #expect(stats["remaining"] as? Int == 20 && stats["confirmed"] as? Int == 0, "\(stats)")
        let client = stack.client()
        // The loops still count the 20 places (the snapshot adds moves under way).
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try client.get("/v1/campaigns/half/slots").json["slots"].flatMap { ($0 as? [[String: Any]])?.first?["remaining"] as? Int } == 20)
        let meanwhile = try stack.reserve(client, campaign: "half", citizen: "early", slot: "s0")
        #expect(meanwhile.status == 503, "\(meanwhile.text)")
        var booked = false
        for _ in 0..<100 where !booked {
            Thread.sleep(forTimeInterval: 0.05)
            let answer = try stack.reserve(client, campaign: "half", citizen: "early", slot: "s0")
            #expect(answer.status == 201 || answer.status == 503, "\(answer.text)")
            booked = answer.status == 201
        }
        #expect(booked)
        #expect(try invariantViolations(stack, campaign: "half", limit: 1).isEmpty)
    }

    /// On a cluster one master may lose its data and the others not: a
    /// spread campaign with a bucket lost is not rebuilt from SQLite alone
    /// (the buckets left may hold places and events SQLite has not).
    @Test func recoverRefusesACampaignPartlyLost() throws {
        let stack = try LiveStack(clusterMasters: 3)
        defer { stack.shutdown() }
        let cluster = try #require(stack.cluster)
        try stack.makeCampaign("part", limit: 1, slots: 1, capacity: 20, buckets: 6)
        let lostMaster = cluster.owner(ofSlot: CampaignKeys("part", bucket: 0, of: CampaignBuckets(6)!).slot)
        try cluster.clients[lostMaster].checked(["FLUSHALL"])
        let reports = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment,
                                   logger: Logger(label: "recover-test")).run()
        let report = try #require(reports.first { $0.campaign == "part" })
        #expect(!report.rebuilt && report.notRebuilt?.contains("bucket 0") == true, "\(report)")
    }
}
