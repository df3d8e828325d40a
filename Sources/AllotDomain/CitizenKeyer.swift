@preconcurrency import Crypto

/// Turns a normalised citizen id into the only form Allot keeps: a keyed hash
/// (HMAC-SHA256 under the server's citizen key). The raw id goes no further
/// than this call.
public struct CitizenKeyer: Sendable {
    /// Bytes of the HMAC kept (128 bits: collisions among 10⁹ citizens stay
    /// below 10⁻²⁰, and Redis keeps half the bytes of the full digest).
    public static let keyBytes = 16
    /// The HMAC with the key already absorbed: each use copies it (a few
    /// dozen bytes) instead of hashing the key's two pads again.
    private let keyed: KeyedHMAC

    public init(secret: [UInt8]) {
        precondition(secret.count >= 32, "citizen key must have at least 256 bits")
        keyed = KeyedHMAC(key: secret)
    }

    /// For published test vectors, whose keys are shorter than ours.
    init(unsafeTestSecret secret: [UInt8]) {
        keyed = KeyedHMAC(key: secret)
    }

    /// Lower-case hex of the truncated HMAC: 32 characters.
    public func citizenKey(normalizedID: String) -> String {
        Hex.encode(keyed.authenticationCode(for: Array(normalizedID.utf8)).prefix(Self.keyBytes))
    }
}

/// HMAC-SHA256 keyed once, used many times (a copy per message).
struct KeyedHMAC: @unchecked Sendable {
    // Never mutated after init: each use works on its own copy.
    private let initial: HMAC<SHA256>

    init(key: [UInt8]) { initial = HMAC<SHA256>(key: SymmetricKey(data: key)) }

    func authenticationCode(for message: [UInt8]) -> HashedAuthenticationCode<SHA256> {
        var mac = initial
        mac.update(data: message)
        return mac.finalize()
    }
}

public enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
