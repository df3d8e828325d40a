/// How a campaign checks the citizen id numbers it accepts (API.md `id_scheme`).
public enum IDScheme: String, Sendable, CaseIterable {
    case any = "any"
    case cnResident = "cn-resident"
    case twNational = "tw-national"

    /// The canonical form of a valid id (what the citizen key is computed
    /// over), or nil when the id fails the scheme.
    public func normalize(_ raw: String) -> String? {
        switch self {
        case .any: return AnyID.normalize(raw)
        case .cnResident: return CNResidentID.normalize(raw)
        case .twNational: return TWNationalID.normalize(raw)
        }
    }
}

/// `any`: 1–64 visible ASCII characters, taken as they are.
enum AnyID {
    static let bytesMax = 64

    static func normalize(_ raw: String) -> String? {
        let bytes = raw.utf8
        guard !bytes.isEmpty, bytes.count <= bytesMax else { return nil }
        guard bytes.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else { return nil }
        return raw
    }
}

/// `cn-resident`: GB 11643 resident identity number. 17 digits, of which
/// digits 7–14 are the birth date, then an ISO 7064 MOD 11-2 check character.
public enum CNResidentID {
    static let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    static let checkCharacters: [UInt8] = Array("10X98765432".utf8)

    /// Read in place: a valid id comes back as it is, with no copy, unless
    /// its check character is a lower-case x.
    static func normalize(_ raw: String) -> String? {
        var raw = raw
        let valid = raw.withUTF8 { bytes -> Bool? in
            guard bytes.count == 18, bytes[0..<17].allSatisfy(isDigit) else { return nil }
            let last = bytes[17] == UInt8(ascii: "x") ? UInt8(ascii: "X") : bytes[17]
            guard last == checkCharacter(UnsafeBufferPointer(rebasing: bytes[0..<17])), hasValidBirthDate(bytes) else { return nil }
            return last == bytes[17]
        }
        switch valid {
        case nil: return nil
        case true?: return raw
        case false?: return raw.uppercased()
        }
    }

    /// The check character for 17 leading digits (ASCII bytes). A slice,
    /// not a generic collection: a caller in another module would run the
    /// generic code unspecialised, looking its types up on every call.
    public static func checkCharacter(_ digits: ArraySlice<UInt8>) -> UInt8 {
        digits.withUnsafeBufferPointer(checkCharacter)
    }

    public static func checkCharacter(_ digits: [UInt8]) -> UInt8 { checkCharacter(digits[...]) }

    static func checkCharacter(_ digits: UnsafeBufferPointer<UInt8>) -> UInt8 {
        precondition(digits.count == 17)
        var sum = 0
        for (digit, weight) in zip(digits, weights) {
            sum += Int(digit - 0x30) * weight
        }
        return checkCharacters[sum % 11]
    }

    static func hasValidBirthDate(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let year = number(bytes[6..<10])
        let month = number(bytes[10..<12])
        let day = number(bytes[12..<14])
        guard year >= 1800, year <= 2199 else { return false }
        return CivilDate.isValid(year: year, month: month, day: day)
    }

    static func number(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int {
        digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}

/// `tw-national`: one letter, then nine digits; the letter's two-digit value
/// and the digits, weighted 1 9 8 7 6 5 4 3 2 1 1, sum to a multiple of 10.
public enum TWNationalID {
    /// Letter values A…Z (they are not in alphabetical order past H).
    static let letterValues = [10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21,
                               22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30, 31, 33]
    static let weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1]

    static func normalize(_ raw: String) -> String? {
        var bytes = Array(raw.utf8)
        guard bytes.count == 10 else { return nil }
        if bytes[0] >= 0x61 && bytes[0] <= 0x7A { bytes[0] -= 0x20 }
        guard bytes[0] >= 0x41 && bytes[0] <= 0x5A else { return nil }
        guard bytes[1...].allSatisfy(isDigit) else { return nil }
        guard checksum(bytes) % 10 == 0 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The weighted sum over letter value and digits of a well-formed id.
    public static func checksum(_ bytes: [UInt8]) -> Int {
        precondition(bytes.count == 10)
        let value = letterValues[Int(bytes[0] - 0x41)]
        var terms = [value / 10, value % 10]
        terms += bytes[1...].map { Int($0 - 0x30) }
        return zip(terms, weights).reduce(0) { $0 + $1.0 * $1.1 }
    }
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
