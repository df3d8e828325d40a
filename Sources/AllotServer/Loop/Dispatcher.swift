import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// Every request enters here, on its loop: route, authorise, then hand it
/// to the handler that owns what it touches. One per loop.
final class Dispatcher {
    let loop: EventLoop
    let shared: SharedServices
    let redis: any RedisRouting
    let reads: CitizenReads
    let desk: ReservationDesk
    let lookup: ReservationLookup
    let operators: OperatorRoutes
    let pages: CitizenPages
    let booking: BookingPages
    let dashboard: DashboardPages
    let registrations: RegistrationDesk
    let waitlists: WaitlistDesk
    /// Set on shutdown: new requests are refused so in-flight ones can end.
    var draining = false

    init(loop: EventLoop, shared: SharedServices, redis: any RedisRouting, reads: CitizenReads, desk: ReservationDesk,
         lookup: ReservationLookup, operators: OperatorRoutes) {
        waitlists = WaitlistDesk(loop: loop, redis: redis, reads: reads, shared: shared)
        pages = CitizenPages(reads: reads, lookup: lookup, waitlists: waitlists)
        booking = BookingPages(reads: reads, desk: desk, waitlists: waitlists, shared: shared)
        dashboard = DashboardPages(reads: reads, operators: operators, shared: shared)
        registrations = RegistrationDesk(loop: loop, redis: redis, reads: reads, shared: shared)
        self.loop = loop
        self.shared = shared
        self.redis = redis
        self.reads = reads
        self.desk = desk
        self.lookup = lookup
        self.operators = operators
    }

    func handle(_ exchange: HTTPExchange) {
        if let answer = earlyAnswer(exchange) { return exchange.send(answer) }
        var uri = exchange.uri
        // Over contiguous bytes: a target is ASCII, a Character search walks
        // grapheme boundaries, and a generic one over the UTF-8 view steps
        // index by index.
        let mark = uri.withUTF8 { $0.firstIndex(of: UInt8(ascii: "?")) }.map { uri.utf8.index(uri.utf8.startIndex, offsetBy: $0) }
        let path = mark.map { uri[..<$0] } ?? Substring(uri)
        let query = mark.map { uri[uri.utf8.index(after: $0)...] }
        let method = HTTPMethod(rawValue: exchange.method) ?? .other
        switch Router.route(method: method, path: path) {
        case .failure(let problem) where problem.status == 404 && CitizenPages.isPagePath(path):
            pages.notFound(exchange)
        case .failure(let problem):
            exchange.send(.problem(problem))
        case .success(let route):
            exchange.label = route.name
            guard let needed = route.neededRole else { return dispatchPublic(route, query: query, exchange: exchange) }
            authorise(exchange, needed) { [self] grant, exchange in
                dispatchAuthorised(route, query: query, grant: grant, exchange: exchange)
            }
        }
    }

    /// The answer of a request that is not routed: one the HTTP layer could
    /// not read, one on a connection over a cap, one while shutting down,
    /// CONNECT. A method the parser did not know, on a readable target, is
    /// routed like any other (405 with the path's methods, or 404).
    private func earlyAnswer(_ exchange: HTTPExchange) -> Answer? {
        if let failure = exchange.failure, failure != .unknownMethod || !exchange.hasTarget {
            return .problem(problem(for: failure))
        }
        if let refusal = exchange.refusal {
            let detail = refusal == .serverFull
                ? "the server has as many connections open as it takes; try again shortly"
                : "too many connections are open from your address; close some or try again shortly"
            return Self.closing(.unavailable(detail, retryAfterSeconds: 1))
        }
        if draining { return Self.closing(.unavailable("the server is shutting down", retryAfterSeconds: 1)) }
        if exchange.method == "CONNECT" { return .problem(.notImplemented("this server is not a proxy")) }
        return nil
    }

    private static func closing(_ problem: Problem) -> Answer {
        var answer = Answer.problem(problem)
        answer.headers.append(("Connection", "close"))
        return answer
    }

    /// Runs `proceed` with the grant of the request's bearer token if its
    /// role may do `needed`; otherwise answers 401, 403, or 429 for an
    /// address that keeps failing (SharedServices.checkToken).
    private func authorise(_ exchange: HTTPExchange, _ needed: Role, proceed: @escaping (Grant, HTTPExchange) -> Void) {
        // No token is no guess: 401, neither counted nor slowed.
        guard let presented = exchange.header("Authorization").flatMap({ $0.hasPrefix("Bearer ") ? $0.dropFirst(7) : nil })
        else { return exchange.send(.problem(.unauthorized)) }
        let failures = shared.authFailures
        shared.checkToken(presented, address: shared.clientAddress(exchange), failures: failures, exchange: exchange,
                          loop: loop) { verdict, exchange in
            switch verdict {
            case .granted(let grant) where grant.role.may(needed): proceed(grant, exchange)
            case .granted(let grant):
                exchange.send(.problem(.forbidden("the \(grant.role.rawValue) role may not do this (it needs \(needed.rawValue))")))
            case .unknown: exchange.send(.problem(.unauthorized))
            case .slowed(let wait):
                exchange.send(.problem(.rateLimited(RateLimitRejection(bucket: .ip, retryAfterSeconds: wait, policy: failures.policy))))
            case .busy: exchange.send(.problem(.busy))
            }
        }
    }

    /// The answer to a request the HTTP layer could not read.
    func problem(for failure: HTTPParseFailure) -> Problem {
        switch failure {
        case .malformed(let reason): return .badRequest("the request is not well-formed HTTP/1.1: \(reason)")
        case .unknownMethod: return .notImplemented("this method is not one the server knows")
        case .headersTooLarge: return .headersTooLarge(shared.httpLimits.headersBytesMax)
        case .bodyTooLarge: return .bodyTooLarge(shared.httpLimits.bodyBytesMax)
        case .versionNotSupported: return .versionNotSupported
        }
    }

    /// Routes anyone may call.
    private func dispatchPublic(_ route: Route, query: Substring?, exchange: HTTPExchange) {
        switch route {
        case .healthz: exchange.send(.json(200, Array("{\"status\":\"ok\"}".utf8)))
        case .readyz: exchange.send(readiness())
        case .metrics: exchange.send(metricsAnswer())
        case .openAPIDocument: exchange.send(OpenAPIDocument.answer)
        case .listCampaigns: exchange.send(reads.listCampaigns())
        case .getCampaign(let id): reads.getCampaign(id, exchange: exchange)
        case .listSites(let id): reads.listSites(id, exchange: exchange)
        case .listSlots(let id): reads.listSlots(id, query: query, exchange: exchange)
        case .openAvailability(let id, let format): reads.openAvailability(id, format: format, exchange: exchange)
        case .homePage: pages.home(exchange)
        case .campaignPage(let id): pages.campaign(id, exchange: exchange)
        case .sitePage(let id, let site): pages.site(id, site: site, exchange: exchange)
        case .bookingForm(let id): booking.form(id, query: query, exchange: exchange)
        case .bookingCheck(let id): booking.check(id, exchange: exchange)
        case .bookingSlot(let id): booking.changeSlot(id, exchange: exchange)
        case .bookingConfirm(let id): booking.confirm(id, exchange: exchange)
        case .bookingWaitlist(let id): booking.joinWaitlist(id, exchange: exchange)
        case .waitlistPage(let id): pages.waitlistEntry(id, exchange: exchange)
        case .leaveWaitlistFromPage(let id): pages.leaveWaitlist(id, exchange: exchange)
        case .stylesheet: pages.stylesheet(exchange)
        case .opsHome: dashboard.home(exchange)
        case .opsSignInPage: dashboard.signInPage(exchange)
        case .opsSignIn: dashboard.signIn(exchange)
        case .opsSignOut: dashboard.signOut(exchange)
        case .opsAudit: dashboard.audit(query: query, exchange: exchange)
        case .opsCampaign(let id): dashboard.campaign(id, query: query, exchange: exchange)
        case .opsChange(let id): dashboard.changePage(id, exchange: exchange)
        case .opsStatus(let id): dashboard.setStatus(id, exchange: exchange)
        case .opsCapacity(let id): dashboard.setCapacity(id, exchange: exchange)
        case .opsRateLimits(let id): dashboard.setRateLimits(id, exchange: exchange)
        case .languageSwitch(let code): pages.switchLanguage(to: code, query: query, exchange: exchange)
        case .reservationPage(let id): pages.reservation(id, exchange: exchange)
        case .cancelPage(let id): pages.confirmCancel(id, exchange: exchange)
        case .cancelFromPage(let id): pages.cancel(id, exchange: exchange)
        case .confirmFromPage(let id): pages.confirm(id, exchange: exchange)
        case .reserve(let id): desk.reserve(campaignID: id, exchange: exchange)
        case .register(let id): registrations.register(campaignID: id, exchange: exchange)
        case .getRegistration(let id): registrations.receipt(id, exchange: exchange)
        case .joinWaitlist(let id): waitlists.join(campaignID: id, exchange: exchange)
        case .getWaitlistEntry(let id): waitlists.entry(id, exchange: exchange)
        case .leaveWaitlist(let id): waitlists.leave(id, exchange: exchange)
        case .getDraw, .getDrawReceipt: operators.dispatchAdmin(route, query: query, actor: "anyone", exchange: exchange)
        case .drawFile(let id, let file): operators.drawFile(id, file, exchange: exchange)
        case .getReservation(let id): lookup.getReservation(id, exchange: exchange)
        case .cancelReservation(let id): lookup.transition(id, to: .cancelled, actor: "citizen", exchange: exchange)
        case .confirmReservation(let id): lookup.transition(id, to: .confirmed, actor: "citizen", exchange: exchange)
        default:
            // Route.neededRole and this switch disagree: a bug, answered, never a trap.
            shared.logger.error("route needs a role but reached the public dispatch", metadata: ["route": "\(route.name)"])
            exchange.send(.problem(.unauthorized))
        }
    }

    /// Routes that need a bearer token, with the grant that passed.
    private func dispatchAuthorised(_ route: Route, query: Substring?, grant: Grant, exchange: HTTPExchange) {
        switch route {
        case .redeemReservation(let id): lookup.transition(id, to: .redeemed, actor: grant.actor, exchange: exchange)
        case .exportReservations(let id): operators.export(id, exchange: exchange)
        default: operators.dispatchAdmin(route, query: query, actor: grant.actor, exchange: exchange)
        }
    }

    private func readiness() -> Answer {
        // A node standing by for the writer lease does not write SQLite.
        let sqliteOK = shared.health.sqliteWritable.load(ordering: .relaxed)
            || !shared.health.holdsWriterLease.load(ordering: .relaxed)
        guard redis.isConnected, sqliteOK else {
            return .problem(.unavailable(redis.isConnected ? "SQLite is not writable" : "Redis is unreachable"))
        }
        return .json(200, Array("{\"status\":\"ready\"}".utf8))
    }

    private func metricsAnswer() -> Answer {
        Answer(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", headers: [],
               body: shared.metrics.render())
    }
}
