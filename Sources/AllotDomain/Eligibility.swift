/// Who may book a slot of a campaign (issue 14, eligibility rules), decided
/// from the normalized id on the loop, before the reservation script runs
/// (the id itself never reaches Redis). A refusal names its rule.
public struct EligibilityRules: Equatable, Sendable {
    /// Which ids may collect on each weekday, by the parity of the id's
    /// last digit: Monday first. Taiwan's 2020 mask scheme: odd on Monday,
    /// Wednesday and Friday, even on Tuesday, Thursday and Saturday, anyone
    /// on Sunday.
    public var parityDays: [ParityRule]?
    /// Whole years of age on the slot's day, from the birth date a
    /// `cn-resident` id carries.
    public var ageRange: ClosedRange<Int>?
    /// The campaign's local time, for the slot's weekday and date.
    public var utcOffsetMinutes: Int

    public static let taiwanParityDays: [ParityRule] = [.odd, .even, .odd, .even, .odd, .even, .any]

    /// Local times are UTC−12:00 to UTC+14:00.
    public static let utcOffsetMinutesRange = -720...840

    /// Nil unless there is one parity rule per weekday and the offset is a
    /// real one (the rules come from operators' configuration).
    public init?(parityDays: [ParityRule]? = nil, ageRange: ClosedRange<Int>? = nil, utcOffsetMinutes: Int = 0) {
        guard parityDays.map({ $0.count == 7 }) ?? true, Self.utcOffsetMinutesRange.contains(utcOffsetMinutes) else { return nil }
        self.parityDays = parityDays
        self.ageRange = ageRange
        self.utcOffsetMinutes = utcOffsetMinutes
    }

    public var isEmpty: Bool { parityDays == nil && ageRange == nil }

    /// Nil when the citizen with this normalized id may book a slot that
    /// starts at `slotStartsAtMillis`; else the rule that refuses.
    public func refusal(normalizedID: String, scheme: IDScheme, slotStartsAtMillis: Int64) -> NotEligibleReason? {
        refusal(EligibilityFacts(normalizedID: normalizedID, scheme: scheme), slotStartsAtMillis: slotStartsAtMillis)
    }

    /// The same, from what the rules read of the id.
    public func refusal(_ facts: EligibilityFacts, slotStartsAtMillis: Int64) -> NotEligibleReason? {
        let localDays = Int((slotStartsAtMillis + Int64(utcOffsetMinutes) * 60_000).floorDiv(86_400_000))
        if let parityDays {
            // 1970-01-01 was a Thursday: weekday 3 counting Monday as 0.
            let weekday = ((localDays % 7) + 7 + 3) % 7
            guard let digit = facts.lastDigit, parityDays[weekday].allows(digit) else { return .pickupDay }
        }
        if let ageRange {
            guard let birth = facts.birthDate else { return .age }
            let today = CivilDate.civil(days: localDays)
            var age = today.year - birth.year
            if (today.month, today.day) < (birth.month, birth.day) { age -= 1 }
            guard ageRange.contains(age) else { return .age }
        }
        return nil
    }
}

/// What the rules read of an id: its last decimal digit, and the birth date
/// a `cn-resident` id carries. A booking token carries these, sealed, so
/// the pages can check another slot without the id.
public struct EligibilityFacts: Equatable, Sendable {
    public var lastDigit: Int?
    public var birthDate: (year: Int, month: Int, day: Int)?

    public init(normalizedID: String, scheme: IDScheme) {
        // A final check letter, such as a `cn-resident` X, is passed over.
        lastDigit = normalizedID.utf8.reversed().first { $0 >= 0x30 && $0 <= 0x39 }.map { Int($0 - 0x30) }
        birthDate = scheme == .cnResident ? CNResidentID.birthDate(normalizedID) : nil
    }

    public static func == (lhs: EligibilityFacts, rhs: EligibilityFacts) -> Bool {
        lhs.lastDigit == rhs.lastDigit && lhs.birthDate.map { [$0.year, $0.month, $0.day] } == rhs.birthDate.map { [$0.year, $0.month, $0.day] }
    }

    /// `<digit>|<yyyymmdd>`, each part empty when unknown.
    public var text: String {
        func padded(_ number: Int, _ width: Int) -> String {
            let text = String(number)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let date = birthDate.map { padded($0.year, 4) + padded($0.month, 2) + padded($0.day, 2) } ?? ""
        return (lastDigit.map(String.init) ?? "") + "|" + date
    }

    public init?(text: String) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        if parts[0].isEmpty {
            lastDigit = nil
        } else {
            guard parts[0].count == 1, let digit = Int(parts[0]) else { return nil }
            lastDigit = digit
        }
        if parts[1].isEmpty {
            birthDate = nil
        } else {
            let digits = Array(parts[1].utf8)
            guard digits.count == 8, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            func number(_ range: Range<Int>) -> Int { digits[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
            guard CivilDate.isValid(year: number(0..<4), month: number(4..<6), day: number(6..<8)) else { return nil }
            birthDate = (number(0..<4), number(4..<6), number(6..<8))
        }
    }
}

public enum ParityRule: String, Sendable, CaseIterable {
    case odd, even, any, none

    func allows(_ digit: Int) -> Bool {
        switch self {
        case .odd: digit % 2 == 1
        case .even: digit % 2 == 0
        case .any: true
        case .none: false
        }
    }
}

/// Which rule refuses a citizen (problem `not_eligible`, its `reason`).
public enum NotEligibleReason: String, Sendable {
    /// Not this id's pickup day (parity).
    case pickupDay = "pickup_day"
    /// Outside the campaign's age range, or an id that carries no birth date.
    case age
    /// The rolling limit across the campaign's series is reached.
    case seriesLimit = "series_limit"

    /// What the refusal tells the citizen.
    public var detail: String {
        switch self {
        case .pickupDay: "this slot is not on a pickup day for your id number (by its last digit); choose a slot on one"
        case .age: "your age on the slot's day is outside the campaign's age range"
        case .seriesLimit: "you have booked as many times as the campaign's series allows in its period"
        }
    }
}

extension CNResidentID {
    /// The birth date of a valid (normalized) id: digits 7–14.
    public static func birthDate(_ id: String) -> (year: Int, month: Int, day: Int)? {
        let bytes = Array(id.utf8)
        guard bytes.count == 18, bytes[6..<14].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        func number(_ range: Range<Int>) -> Int { bytes[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
        return (number(6..<10), number(10..<12), number(12..<14))
    }
}

extension Int64 {
    /// Division rounding toward minus infinity (a time before 1970 has its day too).
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

// MARK: the contract's form (a campaign's `eligibility`)

extension EligibilityRules: StoredAsJSON {
    /// No rule: anyone whose id passes the scheme may book.
    public static let none = EligibilityRules()!
    public static let fieldNames: Set<String> = ["pickup_days", "age", "utc_offset_minutes"]
    /// Ages are whole years, 0 to this.
    public static let ageMax = 150

    /// Decodes a campaign's `eligibility` object; every member optional.
    public static func decode(_ fields: Fields) throws(Problem) -> EligibilityRules {
        try fields.allowOnly(fieldNames)
        var parityDays: [ParityRule]?
        if fields.has("pickup_days") {
            let why = "must be 7 of odd, even, any, none (Monday first)"
            let days = try fields.array("pickup_days", countMax: 7)
            var rules: [ParityRule] = []
            for day in days {
                guard case .string(let text) = day, let rule = ParityRule(rawValue: text) else {
                    throw Problem.invalidField(fields.prefix + "pickup_days", why)
                }
                rules.append(rule)
            }
            guard rules.count == 7 else { throw Problem.invalidField(fields.prefix + "pickup_days", why) }
            parityDays = rules
        }
        var ageRange: ClosedRange<Int>?
        if let age = try fields.object("age") {
            try age.allowOnly(["min", "max"])
            let least = try age.optionalInteger("min", in: 0...ageMax) ?? 0
            let most = try age.optionalInteger("max", in: 0...ageMax) ?? ageMax
            guard least <= most else { throw Problem.invalidField(age.prefix + "max", "must be at least min") }
            ageRange = least...most
        }
        let offset = try fields.optionalInteger("utc_offset_minutes", in: utcOffsetMinutesRange) ?? 0
        // Every value is in range here, so the rules exist.
        return EligibilityRules(parityDays: parityDays, ageRange: ageRange, utcOffsetMinutes: offset)!
    }

    /// The rules as the contract writes them (and as the stores keep them).
    public func write(to json: inout JSONWriter) {
        json.beginObject()
        if let parityDays {
            json.key("pickup_days")
            json.beginArray()
            for rule in parityDays { json.string(rule.rawValue) }
            json.endArray()
        }
        if let ageRange {
            json.key("age")
            json.beginObject()
            json.field("min", ageRange.lowerBound)
            json.field("max", ageRange.upperBound)
            json.endObject()
        }
        json.field("utc_offset_minutes", utcOffsetMinutes)
        json.endObject()
    }
}
