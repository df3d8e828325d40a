@preconcurrency import Crypto

/// Masks the route a reservation id carries (Crockford.swift, ReservationID).
///
/// A route number names the campaign that holds a reservation, so a lookup
/// by id is one Redis call however many campaigns there are. Masked with a
/// keyed hash of the id's other bits, the route tells nobody without the
/// server's key which campaign an id belongs to, and does not make ids
/// easier to guess: a guess must also hit the 24 masked bits.
public struct RouteCipher: Sendable {
    public static let routeBits = 24
    public static let routeMax: UInt32 = (1 << 24) - 1
    private let keyed: KeyedHMAC

    /// `secret`: the server's citizen key; the mask's key is derived from it,
    /// so ids stay readable for as long as holdings stay keyed.
    public init(secret: [UInt8]) {
        let derived = HMAC<SHA256>.authenticationCode(for: Array("allot reservation route v1".utf8),
                                                      using: SymmetricKey(data: secret))
        keyed = KeyedHMAC(key: Array(derived))
    }

    /// 24 bits of HMAC-SHA256 over the id's time prefix and random bits.
    func mask(high: UInt64, randomLow: UInt64) -> UInt32 {
        var input = [UInt8](repeating: 0, count: 13)
        for index in 0..<8 { input[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index)) }
        for index in 0..<5 { input[8 + index] = UInt8(truncatingIfNeeded: randomLow >> (32 - 8 * index)) }
        let mac = keyed.authenticationCode(for: input)
        return mac.prefix(3).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}
