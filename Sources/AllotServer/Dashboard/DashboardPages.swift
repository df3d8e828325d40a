import AllotDomain
import EventHTTP
import EventLoops
import Foundation
import SQLiteStore
import Synchronization

/// The operator dashboard (README, Operator dashboard): server-rendered
/// pages behind a sign-in (OperatorSessions). A campaign's live page
/// (figures sampled by DashboardSeries, a server-drawn SVG chart) reloads
/// itself; its change page holds the forms operators use in a surge, which
/// run the API's own operator requests (the same checks, the same audit
/// rows), and does not reload under the operator's typing. The audit page
/// shows the latest rows and verifies the chain. Roles as in the API: an
/// auditor sees, an admin also changes; a staff token has nothing here.
/// One per loop.
final class DashboardPages {
    private let reads: CitizenReads
    private let operators: OperatorRoutes
    private let shared: SharedServices
    private let sessions: OperatorSessions
    /// How often a campaign's live page reloads itself (the `Refresh`
    /// header; a link on it stops that, WCAG 2.2.1).
    static let refreshSeconds = 2
    static let chartSpanMillis: Int64 = 5 * 60 * 1000
    static let auditRowsShown = 50

    init(reads: CitizenReads, operators: OperatorRoutes, shared: SharedServices) {
        self.reads = reads
        self.operators = operators
        self.shared = shared
        sessions = OperatorSessions(secret: shared.config.citizenSecret, tokens: shared.tokens, secure: shared.config.secureCookies)
    }

    private var loop: EventLoop { reads.catalog.loop }

    // MARK: signing in and out

    func signInPage(_ exchange: HTTPExchange) {
        if session(of: exchange) != nil { return exchange.send(PageAnswers.seeOther("/ops/")) }
        exchange.send(Self.page(200, Self.render("ops-sign-in", [:], title: "Sign in", session: nil)))
    }

    /// The token, checked as a bearer token is (SharedServices.checkToken),
    /// its failures slowed by a budget of their own.
    func signIn(_ exchange: HTTPExchange) {
        guard !PageAnswers.isCrossSite(exchange) else {
            return exchange.send(signInRefused(403, "This sign-in form came from another site: open the dashboard's own page"))
        }
        guard exchange.bodyCount <= shared.config.citizenBodyBytesMax else {
            return exchange.send(signInRefused(413, "The form was too large"))
        }
        guard let form = FormFields(exchange.body), let token = form["token"]?.trimmingCharacters(in: .whitespaces),
              !token.isEmpty else {
            return exchange.send(signInRefused(422, "Enter your operator token"))
        }
        shared.checkToken(Substring(token), address: shared.clientAddress(exchange), failures: shared.signInFailures,
                          exchange: exchange, loop: loop) { [self] verdict, exchange in
            switch verdict {
            case .granted(let grant) where grant.role.may(.auditor):
                var answer = PageAnswers.seeOther("/ops/")
                answer.headers.append(("Set-Cookie", sessions.cookie(tokenDigest: TokenDirectory.digest(token),
                                                                     nowMillis: WallClock.nowMillis())))
                exchange.send(answer)
            case .granted(let grant):
                exchange.send(signInRefused(403, "A \(grant.role.rawValue) token cannot use the dashboard: it needs an auditor or admin token"))
            case .unknown: exchange.send(signInRefused(401, "The token is not valid: check it, or ask for a new one"))
            case .slowed(let wait):
                var answer = signInRefused(429, "Too many failed sign-ins from your address: wait \(wait) seconds and try again")
                answer.headers.append(("Retry-After", String(wait)))
                exchange.send(answer)
            case .busy: exchange.send(Self.unavailable())
            }
        }
    }

    private func signInRefused(_ status: Int, _ message: String) -> Answer {
        let values: [String: Any] = ["token_error": message, "errors": [["field": "token", "message": message]]]
        return Self.page(status, Self.render("ops-sign-in", values, title: "Sign in", session: nil, isError: true))
    }

    func signOut(_ exchange: HTTPExchange) {
        withSession(exchange, needs: .auditor, form: true) { [self] _, _ in
            var answer = PageAnswers.seeOther("/ops/sign-in")
            answer.headers.append(("Set-Cookie", sessions.clearingCookie))
            return answer
        }
    }

    // MARK: pages

    func home(_ exchange: HTTPExchange) {
        withSession(exchange, needs: .auditor) { [self] session, _ in
            guard let catalog = reads.freshCatalog else { return Self.unavailable() }
            let campaigns: [[String: Any]] = catalog.campaigns.values.sorted { $0.campaign.id < $1.campaign.id }.map { view in
                ["id": view.campaign.id, "name": view.campaign.name, "status": Self.statusText(view.campaign),
                 "left": view.slots.reduce(0) { $0 + max(0, view.remaining[$1.id] ?? 0) },
                 "capacity": view.slots.reduce(0) { $0 + $1.capacity }]
            }
            return Self.page(200, Self.render("ops-home", ["campaigns": campaigns, "has_campaigns": !campaigns.isEmpty, "listing": true],
                                              title: "Campaigns", session: session))
        }
    }

    /// The live page: `refresh=off` stops its reloading; `done` names the
    /// change just saved, for its notice.
    func campaign(_ id: String, query: Substring?, exchange: HTTPExchange) {
        let refresh = QueryString.value(of: "refresh", in: query), doneName = QueryString.value(of: "done", in: query)
        guard refresh == nil || refresh == "off", doneName == nil || Self.doneMessages[doneName!] != nil else {
            return exchange.send(Self.badRequest("This address has a parameter the dashboard does not know."))
        }
        withCampaign(id, exchange) { [self] view, session in
            var answer = Self.page(200, livePage(view, session: session, done: doneName.flatMap { Self.doneMessages[$0] },
                                                 refreshing: refresh == nil))
            // To the page without `done`: a saved change's notice shows once.
            if refresh == nil { answer.headers.append(("Refresh", "\(Self.refreshSeconds); url=/ops/campaigns/\(id)")) }
            return answer
        }
    }

    /// The forms (admins): a page that does not reload.
    func changePage(_ id: String, exchange: HTTPExchange) {
        withSession(exchange, needs: .admin) { [self] session, _ in
            withCampaign(id, exchange, session: session) { [self] view, session in Self.page(200, changePage(view, session: session)) }
            return nil
        }
    }

    private static let doneMessages = ["status": "Saved: the campaign's status is changed on every node.",
                                       "capacity": "Saved: the new capacity is in force on every node.",
                                       "rate-limits": "Saved: the new rate limits are in force on every node."]

    // MARK: the forms: the API's requests, then back to the live page

    func setStatus(_ id: String, exchange: HTTPExchange) {
        change(id, exchange, done: "status", field: "status-button") { form in
            guard let status = form["status"], status == "open" || status == "paused" else {
                throw Problem.invalidField("status", "must be open or paused")
            }
            return (.patchCampaign(campaign: id), Self.json { $0.field("status", status) })
        }
    }

    func setCapacity(_ id: String, exchange: HTTPExchange) {
        change(id, exchange, done: "capacity", field: "capacity") { form in
            guard let slot = form["slot"], OperatorID.isValid(Substring(slot)) else { throw Problem.notFound("no such slot") }
            guard let capacity = form["capacity"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }),
                  (0...Slot.capacityMax).contains(capacity) else {
                throw Problem.invalidField("capacity", "enter a whole number from 0 to \(Slot.capacityMax)")
            }
            return (.patchSlot(campaign: id, slot: slot), Self.json { $0.field("capacity", capacity) })
        }
    }

    /// Every bucket as the form has it (both fields empty: unlimited),
    /// checked as the API checks a `RateLimits` body.
    func setRateLimits(_ id: String, exchange: HTTPExchange) {
        change(id, exchange, done: "rate-limits", field: "global-rate") { form in
            var limits = RateLimits()
            for bucket in BucketName.allCases {
                let rate = form["\(bucket.rawValue)_rate"]?.trimmingCharacters(in: .whitespaces) ?? ""
                let burst = form["\(bucket.rawValue)_burst"]?.trimmingCharacters(in: .whitespaces) ?? ""
                if rate.isEmpty && burst.isEmpty { continue }
                guard let policy = Double(rate).flatMap({ rate in Double(burst).flatMap { BucketPolicy(rate: rate, burst: $0) } }) else {
                    throw Problem.invalidField(bucket.rawValue, BucketPolicy.rangeDescription + ", or both empty for no limit")
                }
                switch bucket {
                case .global: limits.global = policy
                case .ip: limits.ip = policy
                case .citizen: limits.citizen = policy
                }
            }
            var json = JSONWriter(capacity: 160)
            limits.write(to: &json)
            return (.putRateLimits(campaign: id), json.bytes)
        }
    }

    /// A form's change: the CSRF token checked, the form read into the API's
    /// request, which runs as the operator (their audit rows); then to the
    /// live page (post, redirect, get), or the change page with the refusal
    /// linked to `field`.
    private func change(_ id: String, _ exchange: HTTPExchange, done: String, field: String,
                        request: @escaping (FormFields) throws -> (Route, [UInt8])) {
        withSession(exchange, needs: .admin, form: true) { [self] session, form in
            let route: Route, body: [UInt8]
            do { (route, body) = try request(form) } catch let problem as Problem {
                return refusedPage(id, problem, field: field, session: session)
            } catch { return Self.unavailable() }
            guard let pending = PendingExchange(exchange, loop: loop) else { return Self.unavailable() }
            let bound = LoopBound(self, loop: loop)
            operators.perform(route, body: body, actor: session.grant.actor) { answer in
                pending.run { exchange in
                    guard answer.status >= 300 else { return exchange.send(PageAnswers.seeOther("/ops/campaigns/\(id)?done=\(done)")) }
                    exchange.send(bound.wrapped.refusedPage(id, Self.problem(from: answer), field: field, session: session))
                }
            }
            return nil
        }
    }

    /// The change page with a refusal in its error summary.
    private func refusedPage(_ id: String, _ problem: Problem, field: String, session: OperatorSession) -> Answer {
        guard let view = try? reads.knownVisibleCampaign(id)?.get() else {
            return Self.messagePage(problem.status, title: "Not done", Self.sentence(problem.detail), session: session)
        }
        var answer = Self.page(problem.status >= 500 ? 503 : problem.status,
                               changePage(view, session: session, error: (field, Self.sentence(problem.detail))))
        answer.headers += problem.headers.filter { $0.0 == "Retry-After" }
        return answer
    }

    // MARK: the audit trail

    /// The last verification's verdict, and whether one is running: one at a
    /// time, on a thread of its own (it reads every row and event).
    private enum Verdict { case holds, broken, notRead }
    private static let verification = Mutex<(running: Bool, last: (atMillis: Int64, verdict: Verdict, summary: String)?)>((false, nil))

    func audit(query: Substring?, exchange: HTTPExchange) {
        let verifyValue = QueryString.value(of: "verify", in: query)
        guard verifyValue == nil || verifyValue == "1" else {
            return exchange.send(Self.badRequest("This address has a parameter the dashboard does not know."))
        }
        withSession(exchange, needs: .auditor) { [self] session, _ in
            guard shared.config.role == .full else { return Self.unavailable() }
            guard let pending = PendingExchange(exchange, loop: loop) else { return Self.unavailable() }
            let startsVerification = verifyValue == "1" && Self.verification.withLock { state in
                defer { state.running = true }
                return !state.running
            }
            let shown = Self.auditRowsShown, databasePath = shared.config.databasePath
            guard startsVerification else {
                let accepted = shared.admin.submit({ store in
                    guard let rows = try? AuditLog(database: store.database).latest(limit: shown) else { return Self.unavailable() }
                    return Self.page(200, Self.auditPage(rows, session: session))
                }, reply: { pending.answer($0) })
                if !accepted { pending.answer(Self.unavailable()) }
                return nil
            }
            // A thread and a connection of its own (it reads every row and
            // event): the admin worker goes on with operators' requests.
            Thread.detachNewThread {
                // A plain connection (no schema work, which would write), read only.
                let log = (try? SQLiteDatabase(path: databasePath)).map { AuditLog(database: $0) }
                let verdict = (try? log?.verify()).map(OperatorDatabase.AuditVerdict.init)
                Self.verification.withLock { state in
                    state.running = false
                    state.last = verdict.map { (WallClock.nowMillis(), $0.holds ? .holds : .broken, Self.sentence($0.summary)) }
                        ?? (WallClock.nowMillis(), .notRead, "The verification could not read the database; try again.")
                }
                let rows = (try? log?.latest(limit: shown)) ?? []
                pending.answer(Self.page(200, Self.auditPage(rows, session: session)))
            }
            return nil
        }
    }

    private static func auditPage(_ rows: [AuditLog.StoredEntry], session: OperatorSession) -> [UInt8] {
        var values: [String: Any] = [
            "count": rows.count,
            "rows": rows.map { row -> [String: Any] in
                ["id": row.entry.id, "at": Timestamp.format(millis: row.entry.atMillis, alwaysFraction: false),
                 "actor": row.entry.actor, "action": row.entry.action, "subject": row.entry.subject]
            },
        ]
        let state = verification.withLock { $0 }
        values["running"] = state.running
        if let last = state.last {
            values["verified"] = true
            values["holds"] = last.verdict == .holds
            values["not_read"] = last.verdict == .notRead
            values["summary"] = last.summary
            values["verified_at"] = Timestamp.format(millis: last.atMillis, alwaysFraction: false)
        }
        return render("ops-audit", values, title: "Audit trail", session: session)
    }

    // MARK: the campaign's pages

    private func livePage(_ view: CampaignView, session: OperatorSession, done: String?, refreshing: Bool) -> [UInt8] {
        let now = WallClock.nowMillis()
        let series = shared.dashboardSeries
        series.watch(view.campaign.id, nowMillis: now)
        let figures = DashboardFigures(samples: series.samples(view.campaign.id))
        let recent = figures.recentRates()
        let lines = Self.chartLines(figures)
        let legend: [[String: Any]] = lines.enumerated().map { index, line in
            var entry: [String: Any] = ["name": line.name, "color": line.color,
                                        "rate": SeriesChart.format((index == 0 ? recent?.taken : recent?.rejected[index - 1]) ?? 0)]
            if let dash = line.dash { entry["dash"] = dash }
            return entry
        }
        let chart = SeriesChart.svg(lines, spanMillis: Self.chartSpanMillis, nowMillis: now,
                                    title: "Reservations and refusals per second, last 5 minutes",
                                    description: legend.map { "\($0["name"]!): \($0["rate"]!) per second now" }.joined(separator: "; "))
        var values = Self.campaignValues(view, nowMillis: now)
        let p99: String = figures.latencyPercentileMicros(0.99).map { "≤ " + Self.duration(micros: $0) } ?? "–"
        let lag: String = figures.samples.last.map { "\($0.persistLagMillis) ms" } ?? "–"
        let takenRate: String = recent.map { SeriesChart.format($0.taken) } ?? "–"
        let rejectedRate: String = recent.map { SeriesChart.format($0.rejected.reduce(0, +)) } ?? "–"
        values["refreshing"] = refreshing
        values["has_samples"] = figures.samples.count >= 2
        values["taken_rate"] = takenRate
        values["rejected_rate"] = rejectedRate
        // The histogram's bucket bound: the time is at most this.
        values["p99"] = p99
        values["lag"] = lag
        values["connections"] = shared.metrics.openConnectionCount
        values["chart"] = chart
        values["legend"] = legend
        values["may_change"] = session.grant.role.may(.admin)
        if let done { values["done"] = done }
        return Self.render("ops-campaign", values, title: view.campaign.name, session: session)
    }

    private func changePage(_ view: CampaignView, session: OperatorSession, error: (field: String, message: String)? = nil) -> [UInt8] {
        var values = Self.campaignValues(view, nowMillis: WallClock.nowMillis())
        let siteNames = Dictionary(view.sites.map { ($0.id, $0.name) }) { first, _ in first }
        values["slots"] = view.slots.map { slot -> [String: Any] in
            ["id": slot.id, "label": "\(siteNames[slot.siteID] ?? slot.siteID), \(CitizenPages.period(slot.startsAtMillis, slot.endsAtMillis))"
                + " (capacity \(slot.capacity), \(max(0, view.remaining[slot.id] ?? 0)) left)"]
        }
        // The limits in force, in full (a rate of 1/min is 0.0166…, not 0.02):
        // saved again unchanged, they stay as they are.
        values["limits"] = BucketName.allCases.map { bucket -> [String: Any] in
            let policy = view.rateLimits[bucket]
            return ["bucket": bucket.rawValue, "label": Self.bucketLabels[bucket] ?? bucket.rawValue,
                    "rate": policy.map { Self.exact($0.rate) } ?? "", "burst": policy.map { Self.exact($0.burst) } ?? ""]
        }
        if let error { values["errors"] = [["field": error.field, "message": error.message]] }
        return Self.render("ops-change", values, title: "Change " + view.campaign.name, session: session, isError: error != nil)
    }

    /// What both campaign pages show: its state and its places by site.
    private static func campaignValues(_ view: CampaignView, nowMillis now: Int64) -> [String: Any] {
        let sites: [[String: Any]] = view.sites.map { site in
            let slots = view.slots.filter { $0.siteID == site.id }
            let capacity = slots.reduce(0) { $0 + $1.capacity }
            let left = slots.reduce(0) { $0 + max(0, view.remaining[$1.id] ?? 0) }
            return ["name": site.name, "capacity": capacity, "left": left, "taken": max(0, capacity - left)]
        }
        return ["id": view.campaign.id, "name": view.campaign.name, "status": statusText(view.campaign),
                "status_class": view.campaign.acceptsReservations(nowMillis: now) ? "open" : "shut",
                "is_open": view.campaign.status == .open, "sites": sites,
                "opens": CitizenPages.time(view.campaign.opensAtMillis), "closes": CitizenPages.time(view.campaign.closesAtMillis)]
    }

    private static let bucketLabels: [BucketName: String] = [.global: "Everyone together", .ip: "Each address", .citizen: "Each citizen"]

    /// Places taken, then refusals in `CampaignStats.rejectionReasons`'
    /// order: a colour and a dash each.
    static let lineStyles: [(name: String, color: String, dash: String?)] = [
        ("Reservations", "#00703c", nil), ("Slot full", "#d4351c", "8 4"), ("Citizen limit reached", "#1d70b8", "2 3"),
        ("Rate limited", "#6f3c96", "10 3 2 3"), ("Campaign not open", "#8a5300", "4 4"), ("Not eligible", "#b58840", "6 2 1 2"),
        ("Invalid", "#505a5f", "1 3"),
    ]

    static func chartLines(_ figures: DashboardFigures) -> [SeriesChart.Line] {
        let rates = figures.rates
        return lineStyles.enumerated().map { index, style in
            SeriesChart.Line(name: style.name, color: style.color, dash: style.dash,
                             points: rates.map { ($0.atMillis, index == 0 ? $0.taken : $0.rejected[index - 1]) })
        }
    }

    // MARK: helpers

    /// `render` with the request's session if it has one whose role may do
    /// `needed` (and, for a form, whose CSRF token it carries); else to the
    /// sign-in page, or a refusal. `render` nil: it answers later itself.
    private func withSession(_ exchange: HTTPExchange, needs needed: Role, form isForm: Bool = false,
                             _ render: (OperatorSession, FormFields) -> Answer?) {
        guard let session = session(of: exchange) else {
            // A page: to the sign-in. A form: it cannot be kept across a
            // sign-in, so say so (401), with the way back.
            guard isForm else { return exchange.send(PageAnswers.seeOther("/ops/sign-in")) }
            return exchange.send(Self.messagePage(401, title: "Sign in again", "You are not signed in (or your session ended): "
                                                  + "nothing was changed. Sign in and try again.", session: nil, signInLink: true))
        }
        guard session.grant.role.may(needed) else {
            return exchange.send(Self.messagePage(403, title: "Not allowed",
                                                  "Your token's role (\(session.grant.role.rawValue)) may not do this.", session: session))
        }
        var form = FormFields([])!
        if isForm {
            guard exchange.bodyCount <= shared.config.citizenBodyBytesMax else {
                return exchange.send(Self.messagePage(413, title: "Nothing was changed", "The form was too large.", session: session))
            }
            guard let posted = FormFields(exchange.body), OperatorSessions.csrfMatches(posted["csrf"], session) else {
                return exchange.send(Self.messagePage(403, title: "Nothing was changed", "This form has expired or did not come from "
                                                      + "this dashboard: nothing was changed. Open the page again and resubmit.",
                                                      session: session))
            }
            form = posted
        }
        if let answer = render(session, form) { exchange.send(answer) }
    }

    private func withCampaign(_ id: String, _ exchange: HTTPExchange, session known: OperatorSession? = nil,
                              _ render: @escaping (CampaignView, OperatorSession) -> Answer) {
        let proceed = { [self] (session: OperatorSession) in
            reads.answer(campaign: id, exchange) { found in
                switch found {
                case .success(let view): return render(view, session)
                case .failure(let problem) where problem.status == 404:
                    return Self.messagePage(404, title: "Not found", "There is no campaign \(id) that citizens can see.", session: session)
                case .failure: return Self.unavailable()
                }
            }
        }
        if let known { return proceed(known) }
        withSession(exchange, needs: .auditor) { session, _ in
            proceed(session)
            return nil
        }
    }

    private func session(of exchange: HTTPExchange) -> OperatorSession? {
        sessions.session(cookieHeader: exchange.header("Cookie"), nowMillis: WallClock.nowMillis())
    }

    private static func render(_ template: String, _ values: [String: Any], title: String, session: OperatorSession?,
                               isError: Bool = false) -> [UInt8] {
        var context = values
        if let session {
            context["signed_in"] = true
            context["csrf"] = session.csrf
            context["operator"] = session.grant.name
        }
        return PageRenderer.render(template, context, title: title, isError: isError, language: .english, path: "/ops/")
    }

    /// Every dashboard page is its reader's only (`no-store`).
    private static func page(_ status: Int, _ body: [UInt8]) -> Answer {
        PageAnswers.privatePage(status, body, .english)
    }

    /// A page with only `message`, in its error summary.
    private static func messagePage(_ status: Int, title: String, _ message: String, session: OperatorSession?,
                                    signInLink: Bool = false) -> Answer {
        page(status, render("ops-home", ["sign_in_link": signInLink, "errors": [["field": "main", "message": message]]],
                            title: title, session: session, isError: true))
    }

    private static func badRequest(_ message: String) -> Answer {
        messagePage(400, title: "Not understood", message, session: nil)
    }

    private static func unavailable() -> Answer {
        var answer = messagePage(503, title: "Unavailable",
                                 "The service cannot answer this now: nothing was changed. Try again in a few seconds.", session: nil)
        answer.headers.append(("Retry-After", "2"))
        return answer
    }

    /// The problem an operator request's answer carries.
    private static func problem(from answer: Answer) -> Problem {
        let json = try? JSONParser.parse(answer.body)
        func text(_ name: String) -> String? { if case .string(let value)? = json?[name] { value } else { nil } }
        return Problem(status: answer.status, code: text("code") ?? "error", title: text("title") ?? "",
                       detail: text("detail") ?? "the request was refused", headers: answer.headers)
    }

    /// One JSON object, as the API's body.
    private static func json(_ fields: (inout JSONWriter) -> Void) -> [UInt8] {
        var json = JSONWriter(capacity: 64)
        json.beginObject()
        fields(&json)
        json.endObject()
        return json.bytes
    }

    /// A number as Swift reads it back exactly (`2`, `0.016666666666666666`).
    private static func exact(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// "the thing failed" → "The thing failed."
    static func sentence(_ text: String) -> String {
        guard let first = text.first else { return text }
        return first.uppercased() + text.dropFirst() + (text.hasSuffix(".") ? "" : ".")
    }

    static func statusText(_ campaign: Campaign) -> String {
        let now = WallClock.nowMillis()
        switch campaign.effectiveStatus(nowMillis: now) {
        case .open where now < campaign.opensAtMillis: return "Opens later"
        case .open: return "Open"
        case .paused: return "Paused"
        case .closed: return "Closed"
        case .draft: return "Draft"
        }
    }

    private static func duration(micros: Int64) -> String {
        micros < 1_000 ? "\(micros) µs" : micros < 1_000_000 ? "\(SeriesChart.format(Double(micros) / 1_000)) ms"
            : "\(SeriesChart.format(Double(micros) / 1_000_000)) s"
    }
}
