import AllotDomain
import EventHTTP

/// The citizen pages (README, Citizen pages): server-rendered HTML with no
/// script, from the loop's snapshot like the JSON reads; a campaign's and a
/// site's page are rendered once per refresh and language. One per loop.
final class CitizenPages {
    private let reads: CitizenReads
    private let lookup: ReservationLookup
    private let waitlists: WaitlistDesk

    init(reads: CitizenReads, lookup: ReservationLookup, waitlists: WaitlistDesk) {
        self.reads = reads
        self.lookup = lookup
        self.waitlists = waitlists
    }

    private var catalog: Catalog { reads.catalog }

    func home(_ exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        guard let catalog = reads.freshCatalog else { return exchange.send(PageAnswers.unavailable(language, path: "/")) }
        let body = cached(catalog, PageKey(page: .home, language: language)) {
            let now = WallClock.nowMillis()
            let listed = catalog.campaigns.values.map(\.campaign).filter { $0.isListed(nowMillis: now) }
                .sorted { ($0.opensAtMillis, $0.id) < ($1.opensAtMillis, $1.id) }
            let campaigns: [[String: Any]] = listed.map { campaign in
                ["id": campaign.id, "name": campaign.name].merging(Self.state(campaign, nowMillis: now)) { $1 }
            }
            return PageRenderer.render("home", ["campaigns": campaigns, "has_campaigns": !campaigns.isEmpty],
                                       title: PageRenderer.message("home_title", language), language: language, path: "/")
        }
        exchange.send(PageAnswers.page(200, body, language))
    }

    func campaign(_ id: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        let path = "/campaigns/\(id)"
        withCampaign(id, language: language, path: path, exchange) { [self] view in
            cached(catalog, PageKey(page: .campaign, campaign: id, language: language)) {
                let now = WallClock.nowMillis()
                let left = view.remainingBySite()
                let sites: [[String: Any]] = view.sites.map { site in
                    ["campaign": id, "id": site.id, "name": site.name, "address": site.address,
                     "remaining": left[site.id] ?? 0, "full": (left[site.id] ?? 0) == 0, "one": left[site.id] == 1]
                }
                let values: [String: Any] = ["id": id, "name": view.campaign.name, "sites": sites, "has_sites": !sites.isEmpty]
                return PageRenderer.render("campaign", values.merging(Self.state(view.campaign, nowMillis: now)) { $1 },
                                           title: view.campaign.name, language: language, path: path)
            }
        }
    }

    func site(_ id: String, site siteID: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        let path = "/campaigns/\(id)/sites/\(siteID)"
        withCampaign(id, language: language, path: path, exchange) { [self] view in
            guard let site = view.sites.first(where: { $0.id == siteID }) else { return nil }
            return cached(catalog, PageKey(page: .site, campaign: id, site: siteID, language: language)) {
                PageRenderer.render("site", Self.siteValues(view, site: site), title: site.name, language: language, path: path)
            }
        }
    }

    /// What the site page shows: its slots, as radio buttons while the
    /// campaign takes bookings; `error` (a message key) when none was chosen.
    static func siteValues(_ view: CampaignView, site: Site, error: String? = nil, language: PageLanguage = .english) -> [String: Any] {
        let slots: [[String: Any]] = view.slots.filter { $0.siteID == site.id }.map { slot in
            let left = view.remaining[slot.id] ?? 0
            return ["id": slot.id, "time": period(slot.startsAtMillis, slot.endsAtMillis), "remaining": left, "full": left == 0,
                    "one": left == 1]
        }
        var values: [String: Any] = ["campaign": view.campaign.id, "site": site.id, "name": site.name, "address": site.address,
                                     "slots": slots, "has_slots": !slots.isEmpty]
        if let error {
            let message = PageRenderer.message(error, language)
            values["slot_error"] = message
            // The summary links to the first choice that can be made.
            let first = view.slots.first { $0.siteID == site.id && (view.remaining[$0.id] ?? 0) > 0 }
            values["errors"] = [["field": "slot-" + (first?.id ?? ""), "message": message]]
        }
        return values.merging(state(view.campaign, nowMillis: WallClock.nowMillis())) { $1 }
    }

    func stylesheet(_ exchange: HTTPExchange) {
        exchange.send(Answer(status: 200, contentType: "text/css; charset=utf-8",
                             headers: [("Cache-Control", "public, max-age=3600"), ("X-Content-Type-Options", "nosniff")],
                             body: [], sharedBody: PageRenderer.stylesheet))
    }

    /// The language switch: remembered in a cookie, then back to the page.
    func switchLanguage(to code: String, query: Substring?, exchange: HTTPExchange) {
        let language = PageLanguage(rawValue: code) ?? .english
        let next = QueryString.value(of: "next", in: query).flatMap(Self.localPath) ?? "/"
        exchange.send(Answer(status: 303, contentType: PageRenderer.htmlType, headers: PageRenderer.securityHeaders + [
            ("Location", next),
            ("Set-Cookie", "\(PageLanguage.cookieName)=\(language.rawValue); Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"),
        ], body: []))
    }

    // MARK: a reservation (its id is the capability: whoever has the page's
    // address may see and cancel it, as with the API)

    func reservation(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/reservations/\(id.text)"
        withReservation(id, language: language, path: path, exchange) { reservation, details in
            var values = details
            values["held"] = reservation.status == .held
            values["confirmed"] = reservation.status == .confirmed
            values["cancelled"] = reservation.status == .cancelled
            values["redeemed"] = reservation.status == .redeemed
            values["expired"] = reservation.status == .expired
            values["ended"] = reservation.status == .cancelled || reservation.status == .expired
            values["code"] = reservation.code
            if let expires = reservation.expiresAtMillis {
                // To the second: a hold may be short.
                let until = Timestamp.format(millis: expires, alwaysFraction: false)
                values["held_body"] = PageRenderer.message("held_body", language)
                    .replacingOccurrences(of: "{until}", with: String(until.prefix(10)) + " " + String(until.dropFirst(11).prefix(8)) + " UTC")
            }
            return PageRenderer.render("reservation", values, title: PageRenderer.message("reservation_title", language),
                                       language: language, path: path)
        }
    }

    /// The confirm step before a cancel (a GET changes nothing).
    func confirmCancel(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/reservations/\(id.text)/cancel"
        withReservation(id, language: language, path: path, exchange) { reservation, details in
            guard reservation.status == .confirmed || reservation.status == .held else { return nil }
            return PageRenderer.render("cancel", details, title: PageRenderer.message("cancel_heading", language),
                                       language: language, path: path)
        }
    }

    /// The cancel itself, then back to the reservation's page (post, redirect, get).
    func cancel(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/reservations/\(id.text)"
        let bound = LoopBound(exchange, loop: reads.catalog.loop)
        lookup.change(id, to: .cancelled, actor: "citizen") { [self] changed in
            switch changed {
            case .success: bound.wrapped.send(PageAnswers.seeOther(path))
            case .failure(let problem) where problem.code == "not_cancellable":
                bound.wrapped.send(PageAnswers.problemPage(409, "not_cancellable", language, path: path))
            case .failure(let problem) where problem.status == 404: bound.wrapped.send(PageAnswers.notFound(language, path: path))
            case .failure: bound.wrapped.send(PageAnswers.unavailable(language, path: path, detail: "unavailable_change_detail"))
            }
        }
    }

    // MARK: a waitlist entry (its id is the capability, as a reservation's)

    func waitlistEntry(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/waitlist/\(id.text)"
        let bound = LoopBound(exchange, loop: reads.catalog.loop)
        waitlists.find(id) { [self] found in
            switch found {
            case .failure(let problem):
                return bound.wrapped.send(problem.status == 404 ? PageAnswers.notFound(language, path: path)
                                                                : PageAnswers.unavailable(language, path: path, detail: "unavailable_view_detail"))
            case .success(let entry):
                let view = reads.catalog.campaigns[entry.campaignID]
                var values: [String: Any] = [
                    "id": entry.id, "campaign": entry.campaignID, "campaign_name": view?.campaign.name ?? entry.campaignID,
                    "campaign_known": view != nil, "waiting": entry.status == .waiting, "offered": entry.status == .offered,
                    "left": entry.status == .left, "passed": entry.status == .passed, "reservation": entry.offerReservationID ?? "",
                    "waiting_heading": PageRenderer.message("waiting_heading", language)
                        .replacingOccurrences(of: "{position}", with: entry.position.map(String.init) ?? "–"),
                ]
                switch entry.target {
                case .slot(let slotID):
                    let slot = view?.slot(slotID)
                    values["site_name"] = slot.flatMap { slot in view?.sites.first { $0.id == slot.siteID }?.name } ?? slotID
                    values["time"] = slot.map { Self.period($0.startsAtMillis, $0.endsAtMillis) } ?? ""
                case .site(let siteID):
                    values["site_name"] = view?.sites.first { $0.id == siteID }?.name ?? siteID
                }
                let body = PageRenderer.render("waitlist", values, title: PageRenderer.message("waitlist_title", language),
                                               language: language, path: path)
                bound.wrapped.send(PageAnswers.privatePage(200, body, language))
            }
        }
    }

    /// Leaving the line, then back to the entry's page.
    func leaveWaitlist(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/waitlist/\(id.text)"
        let bound = LoopBound(exchange, loop: reads.catalog.loop)
        waitlists.leave(id) { left in
            switch left {
            case .success: bound.wrapped.send(PageAnswers.seeOther(path))
            case .failure(let problem) where problem.code == "not_waiting":
                bound.wrapped.send(PageAnswers.problemPage(409, "not_waiting", language, path: path, link: (path, "waitlist_title")))
            case .failure(let problem) where problem.status == 404: bound.wrapped.send(PageAnswers.notFound(language, path: path))
            case .failure: bound.wrapped.send(PageAnswers.unavailable(language, path: path, detail: "unavailable_change_detail"))
            }
        }
    }

    /// A hold's confirmation, then back to the reservation's page.
    func confirm(_ id: ReservationID, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange), path = "/reservations/\(id.text)"
        let bound = LoopBound(exchange, loop: reads.catalog.loop)
        lookup.change(id, to: .confirmed, actor: "citizen") { changed in
            switch changed {
            case .success: bound.wrapped.send(PageAnswers.seeOther(path))
            case .failure(let problem) where problem.code == "hold_expired" || problem.code == "not_confirmable":
                bound.wrapped.send(PageAnswers.problemPage(409, problem.code, language, path: path, link: (path, "reservation_title")))
            case .failure(let problem) where problem.status == 404: bound.wrapped.send(PageAnswers.notFound(language, path: path))
            case .failure: bound.wrapped.send(PageAnswers.unavailable(language, path: path, detail: "unavailable_confirm_detail"))
            }
        }
    }

    /// Renders a page of reservation `id` with what it names (the campaign,
    /// the site, the time); `render` nil: the page is not for this state (404).
    private func withReservation(_ id: ReservationID, language: PageLanguage, path: String, _ exchange: HTTPExchange,
                                 _ render: @escaping (Reservation, [String: Any]) -> [UInt8]?) {
        let bound = LoopBound(exchange, loop: reads.catalog.loop)
        lookup.find(id) { [self] found in
            switch found {
            case .failure(let problem):
                return bound.wrapped.send(problem.status == 404 ? PageAnswers.notFound(language, path: path)
                                                                : PageAnswers.unavailable(language, path: path, detail: "unavailable_view_detail"))
            case .success(let reservation):
                reads.visibleCampaign(reservation.campaignID) { [self] campaign in
                    // Its campaign unreachable now: say so, rather than a page of bare ids.
                    if case .failure(let problem) = campaign, problem.status != 404 {
                        return bound.wrapped.send(PageAnswers.unavailable(language, path: path, detail: "unavailable_view_detail"))
                    }
                    let view = try? campaign.get()
                    let site = view?.sites.first { $0.id == reservation.siteID }
                    let slot = view?.slot(reservation.slotID)
                    let details: [String: Any] = [
                        "id": reservation.id.text, "campaign": reservation.campaignID,
                        "campaign_name": view?.campaign.name ?? reservation.campaignID,
                        "site_name": site?.name ?? reservation.siteID, "site_address": site?.address ?? "",
                        "time": slot.map { Self.period($0.startsAtMillis, $0.endsAtMillis) } ?? reservation.slotID,
                        "campaign_known": view != nil,
                    ]
                    guard let body = render(reservation, details) else { return bound.wrapped.send(PageAnswers.notFound(language, path: path)) }
                    // It shows a pickup code: kept by no cache, shared or not.
                    bound.wrapped.send(PageAnswers.privatePage(200, body, language))
                }
            }
        }
    }

    // MARK: helpers

    /// A page of a campaign citizens may see; `render` nil: not found.
    private func withCampaign(_ id: String, language: PageLanguage, path: String, _ exchange: HTTPExchange,
                              _ render: @escaping (CampaignView) -> SharedBytes?) {
        reads.answer(campaign: id, exchange) { found in
            switch found {
            case .success(let view): return render(view).map { PageAnswers.page(200, $0, language) } ?? PageAnswers.notFound(language, path: path)
            case .failure(let problem) where problem.status == 404: return PageAnswers.notFound(language, path: path)
            case .failure: return PageAnswers.unavailable(language, path: path)
            }
        }
    }

    private func cached(_ catalog: Catalog, _ key: PageKey, _ render: () -> [UInt8]) -> SharedBytes {
        if let body = catalog.pageCache[key] { return body }
        let body = SharedBytes(render())
        // Bounded: only campaigns and sites that exist get here, and the
        // cache is dropped every refresh.
        if catalog.pageCache.count < 4096 { catalog.pageCache[key] = body }
        return body
    }

    /// The 404 page, for a path of the pages the router refused (a malformed id).
    func notFound(_ exchange: HTTPExchange) {
        exchange.send(PageAnswers.notFound(PageAnswers.language(exchange), path: "/"))
    }

    /// Whether a path is one of the pages' (its 404 is a page, not a problem).
    static func isPagePath(_ path: Substring) -> Bool {
        path.hasPrefix("/campaigns/") || path.hasPrefix("/reservations/") || path.hasPrefix("/language/") || path.hasPrefix("/ops/")
    }

    /// A path on this site only (no scheme, no `//host`, no `\`), of the
    /// characters the pages' own paths use: anything else goes home.
    static func localPath(_ text: String) -> String? {
        guard text.hasPrefix("/"), !text.hasPrefix("//"), text.utf8.count <= 200,
              text.utf8.allSatisfy({ byte in
                  (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                      || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
              }) else { return nil }
        return text
    }

    /// Which of open, opening later, paused or closed a campaign is, for its
    /// tag; places are shown only while it is open or about to be.
    static func state(_ campaign: Campaign, nowMillis now: Int64) -> [String: Any] {
        let status = campaign.effectiveStatus(nowMillis: now)
        let open = campaign.acceptsReservations(nowMillis: now)
        let upcoming = status == .open && now < campaign.opensAtMillis
        return ["state_open": open, "state_upcoming": upcoming, "state_paused": status == .paused,
                "state_closed": status == .closed, "shows_places": open || upcoming,
                "opens": time(campaign.opensAtMillis), "closes": time(campaign.closesAtMillis)]
    }

    /// `2030-01-01 09:00 UTC`.
    static func time(_ millis: Int64) -> String {
        let iso = Timestamp.format(millis: millis, alwaysFraction: false)  // 2030-01-01T09:00:00Z
        return String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(5)) + " UTC"
    }

    /// `2030-01-01 09:00–10:00 UTC`, or both ends in full across days.
    static func period(_ start: Int64, _ end: Int64) -> String {
        let from = time(start), to = time(end)
        guard from.prefix(10) == to.prefix(10) else { return from + " – " + to }
        return String(from.dropLast(4)) + "–" + String(to.dropFirst(11))
    }
}

/// What a rendered page is kept under until the next refresh.
struct PageKey: Hashable {
    enum Page: UInt8 { case home, campaign, site }
    var page: Page
    var campaign = ""
    var site = ""
    var language: PageLanguage
}
