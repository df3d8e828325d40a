/// Crockford base32, the alphabet of reservation ids and pickup codes: no
/// I, L, O or U, so a code read aloud at a counter is not misheard.
public enum Crockford {
    public static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// The 5-bit value of an upper- or lower-case Crockford character.
    public static func value(of byte: UInt8) -> UInt8? {
        let upper = (byte >= 0x61 && byte <= 0x7A) ? byte - 0x20 : byte
        return decodeTable[Int(upper)]
    }

    private static let decodeTable: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()
}

/// A reservation id: 128 bits, ULID layout. A 48-bit millisecond prefix keeps
/// SQLite's primary-key index appending in order (DESIGN.md measured ~15×
/// faster inserts than random keys); the 80 bits below it make the id an
/// unguessable capability: 56 random bits, then the 24-bit route of the
/// campaign that holds it, masked by a keyed hash of the bits before it
/// (RouteCipher). Without the server's key those 24 bits are as good as
/// random, so guessing an id still takes about 2^80 tries.
public struct ReservationID: Hashable, Sendable, CustomStringConvertible {
    public static let textLength = 26
    public let text: String

    public var description: String { text }

    /// A new id for `millis` since the epoch, with 56 bits from `random`,
    /// carrying `route` (1...RouteCipher.routeMax) masked by `cipher`.
    public static func make<R: RandomNumberGenerator>(millis: UInt64, route: UInt32, cipher: RouteCipher,
                                                      using random: inout R) -> ReservationID {
        precondition(millis < (1 << 48))
        precondition(route <= RouteCipher.routeMax)
        let high = (millis << 16) | UInt64(random.next() as UInt16)
        let randomLow = (random.next() as UInt64) >> RouteCipher.routeBits
        let masked = route ^ cipher.mask(high: high, randomLow: randomLow)
        return ReservationID(text: encode(high: high, low: randomLow << RouteCipher.routeBits | UInt64(masked)))
    }

    /// The route this id carries, unmasked with `cipher`. Any parsed id has
    /// one (a guessed id has a random one, which names no campaign).
    public func route(cipher: RouteCipher) -> UInt32 {
        let (high, low) = bits
        let masked = UInt32(truncatingIfNeeded: low) & RouteCipher.routeMax
        return masked ^ cipher.mask(high: high, randomLow: low >> RouteCipher.routeBits)
    }

    /// The 128 bits, high and low halves.
    var bits: (high: UInt64, low: UInt64) {
        var high: UInt64 = 0, low: UInt64 = 0
        for byte in text.utf8 {
            let value = UInt64(Crockford.value(of: byte) ?? 0)
            high = high << 5 | low >> 59
            low = low << 5 | value
        }
        return (high, low)
    }

    /// Parses a client-supplied id; nil unless it is 26 Crockford characters
    /// that fit in 128 bits. Lower case is accepted and upper-cased.
    public init?(parsing raw: Substring) {
        let bytes = raw.utf8
        guard bytes.count == Self.textLength else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(Self.textLength)
        for byte in bytes {
            guard let value = Crockford.value(of: byte) else { return nil }
            out.append(Crockford.alphabet[Int(value)])
        }
        // 26 × 5 = 130 bits: the first character carries only 3.
        guard Crockford.value(of: out[0])! <= 7 else { return nil }
        text = String(decoding: out, as: UTF8.self)
    }

    private init(text: String) { self.text = text }

    /// The millisecond prefix.
    public var millis: UInt64 {
        var value: UInt64 = 0
        for byte in text.utf8.prefix(10) { value = value << 5 | UInt64(Crockford.value(of: byte)!) }
        return value
    }

    static func encode(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: textLength) { out in
            var hi = high, lo = low
            for index in stride(from: textLength - 1, through: 0, by: -1) {
                out[index] = Crockford.alphabet[Int(lo & 0x1F)]
                lo = (lo >> 5) | ((hi & 0x1F) << 59)
                hi >>= 5
            }
            return textLength
        }
    }
}

/// The short code a citizen shows at the counter: 8 Crockford characters
/// (40 random bits), written `XXXX-XXXX`.
public enum PickupCode {
    public static func make<R: RandomNumberGenerator>(using random: inout R) -> String {
        var bits = random.next() as UInt64
        // Nine bytes: a small string, with no allocation.
        return String(unsafeUninitializedCapacity: 9) { out in
            var count = 0
            for index in 0..<8 {
                if index == 4 { out[count] = UInt8(ascii: "-"); count += 1 }
                out[count] = Crockford.alphabet[Int(bits & 0x1F)]
                count += 1
                bits >>= 5
            }
            return count
        }
    }
}
