/// Every 4xx/5xx answer (API.md "Errors"): RFC 9457 problem details plus the
/// contract's `code`.
public struct Problem: Error, Equatable, Sendable {
    public let status: Int
    public let code: String
    public let title: String
    public let detail: String
    /// Extra response headers (Retry-After, RateLimit…).
    public var headers: [(String, String)] = []
    /// An extension member (RFC 9457, 3.2): which rule refused
    /// (`not_eligible`).
    public var reason: String?

    public static func == (lhs: Problem, rhs: Problem) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.detail == rhs.detail && lhs.reason == rhs.reason
    }

    public init(status: Int, code: String, title: String, detail: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = headers
    }

    public var body: [UInt8] {
        var json = JSONWriter(capacity: 160)
        json.beginObject()
        json.field("type", "/problems/" + code.replacingOccurrences(of: "_", with: "-"))
        json.field("title", title)
        json.field("status", status)
        json.field("code", code)
        json.field("detail", detail)
        if let reason { json.field("reason", reason) }
        json.endObject()
        return json.bytes
    }

    // MARK: the contract's problems

    public static func invalidJSON(_ detail: String) -> Problem {
        Problem(status: 400, code: "invalid_json", title: "Body is not valid JSON", detail: detail)
    }
    public static func invalidField(_ field: String, _ why: String) -> Problem {
        Problem(status: 400, code: "invalid_field", title: "Invalid field", detail: "\(field): \(why)")
    }
    public static let invalidCitizenID = Problem(
        status: 400, code: "invalid_citizen_id", title: "Invalid citizen id",
        detail: "citizen_id fails the campaign's id scheme")
    public static let unauthorized = Problem(
        status: 401, code: "unauthorized", title: "Unauthorized",
        detail: "a valid bearer token is required", headers: [("WWW-Authenticate", "Bearer")])
    public static func forbidden(_ detail: String) -> Problem {
        Problem(status: 403, code: "forbidden", title: "Forbidden", detail: detail)
    }
    public static func campaignNotOpen(_ campaign: String) -> Problem {
        Problem(status: 403, code: "campaign_not_open", title: "Campaign is not open",
                detail: "campaign \(campaign) is not open now (for reservations, registrations or its waitlist)")
    }
    /// A campaign's eligibility rule refuses this citizen (EligibilityRules).
    public static func notEligible(_ reason: NotEligibleReason) -> Problem {
        var problem = Problem(status: 403, code: "not_eligible", title: "Not eligible", detail: reason.detail)
        problem.reason = reason.rawValue
        return problem
    }
    public static func notFound(_ detail: String) -> Problem {
        Problem(status: 404, code: "not_found", title: "Not found", detail: detail)
    }
    public static func methodNotAllowed(_ allowed: String) -> Problem {
        Problem(status: 405, code: "method_not_allowed", title: "Method not allowed",
                detail: "allowed: \(allowed)", headers: [("Allow", allowed)])
    }
    public static func slotFull(_ slot: String) -> Problem {
        Problem(status: 409, code: "slot_full", title: "Slot is full", detail: "slot \(slot) has no places left")
    }
    public static func citizenLimitReached(_ limit: Int) -> Problem {
        Problem(status: 409, code: "citizen_limit_reached", title: "Citizen limit reached",
                detail: "this citizen already holds \(limit) active reservation(s) in the campaign")
    }
    public static let notCancellable = Problem(
        status: 409, code: "not_cancellable", title: "Not cancellable",
        detail: "the reservation is already cancelled, redeemed or expired")
    public static let notRedeemable = Problem(
        status: 409, code: "not_redeemable", title: "Not redeemable",
        detail: "the reservation is not confirmed (held, cancelled, expired) or already redeemed")
    /// A confirm after the hold's expiry: the place went back on sale.
    public static let holdExpired = Problem(
        status: 409, code: "hold_expired", title: "Hold expired",
        detail: "the hold ended before it was confirmed; its place went back on sale")
    public static let notConfirmable = Problem(
        status: 409, code: "not_confirmable", title: "Not confirmable",
        detail: "the reservation was cancelled")
    /// A campaign with holds: a citizen holds one place at a time.
    public static let holdPending = Problem(
        status: 409, code: "hold_pending", title: "A hold is pending",
        detail: "this citizen already holds a place in the campaign; confirm it or let it expire first")
    /// Not HTTP/1.1 as RFC 9112 writes it: nothing of it was read.
    public static func badRequest(_ detail: String) -> Problem {
        Problem(status: 400, code: "bad_request", title: "Bad request", detail: detail)
    }
    public static func headersTooLarge(_ bytesMax: Int) -> Problem {
        Problem(status: 431, code: "headers_too_large", title: "Request headers too large",
                detail: "the request line and headers are over \(bytesMax) bytes")
    }
    public static func notImplemented(_ detail: String) -> Problem {
        Problem(status: 501, code: "not_implemented", title: "Not implemented", detail: detail)
    }
    public static let versionNotSupported = Problem(
        status: 505, code: "http_version_not_supported", title: "HTTP version not supported",
        detail: "this server speaks HTTP/1.0 and HTTP/1.1")
    public static func bodyTooLarge(_ bytesMax: Int) -> Problem {
        Problem(status: 413, code: "body_too_large", title: "Body too large",
                detail: "request body is over \(bytesMax) bytes")
    }
    public static let idempotencyConflict = Problem(
        status: 422, code: "idempotency_conflict", title: "Idempotency key reused",
        detail: "this Idempotency-Key was used with a different body")
    public static func rateLimited(_ rejection: RateLimitRejection) -> Problem {
        Problem(status: 429, code: "rate_limited", title: "Too many requests",
                detail: "the \(rejection.bucket.rawValue) rate limit is exhausted; retry later",
                headers: rejection.headers)
    }
    /// A loop or worker queue is full: the request was not started.
    public static let busy = unavailable("the server is too busy to take this request now; nothing was changed")
    public static func unavailable(_ detail: String, retryAfterSeconds: Int = 1) -> Problem {
        Problem(status: 503, code: "unavailable", title: "Service unavailable", detail: detail,
                headers: [("Retry-After", String(retryAfterSeconds))])
    }
}
