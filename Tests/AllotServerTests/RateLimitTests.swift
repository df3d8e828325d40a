import Foundation
import Testing

@Suite(.serialized) struct RateLimitTests {
    func expectLimited(_ response: HTTPClient.Response, bucket: String, burst: Int) {
        #expect(response.status == 429)
        #expect(response.code == "rate_limited")
        #expect((response.json["detail"] as? String)?.contains(bucket) == true)
        #expect(Int(response.header("Retry-After") ?? "0") ?? 0 >= 1)
        #expect(response.header("RateLimit-Policy")?.hasPrefix("\"\(bucket)\";q=\(burst);w=") == true)
        #expect(response.header("RateLimit")?.hasPrefix("\"\(bucket)\";r=0;t=") == true)
    }

    func configure(_ stack: LiveStack, _ campaign: String, _ limits: String) throws {
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/\(campaign)/rate-limits", limits).status == 200)
    }

    @Test func eachBucketAnswers429WithItsHeaders() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let client = stack.client()

        try stack.makeCampaign("ip", limit: 10, capacity: 100)
        try configure(stack, "ip", #"{"ip":{"rate":0.001,"burst":3}}"#)
        for index in 0..<3 { #expect(try stack.reserve(client, campaign: "ip", citizen: "i\(index)", slot: "s0").status == 201) }
        expectLimited(try stack.reserve(client, campaign: "ip", citizen: "i9", slot: "s0"), bucket: "ip", burst: 3)

        try stack.makeCampaign("cit", limit: 10, capacity: 100)
        try configure(stack, "cit", #"{"citizen":{"rate":0.001,"burst":2}}"#)
        for _ in 0..<2 { #expect(try stack.reserve(client, campaign: "cit", citizen: "same", slot: "s0").status == 201) }
        expectLimited(try stack.reserve(client, campaign: "cit", citizen: "same", slot: "s0"), bucket: "citizen", burst: 2)
        #expect(try stack.reserve(client, campaign: "cit", citizen: "other", slot: "s0").status == 201)

        try stack.makeCampaign("glob", limit: 10, capacity: 100)
        try configure(stack, "glob", #"{"global":{"rate":0.001,"burst":2}}"#)
        for index in 0..<2 { #expect(try stack.reserve(client, campaign: "glob", citizen: "g\(index)", slot: "s0").status == 201) }
        expectLimited(try stack.reserve(client, campaign: "glob", citizen: "g9", slot: "s0"), bucket: "global", burst: 2)

        // Counted by the loop that refused, in the stats from its next flush.
        #expect(try waitUntil { (try stack.stats("glob")["rejected"] as? [String: Int])?["rate_limited"] == 1 })

        // Removing the limits lifts them.
        try configure(stack, "glob", "{}")
        #expect(try stack.reserve(client, campaign: "glob", citizen: "g10", slot: "s0").status == 201)
    }

    @Test func allThreeBucketsCanBeSetAtOnce() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("all3", limit: 10, capacity: 100)
        let limits = #"{"global":{"rate":100,"burst":100},"ip":{"rate":0.001,"burst":2},"citizen":{"rate":100,"burst":100}}"#
        let put = try stack.admin("PUT", "/v1/admin/campaigns/all3/rate-limits", limits)
        #expect(put.status == 200, "\(put.text)")
        let client = stack.client()
        for index in 0..<2 { #expect(try stack.reserve(client, campaign: "all3", citizen: "a\(index)", slot: "s0").status == 201) }
        expectLimited(try stack.reserve(client, campaign: "all3", citizen: "a9", slot: "s0"), bucket: "ip", burst: 2)
    }

    @Test func bucketsRefillAtTheirRate() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let client = stack.client()
        try stack.makeCampaign("refill", limit: 100, capacity: 100)
        try configure(stack, "refill", #"{"global":{"rate":10,"burst":1}}"#)
        #expect(try stack.reserve(client, campaign: "refill", citizen: "a", slot: "s0").status == 201)
        #expect(try stack.reserve(client, campaign: "refill", citizen: "b", slot: "s0").status == 429)
        Thread.sleep(forTimeInterval: 0.3)  // 10/s: a token is back after 0.1 s
        #expect(try stack.reserve(client, campaign: "refill", citizen: "c", slot: "s0").status == 201)
    }
}
