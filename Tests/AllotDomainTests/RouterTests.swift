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

    @Test func citizenPageRoutes() throws {
        #expect(try route(.get, "/").get() == .homePage)
        #expect(try route(.get, "/campaigns/c1").get() == .campaignPage(campaign: "c1"))
        #expect(try route(.get, "/campaigns/c1/sites/hall").get() == .sitePage(campaign: "c1", site: "hall"))
        #expect(try route(.get, "/static/style.css").get() == .stylesheet)
        #expect(try route(.get, "/language/zh-Hans").get() == .languageSwitch(language: "zh-Hans"))
        for route in [Route.homePage, .campaignPage(campaign: "c"), .sitePage(campaign: "c", site: "s"), .stylesheet] {
            #expect(route.neededRole == nil)
        }
    }

    @Test func openDataRoutes() throws {
        #expect(try route(.get, "/open/v1/campaigns/c1/availability.json").get() == .openAvailability(campaign: "c1", format: .json))
        #expect(try route(.get, "/open/v1/campaigns/c1/availability.csv").get() == .openAvailability(campaign: "c1", format: .csv))
        #expect(Route.openAvailability(campaign: "c1", format: .csv).neededRole == nil)
        for path in ["/open/v1/campaigns/c1/availability.xml", "/open/v1/campaigns/c1", "/open/v2/campaigns/c1/availability.json",
                     "/open/v1/campaigns/bad%20id/availability.json", "/open/v1/campaigns//availability.json",
                     "/open/v1/campaigns/c1/x/availability.json", "/open/v1/campaigns/c1/availability.json/",
                     "/open/v1/campaigns/C1/availability.json", "/open/v1/campaigns/availability.json", "/open/v1/campaigns/"] {
            guard case .failure(let problem) = route(.get, path) else { Issue.record("\(path) routed"); continue }
            #expect(problem.status == 404, "\(path)")
        }
        guard case .failure(let problem) = route(.post, "/open/v1/campaigns/c1/availability.json") else {
            Issue.record("POST routed")
            return
        }
        #expect(problem.status == 405)
    }

    @Test func operatorRoutesAskForTheirRole() throws {
        let cases: [(HTTPMethod, String, Route, Role)] = [
            (.post, "/v1/admin/campaigns", .createCampaign, .admin),
            (.patch, "/v1/admin/campaigns/c1", .patchCampaign(campaign: "c1"), .admin),
            (.put, "/v1/admin/campaigns/c1/sites", .putSites(campaign: "c1"), .admin),
            (.put, "/v1/admin/campaigns/c1/slots", .putSlots(campaign: "c1"), .admin),
            (.patch, "/v1/admin/campaigns/c1/slots/s-0900", .patchSlot(campaign: "c1", slot: "s-0900"), .admin),
            (.put, "/v1/admin/campaigns/c1/rate-limits", .putRateLimits(campaign: "c1"), .admin),
            (.get, "/v1/admin/campaigns/c1/stats", .campaignStats(campaign: "c1"), .auditor),
            (.get, "/v1/admin/campaigns/c1/reservations.csv", .exportReservations(campaign: "c1"), .auditor),
            (.get, "/v1/admin/audit", .auditTrail, .auditor),
            (.get, "/v1/admin/audit/reservation-events", .reservationEvents, .auditor),
            (.post, "/v1/reservations/\(rid)/redeem", .redeemReservation(ReservationID(parsing: Substring(rid))!), .staff),
        ]
        for (method, path, expected, role) in cases {
            let matched = try route(method, path).get()
            #expect(matched == expected)
            #expect(matched.neededRole == role, "\(path)")
        }
        #expect(try route(.post, "/v1/campaigns/c1/reservations").get().neededRole == nil)
        #expect(try route(.delete, "/v1/reservations/\(rid)").get().neededRole == nil)
    }

    @Test func adminMayEverythingOthersOnlyTheirOwn() {
        for needed in Role.allCases {
            #expect(Role.admin.may(needed))
            #expect(Role.staff.may(needed) == (needed == .staff))
            #expect(Role.auditor.may(needed) == (needed == .auditor))
        }
    }

    @Test func unknownPathsAndBadIdsAre404() {
        for path in ["", "/v1", "/campaigns/UPPER", "/campaigns/c1/sites", "/campaigns/c1/sites/BAD", "/language/fr",
                     "/static/other.css", "/v1/campaigns/", "/v1/campaigns/UPPER", "/v1/campaigns/-x", "/v1/campaigns/c1/nope",
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
        #expect(problem.headers.contains { $0 == ("Allow", "GET, HEAD") })
        #expect(route(.put, "/v1/reservations/\(rid)").failureCode == "method_not_allowed")
    }
}

extension Result where Failure == Problem {
    var failureCode: String? {
        if case .failure(let problem) = self { return problem.code }
        return nil
    }
}
