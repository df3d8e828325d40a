import AllotDomain
import Foundation
import Testing

/// Issue 14, lottery campaigns: registration over the window, once per
/// citizen (exact under concurrency, on one bucket or several), kept in
/// SQLite by the persister; reservations refused.
@Suite(.serialized) struct LotteryRegistrationTests {
    static func makeLottery(_ stack: LiveStack, _ id: String, opensAt: String = "2020-01-01T00:00:00Z",
                            closesAt: String = "2099-01-01T00:00:00Z", settings: String = "") throws {
        let created = try stack.admin("POST", "/v1/admin/campaigns", """
            {"id":"\(id)","name":"Draw \(id)","status":"open","id_scheme":"any","per_citizen_limit":1,
             "opens_at":"\(opensAt)","closes_at":"\(closesAt)",
             "allocation":"lottery","lottery":{"public_value_source":"drand quicknet, first round after close"}\(settings)}
            """)
        #expect(created.status == 201, "\(created.text)")
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/\(id)/sites",
                                #"{"sites":[{"id":"hall","name":"Hall","address":"1 Road"},{"id":"kiosk","name":"Kiosk","address":"2 Road"}]}"#).status == 200)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/\(id)/slots", """
            {"slots":[{"id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":5},
                      {"id":"s1","site_id":"kiosk","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":5}]}
            """).status == 200)
    }

    static func register(_ client: HTTPClient, _ campaign: String, _ citizen: String,
                         _ preferences: String = #"["s0","site:kiosk"]"#) throws -> HTTPClient.Response {
        try client.request("POST", "/v1/campaigns/\(campaign)/registrations",
                           body: #"{"citizen_id":"\#(citizen)","preferences":\#(preferences)}"#)
    }

    @Test func aCitizenRegistersOnceAndReadsItBack() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeLottery(stack, "lot")
        let client = stack.client()
        let shown = try client.get("/v1/campaigns/lot").json
        #expect(shown["allocation"] as? String == "lottery")
        #expect((shown["lottery"] as? [String: Any])?["public_value_source"] as? String == "drand quicknet, first round after close")

        let first = try Self.register(client, "lot", "ann-1")
        #expect(first.status == 201, "\(first.text)")
        let id = try #require(first.json["id"] as? String)
        #expect(first.header("Location") == "/v1/registrations/\(id)")
        #expect(first.json["status"] as? String == "registered" && first.json["preferences"] as? [String] == ["s0", "site:kiosk"])
        let receipt = try client.get("/v1/registrations/\(id)")
        #expect(receipt.status == 200 && receipt.json["campaign_id"] as? String == "lot" && receipt.json["id"] as? String == id)
        #expect(!receipt.text.contains("ann-1"))

        // Once: a second registration is refused, and does not say the first's id.
        let second = try Self.register(client, "lot", "ann-1", #"["s1"]"#)
        #expect(second.status == 409 && second.code == "citizen_limit_reached" && !second.text.contains(id))
        #expect(try client.get("/v1/registrations/\(id)").json["preferences"] as? [String] == ["s0", "site:kiosk"])

        // Bad input is refused and records nothing.
        for preferences in [#"[]"#, #"["s0","s0"]"#, #"["nope"]"#, #"["site:nowhere"]"#, #"["s0","s1","site:hall","site:kiosk","a","b"]"#,
                            #""s0""#, #"[1]"#, #"["Site:hall"]"#] {
            let refused = try Self.register(client, "lot", "bea-\(preferences.count)", preferences)
            #expect(refused.status == 400 && refused.code == "invalid_field", "\(preferences): \(refused.status) \(refused.text)")
        }
        // A lottery's places are not reserved; a first-come campaign takes no registrations.
        let reserve = try stack.reserve(client, campaign: "lot", citizen: "cid-1", slot: "s0")
        #expect(reserve.status == 403 && reserve.code == "campaign_not_open" && reserve.text.contains("registrations"))
        #expect(try waitUntil { (try stack.stats("lot")["rejected"] as? [String: Any])?["campaign_not_open"] as? Int == 1 })
        try stack.makeCampaign("fc")
        let wrongKind = try Self.register(client, "fc", "cid-2", #"["s0"]"#)
        #expect(wrongKind.status == 403 && wrongKind.code == "campaign_not_open" && wrongKind.text.contains("reservations"))
        #expect(try client.get("/v1/registrations/0000000000000000000000000").status == 404)

        // The window closed: registrations are refused.
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/lot", #"{"closes_at":"2020-06-01T00:00:00Z"}"#).status == 200)
        let late = try Self.register(stack.client(), "lot", "cal-1")
        #expect(late.status == 403 && late.code == "campaign_not_open", "\(late.text)")
    }

    /// The campaign's rate limits hold for registrations as for
    /// reservations (token_bucket.lua, shared): an address past its burst
    /// gets 429 with the same headers, and nothing is recorded.
    @Test func rateLimitsHoldForRegistrations() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try Self.makeLottery(stack, "rl")
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/rl/rate-limits", #"{"ip":{"rate":0.001,"burst":2}}"#).status == 200)
        let client = stack.client()
        #expect(try Self.register(client, "rl", "amy-1").status == 201)
        #expect(try Self.register(client, "rl", "amy-1").code == "citizen_limit_reached")
        let limited = try Self.register(client, "rl", "bob-1")
        #expect(limited.status == 429 && limited.code == "rate_limited", "\(limited.text)")
        #expect(Int(limited.header("Retry-After") ?? "0") ?? 0 >= 1 && limited.header("RateLimit-Policy")?.hasPrefix("\"ip\";q=2;") == true)
        #expect(try waitUntil {
            try stack.sqlite().statement("SELECT COUNT(*) FROM registrations WHERE campaign_id = 'rl'").rows { $0.int(0) } == [1]
        })
    }

    @Test func concurrentRegistrationsAreOnePerCitizen() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        // A lottery has one bucket (its winners' places are taken there).
        let spread = try stack.admin("POST", "/v1/admin/campaigns", """
            {"id":"four","name":"N","status":"open","id_scheme":"any","per_citizen_limit":1,"opens_at":"2020-01-01T00:00:00Z",
             "closes_at":"2099-01-01T00:00:00Z","buckets":4,"allocation":"lottery","lottery":{"public_value_source":"x"}}
            """)
        #expect(spread.status == 400 && spread.text.contains("buckets"))
        do {
            let campaign = "one"
            try Self.makeLottery(stack, campaign)
            let port = stack.port
            let created = Locked<[Int: [String]]>([:])
            // 30 citizens, each registering 6 times at once from 3 threads.
            concurrently(30 * 3) { thread in
                let client = HTTPClient(port: port)
                let citizen = thread / 3
                for _ in 0..<2 {
                    guard let answer = try? Self.register(client, campaign, "person-\(citizen)") else { continue }
                    if answer.status == 201, let id = answer.json["id"] as? String { created.withLock { $0[citizen, default: []].append(id) } }
                    else if answer.code != "citizen_limit_reached" { created.withLock { $0[-1, default: []].append(answer.text) } }
                }
            }
            let ids = created.withLock { $0 }
            #expect(ids[-1] == nil, "\(campaign): \(ids[-1] ?? [])")
            #expect((0..<30).allSatisfy { ids[$0]?.count == 1 }, "\(campaign): \(ids.mapValues(\.count))")
            // Each reads back, wherever its bucket is.
            for (_, mine) in ids { #expect(try stack.client().get("/v1/registrations/\(mine[0])").status == 200) }
            // The persister keeps them in SQLite, one row each.
            #expect(try waitUntil {
                try stack.sqlite().statement("SELECT COUNT(*), COUNT(DISTINCT citizen_key) FROM registrations WHERE campaign_id = ?")
                    .rows([.text(campaign)]) { [$0.int(0), $0.int(1)] }.first == [30, 30]
            })
            let stored = try stack.sqlite().statement("SELECT id, preferences FROM registrations WHERE campaign_id = ? ORDER BY id")
                .rows([.text(campaign)]) { "\($0.text(0)) \($0.text(1))" }
            #expect(stored == ids.values.map { "\($0[0]) s0,site:kiosk" }.sorted())
        }
    }
}
