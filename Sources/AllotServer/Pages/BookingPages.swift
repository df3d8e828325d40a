import AllotDomain
import EventHTTP
import EventLoops

/// Booking from the pages (README, Citizen pages): the site page's choice
/// of a time, the id form, check your answers, then the same desk as the
/// API's POST; every refusal has its page. The raw id is read once, from the
/// form's POST, and goes no further: the check page carries a sealed
/// BookingToken (the citizen key, the slot, the booking's idempotency key,
/// the id masked), and a booking is posted, then redirected to its page.
/// A form posted from another site is refused (PageAnswers.isCrossSite).
/// One per loop.
final class BookingPages {
    private let reads: CitizenReads
    private let desk: ReservationDesk
    private let waitlists: WaitlistDesk
    private let shared: SharedServices
    private let box: SealedFields
    /// Other times a slot-full page offers, at most.
    static let alternativesMax = 12

    init(reads: CitizenReads, desk: ReservationDesk, waitlists: WaitlistDesk, shared: SharedServices) {
        self.reads = reads
        self.desk = desk
        self.waitlists = waitlists
        self.shared = shared
        box = SealedFields(secret: shared.config.citizenSecret, purpose: "booking token")
    }

    private var loop: EventLoop { reads.catalog.loop }

    /// `GET /campaigns/{cid}/book?site=…&slot=…`: the id form for the chosen
    /// time, or the site page again, with an error, when none was chosen.
    func form(_ campaignID: String, query: Substring?, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        let slotID = QueryString.value(of: "slot", in: query), siteID = QueryString.value(of: "site", in: query)
        withOpenCampaign(campaignID, language: language, exchange) { [self] view in
            guard let slotID else {
                guard let site = view.sites.first(where: { $0.id == siteID }) else {
                    return PageAnswers.notFound(language, path: "/campaigns/\(campaignID)")
                }
                let values = CitizenPages.siteValues(view, site: site, error: "choose_slot_error", language: language)
                return PageAnswers.privatePage(422, PageRenderer.render("site", values, title: site.name, isError: true,
                                                                        language: language, path: "/campaigns/\(campaignID)/sites/\(site.id)"), language)
            }
            guard let slot = view.slot(slotID) else { return PageAnswers.notFound(language, path: "/campaigns/\(campaignID)") }
            return idForm(view, slot: slot, key: RandomText.hex128(), error: nil, language: language)
        }
    }

    /// `POST /campaigns/{cid}/book`: the id, checked by the campaign's scheme
    /// as the API checks it; then check your answers.
    func check(_ campaignID: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        guard let form = readForm(exchange, language: language) else { return }
        withOpenCampaign(campaignID, language: language, exchange) { [self] view in
            guard let slotID = form["slot"], let key = form["key"], ReservationDesk.isIdempotencyKey(key) else {
                return PageAnswers.problemPage(400, "bad_form", language, path: "/campaigns/\(campaignID)")
            }
            guard let slot = view.slot(slotID) else { return PageAnswers.notFound(language, path: "/campaigns/\(campaignID)") }
            let raw = form["citizen_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
            guard let normalized = view.campaign.idScheme.normalize(raw) else {
                let error = raw.isEmpty ? "id_error_empty" : "id_error_\(view.campaign.idScheme.rawValue)"
                return idForm(view, slot: slot, key: key, error: error, language: language)
            }
            let facts = EligibilityFacts(normalizedID: normalized, scheme: view.campaign.idScheme)
            if let refusal = notEligiblePage(view, facts: facts, slot: slot, language: language) { return refusal }
            let token = BookingToken(campaignID: campaignID, slotID: slot.id, citizenKey: shared.keyer.citizenKey(normalizedID: normalized),
                                     formKey: key, maskedID: BookingToken.mask(normalized), facts: facts,
                                     nowMillis: WallClock.nowMillis())
            return checkPage(view, token: token, status: 200, error: nil, language: language)
        }
    }

    /// `POST /campaigns/{cid}/book/slot`: another time, from the slot-full
    /// page, for the same citizen (a booking of its own, with its own key).
    func changeSlot(_ campaignID: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        guard let form = readForm(exchange, language: language), let token = openToken(form, campaignID, language, exchange)
        else { return }
        withOpenCampaign(campaignID, language: language, exchange) { [self] view in
            guard let slotID = form["slot"] else {
                return slotFullPage(view, token: token, error: "choose_slot_error", language: language)
            }
            guard let slot = view.slot(slotID) else { return PageAnswers.notFound(language, path: "/campaigns/\(campaignID)") }
            if let refusal = notEligiblePage(view, facts: token.facts, slot: slot, language: language) { return refusal }
            return checkPage(view, token: token.forSlot(slot.id), status: 200, error: nil, language: language)
        }
    }

    /// `POST /campaigns/{cid}/book/confirm`: the booking, by the desk; its
    /// page by post, redirect, get.
    func confirm(_ campaignID: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        guard let form = readForm(exchange, language: language), let token = openToken(form, campaignID, language, exchange)
        else { return }
        let booking = PageBooking(slotID: token.slotID, citizenKey: token.citizenKey, facts: token.facts,
                                  idempotencyKey: token.idempotencyKey, address: shared.clientAddress(exchange))
        desk.reserve(campaignID: campaignID, booking: booking,
                     reply: BookingReply(pages: self, exchange: LoopBound(exchange, loop: loop), token: token, language: language))
    }

    /// `POST /campaigns/{cid}/book/waitlist`: from a slot-full page, into
    /// the line for that slot; then the entry's page (post, redirect, get).
    /// A place come back meanwhile: check your answers, to book it.
    func joinWaitlist(_ campaignID: String, exchange: HTTPExchange) {
        let language = PageAnswers.language(exchange)
        guard let form = readForm(exchange, language: language), let token = openToken(form, campaignID, language, exchange)
        else { return }
        let bound = LoopBound(exchange, loop: loop), address = shared.clientAddress(exchange)
        let reply = BookingReply(pages: self, exchange: bound, token: token, language: language)
        reads.visibleCampaign(campaignID) { [self] found in
            guard case .success(let view) = found else { return reply.refused(found.failureProblem ?? .notFound("no such campaign")) }
            waitlists.join(view, target: .slot(token.slotID), citizen: .init(key: token.citizenKey, facts: token.facts),
                           address: address) { [self] joined in
                switch joined {
                case .success(let entry): bound.wrapped.send(PageAnswers.seeOther("/waitlist/\(entry.id)"))
                case .failure(let problem) where problem.code == "places_left":
                    bound.wrapped.send(checkPage(view, token: token, status: 200, error: nil, language: language))
                case .failure(let problem) where problem.code == "already_waiting":
                    bound.wrapped.send(PageAnswers.problemPage(409, "already_waiting", language, path: "/campaigns/\(campaignID)",
                                                               link: ("/campaigns/\(campaignID)", "back_to_campaign")))
                case .failure(let problem): reply.refused(problem)
                }
            }
        }
    }

    // MARK: the pages

    /// The page of a slot the campaign's rules refuse this citizen, with
    /// the way back to the campaign's sites; nil when they may book it.
    fileprivate func notEligiblePage(_ view: CampaignView, facts: EligibilityFacts, slot: Slot, language: PageLanguage) -> Answer? {
        guard let reason = view.campaign.eligibility.refusal(facts, slotStartsAtMillis: slot.startsAtMillis) else { return nil }
        return Self.notEligiblePage(reason, campaignID: view.campaign.id, language: language)
    }

    fileprivate static func notEligiblePage(_ reason: NotEligibleReason, campaignID: String, language: PageLanguage) -> Answer {
        let path = "/campaigns/\(campaignID)"
        return PageAnswers.problemPage(403, "not_eligible", language, path: path, detail: "not_eligible_\(reason.rawValue)",
                                       link: (path, "back_to_campaign"))
    }

    private func idForm(_ view: CampaignView, slot: Slot, key: String, error: String?, language: PageLanguage) -> Answer {
        var values = describe(view, slot: slot)
        values["key"] = key
        values["id_hint"] = PageRenderer.message("id_hint_\(view.campaign.idScheme.rawValue)", language)
        if let error {
            let message = PageRenderer.message(error, language)
            values["id_error"] = message
            values["errors"] = [["field": "citizen-id", "message": message]]
        }
        let body = PageRenderer.render("book", values, title: PageRenderer.message("id_heading", language), isError: error != nil,
                                       language: language, path: Self.sitePath(view.campaign.id, slot))
        return PageAnswers.privatePage(error == nil ? 200 : 422, body, language)
    }

    /// Check your answers, with the button that books; `error`: why the
    /// last press booked nothing (the form is kept, to press again).
    fileprivate func checkPage(_ view: CampaignView, token: BookingToken, status: Int, error: String?, language: PageLanguage,
                               headers: [(String, String)] = []) -> Answer {
        guard let slot = view.slot(token.slotID), let sealed = token.sealed(with: box) else {
            return PageAnswers.notFound(language, path: "/campaigns/\(view.campaign.id)")
        }
        var values = describe(view, slot: slot)
        values["token"] = sealed
        values["masked_id"] = token.maskedID
        if let error { values["errors"] = [["field": "book-button", "message": error]] }
        let body = PageRenderer.render("check", values, title: PageRenderer.message("check_heading", language), isError: error != nil,
                                       language: language, path: Self.sitePath(view.campaign.id, slot))
        var answer = PageAnswers.privatePage(status, body, language)
        answer.headers += headers
        return answer
    }

    /// The slot was taken: nothing was booked; other times with places
    /// left that the campaign's rules let the same citizen book, to book one.
    fileprivate func slotFullPage(_ view: CampaignView, token: BookingToken, error: String?, language: PageLanguage) -> Answer {
        let sites = Dictionary(view.sites.map { ($0.id, $0) }) { first, _ in first }
        let rules = view.campaign.eligibility
        let others: [[String: Any]] = view.slots.lazy
            .filter { $0.id != token.slotID && (view.remaining[$0.id] ?? 0) > 0 }
            .filter { rules.refusal(token.facts, slotStartsAtMillis: $0.startsAtMillis) == nil }
            .prefix(Self.alternativesMax).map { slot in
                let left = view.remaining[slot.id] ?? 0
                return ["id": slot.id, "site_name": sites[slot.siteID]?.name ?? slot.siteID,
                        "time": CitizenPages.period(slot.startsAtMillis, slot.endsAtMillis), "remaining": left, "one": left == 1]
            }
        var values: [String: Any] = ["campaign": view.campaign.id, "others": others, "has_others": !others.isEmpty,
                                     "token": token.sealed(with: box) ?? "", "waitlist": view.campaign.waitlist != nil]
        if let error {
            let message = PageRenderer.message(error, language)
            values["slot_error"] = message
            values["errors"] = [["field": "slot-" + ((others.first?["id"] as? String) ?? ""), "message": message]]
        }
        let body = PageRenderer.render("slot-full", values, title: PageRenderer.message("slot_full_title", language), isError: true,
                                       language: language, path: "/campaigns/\(view.campaign.id)")
        return PageAnswers.privatePage(error == nil ? 409 : 422, body, language)
    }

    /// The campaign, its site and the slot's time, as the pages name them.
    private func describe(_ view: CampaignView, slot: Slot) -> [String: Any] {
        let site = view.sites.first { $0.id == slot.siteID }
        return ["campaign": view.campaign.id, "campaign_name": view.campaign.name, "slot": slot.id, "site": slot.siteID,
                "site_name": site?.name ?? slot.siteID, "site_address": site?.address ?? "",
                "time": CitizenPages.period(slot.startsAtMillis, slot.endsAtMillis)]
    }

    // MARK: helpers

    /// The form a page posted; nil when it answered already (too large, not a form).
    private func readForm(_ exchange: HTTPExchange, language: PageLanguage) -> FormFields? {
        guard !PageAnswers.isCrossSite(exchange) else {
            exchange.send(PageAnswers.problemPage(403, "cross_site", language, path: "/"))
            return nil
        }
        guard exchange.bodyCount <= shared.config.citizenBodyBytesMax else {
            exchange.send(PageAnswers.problemPage(413, "too_large", language, path: "/"))
            return nil
        }
        guard let form = FormFields(exchange.body) else {
            exchange.send(PageAnswers.problemPage(400, "bad_form", language, path: "/"))
            return nil
        }
        return form
    }

    /// The form's token, if this server made it for this campaign and it
    /// has not expired; else the page saying to start again (and nil).
    private func openToken(_ form: FormFields, _ campaignID: String, _ language: PageLanguage, _ exchange: HTTPExchange)
        -> BookingToken? {
        guard let text = form["token"], let token = BookingToken(opening: text, with: box, nowMillis: WallClock.nowMillis()),
              token.campaignID == campaignID else {
            exchange.send(PageAnswers.problemPage(400, "token_expired", language, path: "/campaigns/\(campaignID)",
                                                  link: ("/campaigns/\(campaignID)", "start_again")))
            return nil
        }
        return token
    }

    /// `render` with the campaign if it takes bookings now; else the page
    /// saying when it does (or that it does not).
    private func withOpenCampaign(_ id: String, language: PageLanguage, _ exchange: HTTPExchange,
                                  _ render: @escaping (CampaignView) -> Answer) {
        reads.answer(campaign: id, exchange) { [self] found in
            switch found {
            case .success(let view) where view.campaign.acceptsReservations(nowMillis: WallClock.nowMillis()): return render(view)
            case .success(let view): return notOpenPage(view.campaign, language: language)
            case .failure(let problem) where problem.status == 404: return PageAnswers.notFound(language, path: "/campaigns/\(id)")
            case .failure: return PageAnswers.unavailable(language, path: "/campaigns/\(id)")
            }
        }
    }

    fileprivate func notOpenPage(_ campaign: Campaign, language: PageLanguage) -> Answer {
        let now = WallClock.nowMillis()
        let upcoming = campaign.status == .open && now < campaign.opensAtMillis
        let detail = upcoming
            ? PageRenderer.message("not_open_upcoming_detail", language).replacingOccurrences(of: "{opens}",
                                                                                          with: CitizenPages.time(campaign.opensAtMillis))
            : PageRenderer.message("not_open_detail", language)
        return PageAnswers.problemPage(409, "not_open", language, path: "/campaigns/\(campaign.id)", detailText: detail,
                                       link: ("/campaigns/\(campaign.id)", "back_to_campaign"))
    }

    /// The campaign to show a refusal's page with: this loop's view even
    /// when it is not fresh (a store that does not answer is one reason
    /// for the refusal).
    fileprivate func campaign(_ id: String) -> CampaignView? {
        reads.catalog.campaigns[id] ?? (try? reads.knownVisibleCampaign(id)?.get())
    }

    /// Where a booking page's language switch leads back to (a booking
    /// page itself needs its form).
    private static func sitePath(_ campaignID: String, _ slot: Slot) -> String { "/campaigns/\(campaignID)/sites/\(slot.siteID)" }

}

/// The desk's answer to a booking from the pages: its page, or the refusal's.
private struct BookingReply: AttemptReply {
    let pages: BookingPages
    let exchange: LoopBound<HTTPExchange>
    let token: BookingToken
    let language: PageLanguage

    func created(_ reservation: Reservation) {
        exchange.wrapped.send(PageAnswers.seeOther("/reservations/\(reservation.id.text)"))
    }

    func soldOut(_ slot: Slot, in view: CampaignView) {
        exchange.wrapped.send(pages.slotFullPage(view, token: token, error: nil, language: language))
    }

    func refused(_ problem: Problem) {
        let path = "/campaigns/\(token.campaignID)"
        guard let view = pages.campaign(token.campaignID) else {
            return exchange.wrapped.send(problem.status == 404 ? PageAnswers.notFound(language, path: path)
                                                               : PageAnswers.unavailable(language, path: path))
        }
        switch problem.code {
        case "slot_full": exchange.wrapped.send(pages.slotFullPage(view, token: token, error: nil, language: language))
        case "citizen_limit_reached":
            let limit = view.campaign.perCitizenLimit
            let detail = PageRenderer.message(limit == 1 ? "limit_detail_one" : "limit_detail", language)
                .replacingOccurrences(of: "{limit}", with: String(limit))
            exchange.wrapped.send(PageAnswers.problemPage(409, "limit", language, path: path, detailText: detail,
                                                          link: (path, "back_to_campaign")))
        case "campaign_not_open": exchange.wrapped.send(pages.notOpenPage(view.campaign, language: language))
        case "hold_pending":
            exchange.wrapped.send(PageAnswers.problemPage(409, "hold_pending", language, path: path, link: (path, "back_to_campaign")))
        case "not_eligible":
            let reason = problem.reason.flatMap(NotEligibleReason.init(rawValue:)) ?? .pickupDay
            exchange.wrapped.send(BookingPages.notEligiblePage(reason, campaignID: token.campaignID, language: language))
        case "rate_limited":
            // The form kept, with how long to wait before pressing again.
            let wait = retryAfter(problem)
            let message = PageRenderer.message("rate_limited_error", language).replacingOccurrences(of: "{seconds}", with: wait)
            exchange.wrapped.send(pages.checkPage(view, token: token, status: 429, error: message, language: language,
                                                  headers: [("Retry-After", wait)]))
        case _ where problem.status == 503:
            let wait = retryAfter(problem)
            exchange.wrapped.send(pages.checkPage(view, token: token, status: 503, error: PageRenderer.message("unavailable_error", language),
                                                  language: language, headers: [("Retry-After", wait)]))
        case _ where problem.status == 404: exchange.wrapped.send(PageAnswers.notFound(language, path: path))
        default:
            // idempotency_conflict: not from these pages' own keys, which
            // are made per citizen and slot.
            exchange.wrapped.send(PageAnswers.problemPage(409, "conflict", language, path: path, link: (path, "start_again")))
        }
    }

    private func retryAfter(_ problem: Problem) -> String {
        problem.headers.first { $0.0 == "Retry-After" }?.1 ?? "1"
    }
}
