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
        let localDays = Int((slotStartsAtMillis + Int64(utcOffsetMinutes) * 60_000).floorDiv(86_400_000))
        if let parityDays {
            // 1970-01-01 was a Thursday: weekday 3 counting Monday as 0.
            let weekday = ((localDays % 7) + 7 + 3) % 7
            guard let digit = Self.lastDigit(normalizedID), parityDays[weekday].allows(digit) else { return .pickupDay }
        }
        if let ageRange {
            guard scheme == .cnResident, let birth = CNResidentID.birthDate(normalizedID) else { return .age }
            let today = CivilDate.civil(days: localDays)
            var age = today.year - birth.year
            if (today.month, today.day) < (birth.month, birth.day) { age -= 1 }
            guard ageRange.contains(age) else { return .age }
        }
        return nil
    }

    /// The id's last decimal digit (a final check letter, such as a
    /// `cn-resident` X, is passed over).
    static func lastDigit(_ id: String) -> Int? {
        id.utf8.reversed().first { $0 >= 0x30 && $0 <= 0x39 }.map { Int($0 - 0x30) }
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
