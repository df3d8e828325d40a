import AllotDomain
import RedisClient

/// A reply that does not have the shape the contract says. Never a trap:
/// the request it answers gets a 503 and the violation is logged.
struct ContractViolation: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The elements of a script's array reply, read with bounds checks.
struct ReplyParts {
    let parts: [RedisReply]
    let script: String

    init(_ reply: RedisReply, script: String) throws(ContractViolation) {
        guard let parts = reply.elements, !parts.isEmpty else {
            throw ContractViolation("\(script): \(reply.errorMessage ?? "not an array")")
        }
        self.parts = parts
        self.script = script
    }

    var outcome: String { parts[0].text ?? "" }
    var count: Int { parts.count }

    func text(_ index: Int) throws(ContractViolation) -> String {
        guard index < parts.count, let text = parts[index].text else { throw violation("no text at \(index)") }
        return text
    }

    func integer(_ index: Int) throws(ContractViolation) -> Int64 {
        guard index < parts.count, let value = parts[index].integer else { throw violation("no integer at \(index)") }
        return value
    }

    func violation(_ what: String) -> ContractViolation {
        ContractViolation("\(script) '\(outcome)': \(what)")
    }
}

/// What reserve.lua decided (its header lists the reply shapes).
enum ReserveOutcome: Equatable {
    case confirmed(createdAtMillis: Int64)
    /// A campaign with holds: the place is held until `expiresAtMillis`.
    case held(createdAtMillis: Int64, expiresAtMillis: Int64)
    /// The citizen holds a place in the campaign already.
    case holdPending
    case replay(StoredAnswer)
    case idempotencyConflict
    case campaignNotFound
    case slotNotFound
    case campaignNotOpen
    case slotFull
    /// Refused `slot_full` as the slot's places in the citizen's bucket are
    /// kept for its waitlist (reserve.lua): there may be places elsewhere.
    case slotKeptForLine
    case citizenLimitReached(limit: Int)
    /// The series' rolling limit (the only rule reserve.lua decides).
    case notEligible(NotEligibleReason)
    case rateLimited(RateLimitRejection)
    /// The campaign's stream holds `streamEntriesMax` entries SQLite has not
    /// got: nothing was written.
    case backlogFull
    /// The citizen's bucket has no place of the slot (a spread campaign's
    /// first try): nothing was written; a refill comes next.
    case bucketEmpty

    init(_ reply: RedisReply) throws(ContractViolation) {
        if case .integer(let created) = reply {
            guard created > 0 else { throw ContractViolation("reserve: created at \(created)") }
            self = .confirmed(createdAtMillis: created)
            return
        }
        let parts = try ReplyParts(reply, script: "reserve")
        switch parts.outcome {
        case "held": self = .held(createdAtMillis: try parts.integer(1), expiresAtMillis: try parts.integer(2))
        case "hold_pending": self = .holdPending
        case "replay": self = .replay(try StoredAnswer(parsing: parts.text(1)))
        case "idempotency_conflict": self = .idempotencyConflict
        case "not_found": self = try parts.text(1) == "slot" ? .slotNotFound : .campaignNotFound
        case "campaign_not_open": self = .campaignNotOpen
        case "slot_full": self = parts.count > 1 && (try? parts.text(1)) == "line" ? .slotKeptForLine : .slotFull
        case "citizen_limit_reached": self = .citizenLimitReached(limit: Int(clamping: try parts.integer(1)))
        case "not_eligible":
            guard let reason = NotEligibleReason(rawValue: try parts.text(1)) else { throw parts.violation("unknown reason") }
            self = .notEligible(reason)
        case "rate_limited": self = .rateLimited(try Self.rejection(parts))
        case "backlog_full": self = .backlogFull
        case "bucket_empty": self = .bucketEmpty
        case "misconfigured": throw parts.violation("stored configuration out of range: \(try parts.text(1))")
        default: throw parts.violation("unknown outcome")
        }
    }

    /// The commonest reply, the created time, read where hiredis keeps it;
    /// any other through a copy.
    init(_ reply: RedisReplyView) throws(ContractViolation) {
        if let created = reply.integer, created > 0 {
            self = .confirmed(createdAtMillis: created)
        } else {
            try self.init(reply.copy)
        }
    }

    private static func rejection(_ parts: ReplyParts) throws(ContractViolation) -> RateLimitRejection {
        guard let bucket = BucketName(rawValue: try parts.text(1)) else { throw parts.violation("unknown bucket") }
        let retry = try parts.integer(2)
        guard let rate = Double(try parts.text(3)), let burst = Double(try parts.text(4)),
              let policy = BucketPolicy(rate: rate, burst: burst) else { throw parts.violation("policy out of range") }
        return RateLimitRejection(bucket: bucket, retryAfterSeconds: Int(clamping: max(1, retry)), policy: policy)
    }

    /// The name metrics count this outcome under.
    /// The campaign stats field (`rej_…`) a refusal is counted in; nil for
    /// what is not a counted refusal (a reservation, a replay, a failure).
    var rejectionStatsField: String? {
        switch self {
        case .campaignNotOpen: "rej_campaign_not_open"
        case .slotNotFound: "rej_invalid"
        case .rateLimited: "rej_rate_limited"
        // One hold at a time is a limit on the citizen too.
        case .citizenLimitReached, .holdPending: "rej_citizen_limit_reached"
        case .notEligible: "rej_not_eligible"
        case .slotFull, .slotKeptForLine: "rej_slot_full"
        case .confirmed, .held, .replay, .idempotencyConflict, .campaignNotFound, .backlogFull, .bucketEmpty: nil
        }
    }

    var metricName: String {
        switch self {
        case .confirmed: "confirmed"
        case .held: "held"
        case .holdPending: "hold_pending"
        case .replay: "idempotent_replay"
        case .idempotencyConflict: "idempotency_conflict"
        case .campaignNotFound, .slotNotFound: "not_found"
        case .campaignNotOpen: "campaign_not_open"
        case .slotFull, .slotKeptForLine: "slot_full"
        case .citizenLimitReached: "citizen_limit_reached"
        case .notEligible: "not_eligible"
        case .rateLimited: "rate_limited"
        case .backlogFull: "unavailable"
        case .bucketEmpty: "bucket_empty"
        }
    }
}

/// The answer kept under an Idempotency-Key, written by reserve.lua as
/// `ok|<id>|<code>|<created ms>`, `held|<id>|<code>|<created ms>|<expires ms>`,
/// `slot_full`, `citizen_limit_reached|<limit>`, `hold_pending` or
/// `not_eligible|<reason>`.
enum StoredAnswer: Equatable {
    case confirmed(id: ReservationID, code: String, createdAtMillis: Int64)
    case held(id: ReservationID, code: String, createdAtMillis: Int64, expiresAtMillis: Int64)
    case holdPending
    case slotFull
    case citizenLimitReached(limit: Int)
    case notEligible(NotEligibleReason)

    init(parsing stored: String) throws(ContractViolation) {
        let fields = stored.split(separator: "|", omittingEmptySubsequences: false)
        switch fields.first {
        case "ok" where fields.count == 4:
            guard let id = ReservationID(parsing: fields[1]), let createdAt = Int64(fields[3]) else { break }
            self = .confirmed(id: id, code: String(fields[2]), createdAtMillis: createdAt)
            return
        case "held" where fields.count == 5:
            guard let id = ReservationID(parsing: fields[1]), let createdAt = Int64(fields[3]), let expiresAt = Int64(fields[4])
            else { break }
            self = .held(id: id, code: String(fields[2]), createdAtMillis: createdAt, expiresAtMillis: expiresAt)
            return
        case "hold_pending" where fields.count == 1:
            self = .holdPending
            return
        case "slot_full" where fields.count == 1:
            self = .slotFull
            return
        case "citizen_limit_reached" where fields.count == 2:
            guard let limit = Int(fields[1]) else { break }
            self = .citizenLimitReached(limit: limit)
            return
        case "not_eligible" where fields.count == 2:
            guard let reason = NotEligibleReason(rawValue: String(fields[1])) else { break }
            self = .notEligible(reason)
            return
        default: break
        }
        throw ContractViolation("reserve: unreadable stored answer")
    }
}

/// What transition.lua decided.
enum TransitionOutcome: Equatable {
    /// `rejoin`: the campaign had left the hot set, and must go back in
    /// (HotSet.swift).
    case changed(ReservationRecord, rejoin: Bool)
    /// A confirm of a reservation confirmed (or redeemed) already.
    case unchanged(ReservationRecord)
    /// The hold was past its expiry: it ended, now (its place given back
    /// by this call) or before.
    case holdExpired(ReservationRecord, rejoin: Bool, endedNow: Bool)
    case notFound
    /// The move is not one the reservation's status allows.
    case refused
    case backlogFull

    init(_ reply: RedisReply) throws(ContractViolation) {
        let parts = try ReplyParts(reply, script: "transition")
        switch parts.outcome {
        case "ok":
            guard let record = ReservationRecord(try parts.text(1)) else { throw parts.violation("unreadable record") }
            self = .changed(record, rejoin: parts.count > 2 && parts.parts[2].integer == 1)
        case "same":
            guard let record = ReservationRecord(try parts.text(1)) else { throw parts.violation("unreadable record") }
            self = .unchanged(record)
        case "hold_expired":
            guard let record = ReservationRecord(try parts.text(1)) else { throw parts.violation("unreadable record") }
            self = .holdExpired(record, rejoin: parts.count > 2 && parts.parts[2].integer == 1,
                                endedNow: parts.count > 3 && parts.parts[3].integer == 1)
        case "not_found": self = .notFound
        case "refused": self = .refused
        case "backlog_full": self = .backlogFull
        default: throw parts.violation("unknown outcome")
        }
    }
}

/// What snapshot.lua returned for one campaign.
enum SnapshotReply {
    /// No such campaign (or it is being created).
    case absent
    /// Only the counters changed since `version`.
    case counters(version: String, remaining: [String: Int])
    case full(version: String, config: [String: String], capacity: [String: String], sites: [String: String],
              slots: [String: String], remaining: [String: Int])

    init(_ reply: RedisReply, knownVersion: String?) throws(ContractViolation) {
        let parts = try ReplyParts(reply, script: "snapshot")
        if parts.count == 1, parts.parts[0] == .null { self = .absent; return }
        guard parts.count == 6 else { throw parts.violation("\(parts.count) elements") }
        let version = try parts.text(0)
        let remaining = parts.parts[5].integerPairs
        if version == knownVersion {
            self = .counters(version: version, remaining: remaining)
            return
        }
        guard let config = parts.parts[1].pairs, let capacity = parts.parts[2].pairs, let sites = parts.parts[3].pairs,
              let slots = parts.parts[4].pairs else { throw parts.violation("missing hashes") }
        self = .full(version: version, config: config, capacity: capacity, sites: sites, slots: slots, remaining: remaining)
    }
}

extension RedisReply {
    /// Field/value pairs whose values are integers; others are left out.
    var integerPairs: [String: Int] {
        guard let elements, elements.count % 2 == 0 else { return [:] }
        var result: [String: Int] = [:]
        result.reserveCapacity(elements.count / 2)
        for index in stride(from: 0, to: elements.count, by: 2) {
            if let key = elements[index].text, let value = elements[index + 1].integer { result[key] = Int(clamping: value) }
        }
        return result
    }
}

/// What stats.lua returned: the stats hash, and total capacity and
/// remaining places over the campaign's slots.
struct StatsReply {
    private(set) var counters: [String: Int]
    private(set) var capacity: Int
    private(set) var remaining: Int
    /// Places held now (a campaign with holds): taken, not yet confirmed.
    private(set) var held: Int

    mutating func addRemaining(_ places: Int) { remaining &+= places }

    /// Adds a bucket's counters and places to the home's.
    mutating func add(_ bucket: StatsReply) {
        counters.merge(bucket.counters, uniquingKeysWith: &+)
        capacity &+= bucket.capacity
        remaining &+= bucket.remaining
        held &+= bucket.held
    }

    init(_ reply: RedisReply) throws(ContractViolation) {
        let parts = try ReplyParts(reply, script: "stats")
        guard parts.count == 4 else { throw parts.violation("\(parts.count) elements") }
        counters = parts.parts[0].integerPairs
        capacity = Int(clamping: try parts.integer(1))
        remaining = Int(clamping: try parts.integer(2))
        held = Int(clamping: try parts.integer(3))
    }

    func counter(_ name: String) -> Int { counters[name] ?? 0 }
}
