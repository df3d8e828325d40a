@testable import AllotDomain
import Testing

@Suite struct RouterTests {
    let rid = "01M818MGYNHM5WM7SR94B7ADZR"

    func route(_ method: HTTPMethod, _ path: String) -> Result<Route, Problem> {
        Router.route(method: method, path: Substring(path))
    }

    @Test func citizenRoutes() throws {
        let id = try #require(ReservationID(parsing: Substring(rid)))
        #expect(try route(.get, "/v1/campaigns").get() == .listCampaigns)
        #expect(try route(.get, "/v1/campaigns/masks-w12").get() == .getCampaign(campaign: "masks-w12"))
        #expect(try route(.get, "/v1/campaigns/c1/sites").get() == .listSites(campaign: "c1"))
        #expect(try route(.get, "/v1/campaigns/c1/slots").get() == .listSlots(campaign: "c1"))
        #expect(try route(.post, "/v1/campaigns/c1/reservations").get() == .reserve(campaign: "c1"))
        #expect(try route(.get, "/v1/reservations/\(rid)").get() == .getReservation(id))
        #expect(try route(.delete, "/v1/reservations/\(rid)").get() == .cancelReservation(id))
        #expect(try route(.post, "/v1/reservations/\(rid)/redeem").get() == .redeemReservation(id))
    }

    @Test func adminRoutesNeedTokens() throws {
        let cases: [(HTTPMethod, String, Route)] = [
            (.post, "/v1/admin/campaigns", .createCampaign),
            (.patch, "/v1/admin/campaigns/c1", .patchCampaign(campaign: "c1")),
            (.put, "/v1/admin/campaigns/c1/sites", .putSites(campaign: "c1")),
            (.put, "/v1/admin/campaigns/c1/slots", .putSlots(campaign: "c1")),
            (.patch, "/v1/admin/campaigns/c1/slots/s-0900", .patchSlot(campaign: "c1", slot: "s-0900")),
            (.put, "/v1/admin/campaigns/c1/rate-limits", .putRateLimits(campaign: "c1")),
            (.get, "/v1/admin/campaigns/c1/stats", .campaignStats(campaign: "c1")),
            (.get, "/v1/admin/campaigns/c1/reservations.csv", .exportReservations(campaign: "c1")),
        ]
        for (method, path, expected) in cases {
            let matched = try route(method, path).get()
            #expect(matched == expected)
            #expect(matched.needsToken, "\(path)")
        }
        #expect(try !route(.post, "/v1/campaigns/c1/reservations").get().needsToken)
    }

    @Test func unknownPathsAndBadIdsAre404() {
        for path in ["/", "", "/v1", "/v1/campaigns/", "/v1/campaigns/UPPER", "/v1/campaigns/-x", "/v1/campaigns/c1/nope",
                     "/v1/reservations/short", "/v1/reservations/\(rid)/nope", "/v1/admin/campaigns/c1/slots/BAD",
                     "/v1/campaigns/" + String(repeating: "a", count: 65), String(repeating: "/a", count: 10_000)] {
            #expect(route(.get, path).failureCode == "not_found", "\(path.prefix(40))")
        }
    }

    @Test func wrongMethodIs405WithAllow() throws {
        guard case .failure(let problem) = route(.post, "/v1/campaigns/c1/slots") else {
            Issue.record("expected a problem")
            return
        }
        #expect(problem.status == 405)
        #expect(problem.headers.contains { $0 == ("Allow", "GET") })
        #expect(route(.put, "/v1/reservations/\(rid)").failureCode == "method_not_allowed")
    }
}

extension Result where Failure == Problem {
    var failureCode: String? {
        if case .failure(let problem) = self { return problem.code }
        return nil
    }
}
