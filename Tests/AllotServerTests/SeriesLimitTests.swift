@testable import AllotServer
import AllotDomain
import Foundation
import Logging
import RedisClient
import Testing

/// Issue 14's rolling limit across a series of campaigns: exact under real
/// concurrency, on one Redis and on a Redis Cluster (one script on one
/// shard: a series' campaigns keep a citizen in the series' bucket, beside
/// the citizen's ledger).
@Suite(.serialized) struct SeriesLimitTests {
    static let series = #"{"id":"masks-wk","limit":2,"window_days":7}"#

    /// `citizens` citizens each send `attempts` reservations at once, spread
    /// over the campaigns and their slots; returns each citizen's answers.
    static func surge(_ stack: LiveStack, campaigns: [String], citizens: Int, attempts: Int)
        -> [Int: [(status: Int, code: String?, reason: String?)]] {
        let port = stack.port
        let answers = Locked<[Int: [(status: Int, code: String?, reason: String?)]]>([:])
        concurrently(citizens * 2) { thread in
            let client = HTTPClient(port: port)
            let citizen = thread / 2
            for attempt in stride(from: thread % 2, to: attempts, by: 2) {
                let campaign = campaigns[(citizen + attempt) % campaigns.count]
                let response = try? client.request("POST", "/v1/campaigns/\(campaign)/reservations",
                                                   body: #"{"citizen_id":"person-\#(citizen)","slot_id":"s\#(attempt % 3)"}"#)
                answers.withLock {
                    $0[citizen, default: []].append((response?.status ?? -1, response?.code, response?.json["reason"] as? String))
                }
            }
        }
        return answers.withLock { $0 }
    }

    @Test func aCitizenGetsAtMostTheSeriesLimitAcrossItsCampaignsUnderConcurrency() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let campaigns = ["wk-a", "wk-b", "wk-c"]
        for campaign in campaigns { try stack.makeCampaign(campaign, limit: 2, slots: 3, capacity: 100, series: Self.series) }
        // The series is shown to citizens: they know the rule.
        let shown = try stack.client().get("/v1/campaigns/wk-b").json["series"] as? [String: Any]
        #expect(shown?["id"] as? String == "masks-wk" && shown?["limit"] as? Int == 2 && shown?["window_days"] as? Int == 7)

        // 12 citizens, 12 attempts each, all at once over three campaigns:
        // each campaign alone would let a citizen have 2, so 6 in all.
        let answers = Self.surge(stack, campaigns: campaigns, citizens: 12, attempts: 12)
        var refusedBySeries = 0
        for citizen in 0..<12 {
            let mine = answers[citizen] ?? []
            #expect(mine.count { $0.status == 201 } == 2, "citizen \(citizen): \(mine.map(\.status))")
            let others = mine.filter { $0.status != 201 }
            #expect(others.allSatisfy { ($0.status == 403 && $0.reason == "series_limit") || $0.code == "citizen_limit_reached" },
                    "citizen \(citizen): \(others)")
            refusedBySeries += others.count { $0.reason == "series_limit" }
        }
        var persisted = 0
        for campaign in campaigns {
            persisted += try stack.stats(campaign)["remaining"].map { 300 - ($0 as? Int ?? 0) } ?? 0
            #expect(try invariantViolations(stack, campaign: campaign, limit: 2).isEmpty)
        }
        #expect(persisted == 24)
        // The refusals are counted as not_eligible in the campaigns' stats.
        #expect(try waitUntil {
            try campaigns.map { (try stack.stats($0)["rejected"] as? [String: Any])?["not_eligible"] as? Int ?? 0 }.reduce(0, +)
                == refusedBySeries
        })
        for campaign in campaigns {
            let stats = try stack.stats(campaign)
            _ = try stack.waitForPersistence(campaign, expected: 300 - (stats["remaining"] as? Int ?? 0))
        }
        #expect(try seriesViolations(stack, campaigns: campaigns, limit: 2).isEmpty)

        // A cancel gives the citizen's share of the series back at once.
        let client = stack.client()
        let booked = try #require(try stack.sqlite().statement(
            "SELECT id FROM reservations WHERE campaign_id IN ('wk-a','wk-b','wk-c') ORDER BY id LIMIT 1").rows { $0.text(0) }.first)
        let owner = try #require(try stack.sqlite().statement("SELECT citizen_key, campaign_id FROM reservations WHERE id = ?")
            .rows([.text(booked)]) { ($0.text(0), $0.text(1)) }.first)
        #expect(try client.request("DELETE", "/v1/reservations/\(booked)").status == 200)
        // Which citizen it was: the one the others' keys are not.
        let keyer = CitizenKeyer(secret: Array("test-citizen-secret-0123456789-abcdef".utf8))
        let citizen = try #require((0..<12).first { keyer.citizenKey(normalizedID: "person-\($0)") == owner.0 })
        let again = try stack.reserve(client, campaign: owner.1, citizen: "person-\(citizen)", slot: "s1")
        #expect(again.status == 201, "\(again.text)")
        let third = try stack.reserve(client, campaign: owner.1 == "wk-a" ? "wk-b" : "wk-a", citizen: "person-\(citizen)", slot: "s2")
        #expect(third.status == 403 && third.json["reason"] as? String == "series_limit")

        // Redis loses everything; `allot recover` brings the ledgers back
        // from SQLite with the reservations: the limit still holds.
        for campaign in campaigns {
            let stats = try stack.stats(campaign)
            _ = try stack.waitForPersistence(campaign, expected: 300 - (stats["remaining"] as? Int ?? 0) + (stats["cancelled"] as? Int ?? 0))
        }
        #expect(try stack.redis.command(["FLUSHALL"]) == .status("OK"))
        let reports = try Recovery(databasePath: stack.databasePath, redis: stack.redisDeployment,
                                   logger: Logger(label: "recover-test")).run()
        #expect(reports.allSatisfy { $0.rebuilt })
        for campaign in campaigns { try stack.waitUntilVisible(campaign, slots: 3) }
        for other in (0..<12) where other != citizen {
            let refused = try stack.reserve(stack.client(), campaign: "wk-c", citizen: "person-\(other)", slot: "s0")
            #expect(refused.json["reason"] as? String == "series_limit" || refused.code == "citizen_limit_reached",
                    "person-\(other): \(refused.text)")
        }
        #expect(try stack.reserve(stack.client(), campaign: "wk-c", citizen: "newcomer", slot: "s0").status == 201)
    }

    @Test func theSeriesIsFixedAndItsCampaignsMustAgree() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("ag-a", series: Self.series)
        func create(_ id: String, _ extra: String) throws -> HTTPClient.Response {
            try stack.admin("POST", "/v1/admin/campaigns", """
                {"id":"\(id)","name":"N","status":"open","id_scheme":"any","per_citizen_limit":1,
                 "opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"\(extra)}
                """)
        }
        let otherLimit = try create("ag-b", #","series":{"id":"masks-wk","limit":3,"window_days":7}"#)
        #expect(otherLimit.status == 400 && otherLimit.text.contains("series"), "\(otherLimit.text)")
        let otherBuckets = try create("ag-c", #","buckets":2,"series":\#(Self.series)"#)
        #expect(otherBuckets.status == 400 && otherBuckets.text.contains("buckets"), "\(otherBuckets.text)")
        // One id, one citizen: another scheme would key some ids otherwise.
        let otherScheme = try stack.admin("POST", "/v1/admin/campaigns", """
            {"id":"ag-f","name":"N","status":"open","id_scheme":"cn-resident","per_citizen_limit":1,
             "opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z","series":\(Self.series)}
            """)
        #expect(otherScheme.status == 400 && otherScheme.text.contains("id_scheme"), "\(otherScheme.text)")
        let badSeries = try create("ag-d", #","series":{"id":"Bad Id","limit":2,"window_days":7}"#)
        #expect(badSeries.status == 400 && badSeries.code == "invalid_field")
        #expect(try create("ag-e", #","series":{"id":"masks-wk","limit":2,"window_days":7}"#).status == 201)
        let patched = try stack.admin("PATCH", "/v1/admin/campaigns/ag-a", #"{"series":{"id":"other","limit":1,"window_days":1}}"#)
        #expect(patched.status == 400 && patched.code == "invalid_field")
        // Nothing of the refused ones exists.
        for id in ["ag-b", "ag-c", "ag-d", "ag-f"] { #expect(try stack.client().get("/v1/campaigns/\(id)").status == 404) }
    }

    /// A redeemed reservation stays counted (only a cancel gives the share
    /// back), and a keyed series refusal replays as it was.
    @Test func aRedeemStaysCountedAndARefusalReplays() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let series = #"{"id":"rd-wk","limit":1,"window_days":7}"#
        try stack.makeCampaign("rd-a", series: series)
        try stack.makeCampaign("rd-b", series: series)
        let client = stack.client()
        let booked = try stack.reserve(client, campaign: "rd-a", citizen: "kim", slot: "s0")
        let id = try #require(booked.json["id"] as? String)
        #expect(try client.request("POST", "/v1/reservations/\(id)/redeem", headers: stack.adminHeaders).status == 200)
        let refused = try stack.reserve(client, campaign: "rd-b", citizen: "kim", slot: "s0", headers: ["Idempotency-Key": "k-1"])
        #expect(refused.status == 403 && refused.json["reason"] as? String == "series_limit", "\(refused.text)")
        let replayed = try stack.reserve(client, campaign: "rd-b", citizen: "kim", slot: "s0", headers: ["Idempotency-Key": "k-1"])
        #expect(replayed.status == 403 && replayed.text == refused.text)
        // A redeemed reservation cannot be cancelled, so the share stays taken.
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").status == 409)
        #expect(try stack.reserve(client, campaign: "rd-b", citizen: "kim", slot: "s1").json["reason"] as? String == "series_limit")
    }

    @Test func onAClusterTheLimitHoldsAcrossCampaignsOnDifferentMasters() throws {
        let stack = try LiveStack(clusterMasters: 3)
        defer { stack.shutdown() }
        let series = #"{"id":"cl-wk","limit":2,"window_days":7}"#
        // Homes on different masters; the citizens' buckets are the series'.
        let cluster = try #require(stack.cluster)
        let campaigns = ClusterServeTests.campaignsOnEveryMaster(cluster)
        for campaign in campaigns { try stack.makeCampaign(campaign, limit: 2, slots: 3, capacity: 50, buckets: 3, series: series) }
        let layouts = campaigns.map { CampaignLayout($0, buckets: CampaignBuckets(3, series: "cl-wk")!) }
        // Every campaign's bucket b is on the same slot, over the three masters.
        for bucket in 0..<3 {
            #expect(Set(layouts.map { $0.bucketKeys[bucket].slot }).count == 1)
        }
        #expect(Set(layouts[0].bucketKeys.map { cluster.owner(ofSlot: $0.slot) }).count == 3)

        let answers = Self.surge(stack, campaigns: campaigns, citizens: 12, attempts: 10)
        for citizen in 0..<12 {
            let mine = answers[citizen] ?? []
            #expect(mine.count { $0.status == 201 } == 2, "citizen \(citizen): \(mine.map(\.status))")
            #expect(mine.allSatisfy { $0.status == 201 || $0.reason == "series_limit" || $0.code == "citizen_limit_reached" },
                    "citizen \(citizen): \(mine.filter { $0.status != 201 })")
        }
        var taken = 0
        for campaign in campaigns {
            taken += 150 - (try stack.stats(campaign)["remaining"] as? Int ?? 0)
            #expect(try invariantViolations(stack, campaign: campaign, limit: 2).isEmpty)
        }
        #expect(taken == 24)
    }
}
