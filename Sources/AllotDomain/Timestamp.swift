/// Calendar arithmetic without Foundation (days-from-civil, H. Hinnant), so
/// timestamps can be written on the hot path without a formatter.
public enum CivilDate {
    public static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1 else { return false }
        return day <= daysIn(month: month, year: year)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// RFC 3339 UTC timestamps as milliseconds since the epoch.
public enum Timestamp {
    /// Years 1970…9999: what an operator can mean by a campaign window.
    public static let millisMax: Int64 = 253_402_300_799_999

    /// Whether `millis` is a time `format` writes as itself.
    public static func isInRange(_ millis: Int64) -> Bool { millis >= 0 && millis <= millisMax }

    /// `2026-03-01T00:00:01.234Z`, or without the fraction when it is zero
    /// and `alwaysFraction` is false.
    /// A time outside 1970…9999 is written as the nearest end of that range
    /// (total: stored values are checked where they are read, see isInRange).
    public static func format(millis: Int64, alwaysFraction: Bool = true) -> String {
        // Written in place: one allocation (the text is past 15 bytes).
        String(unsafeUninitializedCapacity: textBytesMax) { write(millis: millis, alwaysFraction: alwaysFraction, into: $0) }
    }

    /// The longest text `format` writes.
    public static let textBytesMax = 24

    /// Writes `format`'s text at the start of `out` (`textBytesMax` bytes); its length.
    public static func write(millis unclamped: Int64, alwaysFraction: Bool = true, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        precondition(out.count >= textBytesMax)
        let millis = min(max(0, unclamped), millisMax)
        let seconds = millis / 1000
        let fraction = Int(millis % 1000)
        let (year, month, day) = CivilDate.civil(days: Int(seconds / 86_400))
        let secondOfDay = Int(seconds % 86_400)
        var count = 0
        func put(_ value: Int, width: Int) {
            var rest = value
            for index in stride(from: count + width - 1, through: count, by: -1) {
                out[index] = UInt8(truncatingIfNeeded: 0x30 + rest % 10)
                rest /= 10
            }
            count += width
        }
        func put(_ byte: UInt8) { out[count] = byte; count += 1 }
        put(year, width: 4); put(0x2D)
        put(month, width: 2); put(0x2D)
        put(day, width: 2); put(0x54)
        put(secondOfDay / 3600, width: 2); put(0x3A)
        put(secondOfDay / 60 % 60, width: 2); put(0x3A)
        put(secondOfDay % 60, width: 2)
        if alwaysFraction || fraction != 0 {
            put(0x2E)
            put(fraction, width: 3)
        }
        put(0x5A)
        return count
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.count <= 40 else { return nil }
        guard b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74,
              b[13] == 0x3A, b[16] == 0x3A else { return nil }
        guard let year = digits(b, 0, 4), let month = digits(b, 5, 2), let day = digits(b, 8, 2),
              let hour = digits(b, 11, 2), let minute = digits(b, 14, 2), let second = digits(b, 17, 2)
        else { return nil }
        guard year >= 1970, CivilDate.isValid(year: year, month: month, day: day),
              hour < 24, minute < 60, second < 60 else { return nil }
        var index = 19
        var millis = 0
        if b[index] == 0x2E {
            index += 1
            let start = index
            while index < b.count, isDigit(b[index]) {
                if index - start < 3 { millis = millis * 10 + Int(b[index] - 0x30) }
                index += 1
            }
            guard index > start else { return nil }
            for _ in 0..<max(0, 3 - (index - start)) { millis *= 10 }
        }
        guard let offset = zoneOffsetSeconds(b, from: index) else { return nil }
        let days = CivilDate.days(year: year, month: month, day: day)
        let total = (Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)) * 1000
            + Int64(millis)
        guard total >= 0, total <= millisMax else { return nil }
        return total
    }

    static func zoneOffsetSeconds(_ b: [UInt8], from index: Int) -> Int? {
        guard index < b.count else { return nil }
        if b[index] == 0x5A || b[index] == 0x7A { return index + 1 == b.count ? 0 : nil }
        guard b[index] == 0x2B || b[index] == 0x2D, index + 6 == b.count, b[index + 3] == 0x3A,
              let hours = digits(b, index + 1, 2), let minutes = digits(b, index + 4, 2),
              hours < 24, minutes < 60 else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return b[index] == 0x2B ? seconds : -seconds
    }

    static func digits(_ b: [UInt8], _ start: Int, _ count: Int) -> Int? {
        var value = 0
        for index in start..<(start + count) {
            guard isDigit(b[index]) else { return nil }
            value = value * 10 + Int(b[index] - 0x30)
        }
        return value
    }

}

extension Array where Element == UInt8 {
    /// `value` (≥ 0) in decimal, zero-padded to `width` digits.
    public mutating func appendDecimal(_ value: Int, width: Int) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        while divisor > 0 {
            append(UInt8(truncatingIfNeeded: 0x30 + value / divisor % 10))
            divisor /= 10
        }
    }
}
