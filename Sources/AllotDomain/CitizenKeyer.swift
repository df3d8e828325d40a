/// Turns a normalised citizen id into the only form Allot keeps: a keyed hash
/// (HMAC-SHA256 under the server's citizen key). The raw id goes no further
/// than this call.
public struct CitizenKeyer: Sendable {
    /// Bytes of the HMAC kept (128 bits: collisions among 10⁹ citizens stay
    /// below 10⁻²⁰, and Redis keeps half the bytes of the full digest).
    public static let keyBytes = 16
    /// The HMAC with the key's pads already compressed (KeyedHMAC.swift).
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
        var id = normalizedID
        let code = id.withUTF8 { keyed.authenticationCode(for: UnsafeRawBufferPointer($0)) }
        return withUnsafeBytes(of: code.bigEndianBytes) { Hex.encode(UnsafeRawBufferPointer(rebasing: $0.prefix(Self.keyBytes))) }
    }
}

public enum Hex {
    static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Into one string, written in place (one allocation past 15 bytes).
    public static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: 2 * bytes.count) { out in
            for (index, byte) in bytes.enumerated() {
                out[2 * index] = digits[Int(byte >> 4)]
                out[2 * index + 1] = digits[Int(byte & 0x0F)]
            }
            return 2 * bytes.count
        }
    }

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
