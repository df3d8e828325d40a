@testable import AllotDomain
@testable import AllotServer
import Foundation
import Testing

/// The operator dashboard against a live server: sign-in and its session
/// cookie, roles, CSRF, forms running the API's own requests (audit rows
/// included), revocation ending a session, and the figures' arithmetic.
@Suite(.serialized) struct DashboardTests {
    static let formType = ["Content-Type": "application/x-www-form-urlencoded"]

    /// Signs in with `token`: the session cookie (`allot_ops=…`) and the page's CSRF token.
    static func signIn(_ client: HTTPClient, token: String) throws -> (cookie: String, csrf: String) {
        let signedIn = try client.request("POST", "/ops/sign-in", body: "token=\(token)", headers: formType)
        #expect(signedIn.status == 303 && signedIn.header("Location") == "/ops/")
        let setCookie = try #require(signedIn.header("Set-Cookie"))
        let cookie = String(setCookie.prefix { $0 != ";" })
        let home = try client.get("/ops/", headers: ["Cookie": cookie])
        #expect(home.status == 200)
        let csrf = try #require(BookingPagesTests.hidden("csrf", in: home.text))
        return (cookie, csrf)
    }

    @Test func signInKeepsASessionThatRolesRevocationAndCSRFBound() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("dash", slots: 2, capacity: 10)
        let client = stack.client()
        // No session: to the sign-in page.
        for path in ["/ops/", "/ops/campaigns/dash", "/ops/audit"] {
            let answer = try client.get(path)
            #expect(answer.status == 303 && answer.header("Location") == "/ops/sign-in", "\(path)")
        }
        let refused = try client.request("POST", "/ops/sign-in", body: "token=wrong", headers: Self.formType)
        #expect(refused.status == 401 && refused.text.contains("<title>Error: Sign in"))
        let staff = try stack.makeToken(.staff, name: "counter")
        #expect(try client.request("POST", "/ops/sign-in", body: "token=\(staff)", headers: Self.formType).status == 403)

        let signedIn = try client.request("POST", "/ops/sign-in", body: "token=\(LiveStack.adminToken)", headers: Self.formType)
        let setCookie = try #require(signedIn.header("Set-Cookie"))
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/ops"))
        #expect(!setCookie.contains(LiveStack.adminToken))
        let (cookie, csrf) = try Self.signIn(client, token: LiveStack.adminToken)
        let page = try client.get("/ops/campaigns/dash", headers: ["Cookie": cookie])
        #expect(page.status == 200)
        #expect(page.header("Refresh") == "2; url=/ops/campaigns/dash")
        #expect(page.header("Cache-Control") == "no-store, private")
        #expect(page.text.contains(#"<a href="/ops/campaigns/dash/change">"#))
        // The forms are on a page of their own that does not reload under typing.
        let changePage = try client.get("/ops/campaigns/dash/change", headers: ["Cookie": cookie])
        #expect(changePage.status == 200 && changePage.header("Refresh") == nil)
        #expect(changePage.text.contains("<h2>Change a time's capacity</h2>"))
        // A form with no session: 401, nothing changed. A sign-in posted
        // from another site's page: refused.
        #expect(try client.request("POST", "/ops/campaigns/dash/status", body: "status=paused&csrf=x", headers: Self.formType).status == 401)
        let crossSite = try client.request("POST", "/ops/sign-in", body: "token=\(LiveStack.adminToken)",
                                           headers: Self.formType.merging(["Origin": "http://evil.example"]) { $1 })
        #expect(crossSite.status == 403 && crossSite.header("Set-Cookie") == nil)
        // An altered cookie is no session.
        #expect(try client.get("/ops/", headers: ["Cookie": cookie.dropLast(2) + "xx"]).status == 303)

        // A form without the session's CSRF token changes nothing.
        let forged = try client.request("POST", "/ops/campaigns/dash/capacity", body: "slot=s0&capacity=99&csrf=guess",
                                        headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(forged.status == 403)
        #expect(try stack.client().get("/v1/campaigns/dash/slots").text.contains(#""capacity":10"#))
        // With it: the API's change, its audit row by this operator, back to the page.
        let changed = try client.request("POST", "/ops/campaigns/dash/capacity", body: "slot=s0&capacity=25&csrf=\(csrf)",
                                         headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(changed.status == 303 && changed.header("Location") == "/ops/campaigns/dash?done=capacity")
        #expect(try stack.client().get("/v1/campaigns/dash/slots").text.contains(#""id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":25"#))
        let audit = try stack.admin("GET", "/v1/admin/audit?limit=500")
        #expect(audit.text.contains(#""actor":"token:bootstrap","action":"slot.capacity""#), "\(audit.text.suffix(400))")
        // A value the API refuses: its detail, the form's field linked, nothing changed.
        let tooMany = try client.request("POST", "/ops/campaigns/dash/capacity", body: "slot=s0&capacity=-4&csrf=\(csrf)",
                                         headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(tooMany.status == 400 && tooMany.text.contains(##"<a href="#capacity">"##))
        // Refused by the API itself (its problem's detail on the page).
        let noSlot = try client.request("POST", "/ops/campaigns/dash/capacity", body: "slot=nosuch&capacity=5&csrf=\(csrf)",
                                        headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(noSlot.status == 404 && noSlot.text.contains("No such slot"), "\(noSlot.status) \(noSlot.text.suffix(300))")
        let limits = try client.request("POST", "/ops/campaigns/dash/rate-limits",
                                        body: "ip_rate=2&ip_burst=5&citizen_rate=&citizen_burst=&global_rate=x&global_burst=1&csrf=\(csrf)",
                                        headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(limits.status == 400)
        let limited = try client.request("POST", "/ops/campaigns/dash/rate-limits", body: "ip_rate=2&ip_burst=5&csrf=\(csrf)",
                                         headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(limited.status == 303)
        #expect(try waitUntil {
            try client.get("/ops/campaigns/dash/change", headers: ["Cookie": cookie]).text.contains(#"name="ip_rate" value="2""#)
        })

        // An auditor sees, but may not change.
        let auditorToken = try stack.makeToken(.auditor, name: "watcher")
        let auditor = try Self.signIn(client, token: auditorToken)
        let seen = try client.get("/ops/campaigns/dash", headers: ["Cookie": auditor.cookie])
        #expect(seen.status == 200 && !seen.text.contains("/ops/campaigns/dash/change"))
        #expect(try client.get("/ops/campaigns/dash/change", headers: ["Cookie": auditor.cookie]).status == 403)
        let notAllowed = try client.request("POST", "/ops/campaigns/dash/status", body: "status=paused&csrf=\(auditor.csrf)",
                                            headers: Self.formType.merging(["Cookie": auditor.cookie]) { $1 })
        #expect(notAllowed.status == 403)
        #expect(try stack.client().get("/v1/campaigns/dash").json["status"] as? String == "open")
        // Revoked: its session ends within a refresh.
        try OperatorDatabase(path: stack.databasePath).revokeToken(name: "watcher", actor: "cli:test")
        #expect(try waitUntil(seconds: 2) { try client.get("/ops/", headers: ["Cookie": auditor.cookie]).status == 303 })

        // Signing out clears the cookie.
        let out = try client.request("POST", "/ops/sign-out", body: "csrf=\(csrf)", headers: Self.formType.merging(["Cookie": cookie]) { $1 })
        #expect(out.status == 303 && out.header("Set-Cookie")?.contains("Max-Age=0") == true)
    }

    /// A line for places taken and one for each refusal the stats count, in their order.
    @Test func theChartHasALinePerRefusalReason() {
        #expect(DashboardPages.lineStyles.count == CampaignStats.rejectionReasons.count + 1)
        #expect(DashboardPages.lineStyles.last?.name == "Invalid" && CampaignStats.rejectionReasons.last == "invalid")
    }

    @Test func figuresFromSamples() {
        func sample(_ at: Int64, taken: Int, full: Int, latency: [Int]) -> DashboardSample {
            DashboardSample(atMillis: at, taken: taken, rejected: [full, 0, 0, 0, 0, 0], persistLagMillis: 0, latencyBuckets: latency)
        }
        let buckets = LoopHistogram.boundsMicros.count
        let none = [Int](repeating: 0, count: buckets)
        var later = none
        later[0] = 98  // ≤ 250 µs
        later[3] = 2   // ≤ 2 ms
        let figures = DashboardFigures(samples: [sample(0, taken: 0, full: 0, latency: none),
                                                 sample(1_000, taken: 10, full: 4, latency: none),
                                                 sample(2_000, taken: 30, full: 4, latency: later)])
        #expect(figures.rates.map(\.taken) == [10, 20])
        #expect(figures.rates.map { $0.rejected[0] } == [4, 0])
        let recent = try? #require(figures.recentRates(windowMillis: 2_000))
        #expect(recent?.taken == 15)
        #expect(figures.latencyPercentileMicros(0.98) == 250)
        #expect(figures.latencyPercentileMicros(0.99) == 2_000)
        #expect(DashboardFigures(samples: []).latencyPercentileMicros(0.99) == nil)
        #expect(SeriesChart.roundUp(0.3) == 0.5 && SeriesChart.roundUp(7) == 10 && SeriesChart.roundUp(120) == 200)
        let svg = SeriesChart.svg([SeriesChart.Line(name: "A <b>", color: "#000", dash: nil, points: [(0, 1), (1_000, 2)])],
                                  spanMillis: 60_000, nowMillis: 1_000, title: "T & t", description: "d")
        #expect(svg.contains("<title id=\"chart-title\">T &amp; t</title>") && svg.contains("A &lt;b&gt;"))
        #expect(!svg.contains("<script"))
    }
}
