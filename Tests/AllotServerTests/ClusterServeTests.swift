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
