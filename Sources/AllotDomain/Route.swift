/// The formats of the open availability data.
public enum OpenDataFormat: String, Sendable {
    case json, csv
}

/// A drawn lottery's published files.
public enum DrawFile: String, Sendable {
    case description = "draw.json"
    case results = "results.csv"
}

public enum HTTPMethod: String, Sendable {
    case get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE", other = "OTHER"
}

/// Every endpoint of API.md, with its path parameters already validated.
public enum Route: Equatable, Sendable {
    case healthz, readyz, metrics, openAPIDocument
    case listCampaigns
    case getCampaign(campaign: String)
    case listSites(campaign: String)
    case listSlots(campaign: String)
    /// `GET /open/v1/campaigns/{cid}/availability.json` and `.csv`.
    case openAvailability(campaign: String, format: OpenDataFormat)
    case reserve(campaign: String)
    /// A lottery's registration, and its receipt (issue 14).
    case register(campaign: String)
    case getRegistration(ReservationID)
    /// A drawn entrant's receipt (rank, outcome, inclusion proof).
    case getDrawReceipt(ReservationID)
    /// First-come waitlists: join (a slot or a site), read, leave.
    case joinWaitlist(campaign: String)
    case getWaitlistEntry(ReservationID)
    case leaveWaitlist(ReservationID)
    /// A lottery's draw: its state (public), its published files, and the
    /// operator's two steps.
    case getDraw(campaign: String)
    case drawFile(campaign: String, file: DrawFile)
    case commitDraw(campaign: String)
    case runDraw(campaign: String)
    /// Citizen pages (HTML).
    case homePage
    case campaignPage(campaign: String)
    case sitePage(campaign: String, site: String)
    /// Booking from the pages: the id form, check your answers, another
    /// time after a slot-full, the booking itself.
    case bookingForm(campaign: String)
    case bookingCheck(campaign: String)
    case bookingSlot(campaign: String)
    case bookingConfirm(campaign: String)
    /// Joining a full slot's waitlist from its slot-full page.
    case bookingWaitlist(campaign: String)
    /// A waitlist entry's page, and leaving the line from it.
    case waitlistPage(ReservationID)
    case leaveWaitlistFromPage(ReservationID)
    case stylesheet
    case languageSwitch(language: String)
    case reservationPage(ReservationID)
    case cancelPage(ReservationID)
    case cancelFromPage(ReservationID)
    case confirmFromPage(ReservationID)
    /// The operator dashboard (HTML; its own sign-in, by cookie).
    case opsHome, opsSignInPage, opsSignIn, opsSignOut, opsAudit
    case opsCampaign(campaign: String)
    case opsChange(campaign: String)
    case opsStatus(campaign: String)
    case opsCapacity(campaign: String)
    case opsRateLimits(campaign: String)
    case getReservation(ReservationID)
    case cancelReservation(ReservationID)
    /// A hold's confirmation by its citizen (a campaign with holds).
    case confirmReservation(ReservationID)
    case redeemReservation(ReservationID)
    case createCampaign
    case patchCampaign(campaign: String)
    case putSites(campaign: String)
    case putSlots(campaign: String)
    case patchSlot(campaign: String, slot: String)
    case putRateLimits(campaign: String)
    case campaignStats(campaign: String)
    case exportReservations(campaign: String)
    case auditTrail
    case reservationEvents
}

/// Maps method + path to a `Route`. Pure, with no allocation of its own
/// (the path's segments are kept inline), and a hostile path costs O(its
/// length): at most `segmentsMax` segments are read.
public enum Router {
    static let segmentsMax = PathSegments.Storage.count

    public static func route(method: HTTPMethod, path: Substring) -> Result<Route, Problem> {
        if let openData = matchOpenData(method, path) { return openData }
        guard path.first == "/", let segments = PathSegments(path.dropFirst()) else { return .failure(.notFound("no such path")) }
        return match(method, segments)
    }

    /// The open data by its bytes, before the general match: every map and
    /// bot polls it, so it is the commonest request of all. Nil for any
    /// other path (the general match answers it, a 404 included), so both
    /// ways route a path alike.
    private static func matchOpenData(_ method: HTTPMethod, _ path: Substring) -> Result<Route, Problem>? {
        var path = path
        // Compared as contiguous bytes: the generic comparisons of UTF-8
        // views, index by index, cost more than all the rest of the match.
        return path.withUTF8 { bytes -> Result<Route, Problem>? in
            let prefix = bytesOf("/open/v1/campaigns/")
            guard bytes.count > prefix.count, bytes.starts(with: prefix),
                  let slash = bytes[prefix.count...].firstIndex(of: UInt8(ascii: "/")) else { return nil }
            let name = bytes[(slash + 1)...]
            let format: OpenDataFormat
            if name.elementsEqual(bytesOf("availability.json")) {
                format = .json
            } else if name.elementsEqual(bytesOf("availability.csv")) {
                format = .csv
            } else {
                return nil
            }
            let id = UnsafeBufferPointer(rebasing: bytes[prefix.count..<slash])
            guard OperatorID.isValid(id) else { return .failure(.notFound("no such campaign")) }
            return only(.get, method, .openAvailability(campaign: String(decoding: id, as: UTF8.self), format: format))
        }
    }

    private static func bytesOf(_ text: StaticString) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// `a/b/c` → a, b, c, empty segments kept; nil past `segmentsMax`.
    /// The segments are kept as index ranges of the path (trivial values:
    /// no reference counting per segment, on every request).
    struct PathSegments {
        typealias Storage = InlineArray<8, Range<Substring.Index>>
        private let path: Substring
        private var items: Storage
        private(set) var count = 0

        init?(_ path: Substring) {
            self.path = path
            items = Storage(repeating: path.startIndex..<path.startIndex)
            var start = path.startIndex
            while true {
                guard count < Router.segmentsMax else { return nil }
                let end = path.utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? path.endIndex
                items[count] = start..<end
                count += 1
                guard end < path.endIndex else { return }
                start = path.utf8.index(after: end)
            }
        }

        subscript(index: Int) -> Substring {
            precondition(index < count)
            return path[items[index]]
        }

        /// The segments from `first` on (the few routes with a longer tail).
        func from(_ first: Int) -> [Substring] { (first..<count).map { self[$0] } }
    }

    private static func match(_ method: HTTPMethod, _ s: PathSegments) -> Result<Route, Problem> {
        switch s.count {
        case 1: return matchOperations(method, s[0])
        case 2 where s[0] == "campaigns":
            return withID(s[1], "campaign") { campaign in only(.get, method, .campaignPage(campaign: campaign)) }
        case 4 where s[0] == "campaigns" && s[2] == "sites":
            return withID(s[1], "campaign") { campaign in
                withID(s[3], "site") { site in only(.get, method, .sitePage(campaign: campaign, site: site)) }
            }
        case 3 where s[0] == "campaigns" && s[2] == "book":
            return withID(s[1], "campaign") { campaign in
                switch method {
                case .get: .success(.bookingForm(campaign: campaign))
                case .post: .success(.bookingCheck(campaign: campaign))
                default: .failure(.methodNotAllowed("GET, HEAD, POST"))
                }
            }
        case 4 where s[0] == "campaigns" && s[2] == "book" && (s[3] == "slot" || s[3] == "confirm" || s[3] == "waitlist"):
            return withID(s[1], "campaign") { campaign in
                only(.post, method, s[3] == "slot" ? .bookingSlot(campaign: campaign)
                                    : s[3] == "confirm" ? .bookingConfirm(campaign: campaign) : .bookingWaitlist(campaign: campaign))
            }
        case 2...3 where s[0] == "waitlist":
            guard let id = ReservationID(parsing: s[1]) else { return .failure(.notFound("no such waitlist entry")) }
            if s.count == 2 { return only(.get, method, .waitlistPage(id)) }
            guard s[2] == "leave" else { return .failure(.notFound("no such path")) }
            return only(.post, method, .leaveWaitlistFromPage(id))
        case 2...3 where s[0] == "reservations":
            guard let id = ReservationID(parsing: s[1]) else { return .failure(.notFound("no such reservation")) }
            if s.count == 2 { return only(.get, method, .reservationPage(id)) }
            if s[2] == "confirm" { return only(.post, method, .confirmFromPage(id)) }
            guard s[2] == "cancel" else { return .failure(.notFound("no such path")) }
            switch method {
            case .get: return .success(.cancelPage(id))
            case .post: return .success(.cancelFromPage(id))
            default: return .failure(.methodNotAllowed("GET, HEAD, POST"))
            }
        case 2 where s[0] == "ops":
            switch s[1] {
            case "": return only(.get, method, .opsHome)
            case "sign-in":
                switch method {
                case .get: return .success(.opsSignInPage)
                case .post: return .success(.opsSignIn)
                default: return .failure(.methodNotAllowed("GET, HEAD, POST"))
                }
            case "sign-out": return only(.post, method, .opsSignOut)
            case "audit": return only(.get, method, .opsAudit)
            default: return .failure(.notFound("no such path"))
            }
        case 3 where s[0] == "ops" && s[1] == "campaigns":
            return withID(s[2], "campaign") { campaign in only(.get, method, .opsCampaign(campaign: campaign)) }
        case 4 where s[0] == "ops" && s[1] == "campaigns":
            return withID(s[2], "campaign") { campaign in
                switch s[3] {
                case "change": only(.get, method, .opsChange(campaign: campaign))
                case "status": only(.post, method, .opsStatus(campaign: campaign))
                case "capacity": only(.post, method, .opsCapacity(campaign: campaign))
                case "rate-limits": only(.post, method, .opsRateLimits(campaign: campaign))
                default: .failure(.notFound("no such path"))
                }
            }
        case 2 where s[0] == "static" && s[1] == "style.css":
            return only(.get, method, .stylesheet)
        case 2 where s[0] == "language" && (s[1] == "en" || s[1] == "zh-Hans"):
            return only(.get, method, .languageSwitch(language: String(s[1])))
        case 2 where s[0] == "v1" && s[1] == "campaigns":
            return only(.get, method, .listCampaigns)
        case 3...4 where s[0] == "v1" && s[1] == "campaigns":
            return withID(s[2], "campaign") { campaign in matchCampaign(method, campaign, s.count == 4 ? s[3] : nil) }
        case 3...4 where s[0] == "v1" && s[1] == "reservations":
            guard let id = ReservationID(parsing: s[2]) else { return .failure(.notFound("no such reservation")) }
            return matchReservation(method, id, s.count == 4 ? s[3] : nil)
        case 3 where s[0] == "v1" && s[1] == "waitlist":
            guard let id = ReservationID(parsing: s[2]) else { return .failure(.notFound("no such waitlist entry")) }
            switch method {
            case .get: return .success(.getWaitlistEntry(id))
            case .delete: return .success(.leaveWaitlist(id))
            default: return .failure(.methodNotAllowed("GET, HEAD, DELETE"))
            }
        case 3...4 where s[0] == "v1" && s[1] == "registrations":
            guard let id = ReservationID(parsing: s[2]) else { return .failure(.notFound("no such registration")) }
            if s.count == 3 { return only(.get, method, .getRegistration(id)) }
            guard s[3] == "receipt" else { return .failure(.notFound("no such path")) }
            return only(.get, method, .getDrawReceipt(id))
        case 3 where s[0] == "v1" && s[1] == "admin" && s[2] == "campaigns":
            return only(.post, method, .createCampaign)
        case 3 where s[0] == "v1" && s[1] == "admin" && s[2] == "audit":
            return only(.get, method, .auditTrail)
        case 4 where s[0] == "v1" && s[1] == "admin" && s[2] == "audit" && s[3] == "reservation-events":
            return only(.get, method, .reservationEvents)
        case 5 where s[0] == "open" && s[1] == "v1" && s[2] == "campaigns":
            return withID(s[3], "campaign") { campaign in
                switch s[4] {
                case "availability.json": only(.get, method, .openAvailability(campaign: campaign, format: .json))
                case "availability.csv": only(.get, method, .openAvailability(campaign: campaign, format: .csv))
                case "draw.json": only(.get, method, .drawFile(campaign: campaign, file: .description))
                case "results.csv": only(.get, method, .drawFile(campaign: campaign, file: .results))
                default: .failure(.notFound("no such path"))
                }
            }
        case 4...6 where s[0] == "v1" && s[1] == "admin" && s[2] == "campaigns":
            return withID(s[3], "campaign") { campaign in matchAdmin(method, campaign, s.from(4)) }
        default:
            return .failure(.notFound("no such path"))
        }
    }

    private static func matchOperations(_ method: HTTPMethod, _ name: Substring) -> Result<Route, Problem> {
        switch name {
        case "": return only(.get, method, .homePage)
        case "healthz": return only(.get, method, .healthz)
        case "readyz": return only(.get, method, .readyz)
        case "metrics": return only(.get, method, .metrics)
        case "openapi.yaml": return only(.get, method, .openAPIDocument)
        case "ops": return only(.get, method, .opsHome)
        default: return .failure(.notFound("no such path"))
        }
    }

    private static func matchCampaign(_ method: HTTPMethod, _ campaign: String, _ tail: Substring?) -> Result<Route, Problem> {
        switch tail {
        case nil: return only(.get, method, .getCampaign(campaign: campaign))
        case "sites": return only(.get, method, .listSites(campaign: campaign))
        case "slots": return only(.get, method, .listSlots(campaign: campaign))
        case "reservations": return only(.post, method, .reserve(campaign: campaign))
        case "registrations": return only(.post, method, .register(campaign: campaign))
        case "waitlist": return only(.post, method, .joinWaitlist(campaign: campaign))
        case "draw": return only(.get, method, .getDraw(campaign: campaign))
        default: return .failure(.notFound("no such path"))
        }
    }

    private static func matchReservation(_ method: HTTPMethod, _ id: ReservationID, _ tail: Substring?) -> Result<Route, Problem> {
        switch (tail, method) {
        case (nil, .get): return .success(.getReservation(id))
        case (nil, .delete): return .success(.cancelReservation(id))
        case (nil, _): return .failure(.methodNotAllowed("GET, HEAD, DELETE"))
        case ("redeem", _): return only(.post, method, .redeemReservation(id))
        case ("confirm", _): return only(.post, method, .confirmReservation(id))
        default: return .failure(.notFound("no such path"))
        }
    }

    private static func matchAdmin(_ method: HTTPMethod, _ campaign: String, _ tail: [Substring]) -> Result<Route, Problem> {
        switch tail.first {
        case nil: return only(.patch, method, .patchCampaign(campaign: campaign))
        case "sites" where tail.count == 1: return only(.put, method, .putSites(campaign: campaign))
        case "slots" where tail.count == 1: return only(.put, method, .putSlots(campaign: campaign))
        case "slots" where tail.count == 2:
            return withID(tail[1], "slot") { slot in only(.patch, method, .patchSlot(campaign: campaign, slot: slot)) }
        case "rate-limits" where tail.count == 1: return only(.put, method, .putRateLimits(campaign: campaign))
        case "stats" where tail.count == 1: return only(.get, method, .campaignStats(campaign: campaign))
        case "reservations.csv" where tail.count == 1: return only(.get, method, .exportReservations(campaign: campaign))
        case "draw" where tail.count == 2 && tail[1] == "commit": return only(.post, method, .commitDraw(campaign: campaign))
        case "draw" where tail.count == 2 && tail[1] == "run": return only(.post, method, .runDraw(campaign: campaign))
        default: return .failure(.notFound("no such path"))
        }
    }

    /// A GET route takes HEAD too: the HTTP layer answers it as the GET,
    /// without the body.
    private static func only(_ allowed: HTTPMethod, _ method: HTTPMethod, _ route: Route) -> Result<Route, Problem> {
        guard method != allowed else { return .success(route) }
        return .failure(.methodNotAllowed(allowed == .get ? "GET, HEAD" : allowed.rawValue))
    }

    private static func withID(_ segment: Substring, _ what: String, _ next: (String) -> Result<Route, Problem>) -> Result<Route, Problem> {
        guard OperatorID.isValid(segment) else { return .failure(.notFound("no such \(what)")) }
        return next(String(segment))
    }
}
