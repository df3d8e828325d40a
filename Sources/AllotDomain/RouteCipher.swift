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
        let derived = KeyedHMAC(key: secret).authenticationCode(for: Array("allot reservation route v1".utf8))
        keyed = KeyedHMAC(key: derived.bytes)
    }

    /// 24 bits of HMAC-SHA256 over the id's time prefix and random bits.
    func mask(high: UInt64, randomLow: UInt64) -> UInt32 {
        // 13 bytes: the 8 of `high`, then the low 40 bits of `randomLow`, big-endian.
        let input = (high.bigEndian, (randomLow << 24).bigEndian)
        let mac = withUnsafeBytes(of: input) { keyed.authenticationCode(for: UnsafeRawBufferPointer(rebasing: $0.prefix(13))) }
        return mac.words.0 >> 8
    }
}
