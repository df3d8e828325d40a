import Crypto
import Foundation

/// Short texts the server hands a browser and must get back unaltered and
/// unread: a booking's check-your-answers token (it holds the citizen key),
/// an operator's session cookie (it names the token). Encrypted and
/// authenticated (ChaCha20-Poly1305) under a key derived by HKDF-SHA256 from
/// the server's secret and a purpose, so a text made for one purpose is
/// refused by another, and none can be read or made without the secret.
/// The fields include an expiry. Every node of a deployment shares the
/// secret, so any node opens what another sealed.
public struct SealedFields: Sendable {
    /// Separates the fields: a byte no field may hold (they are visible
    /// ASCII or UTF-8 text).
    static let separator: UInt8 = 0x1F
    /// Bounds what `open` reads: the pages' texts are far shorter.
    public static let textBytesMax = 1024
    /// The derived key's bytes (swift-crypto's SymmetricKey is not Sendable).
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(secret: [UInt8], purpose: String) {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: secret), salt: Array("allot".utf8),
                                             info: Array("allot sealed \(purpose) v1".utf8), outputByteCount: 32)
        keyBytes = derived.withUnsafeBytes { Array($0) }
    }

    /// `fields` sealed until `expiresAtMillis`; nil when a field holds the separator.
    public func seal(_ fields: [String], expiresAtMillis: Int64) -> String? {
        guard fields.allSatisfy({ !$0.utf8.contains(Self.separator) }),
              let box = try? ChaChaPoly.seal(Array(([String(expiresAtMillis)] + fields).joined(separator: "\u{1F}").utf8), using: key)
        else { return nil }
        return Base64URL.encode(Array(box.combined))
    }

    /// The fields of a text `seal` made with this key and purpose, and its
    /// expiry, if it has not expired at `nowMillis`; nil for anything else.
    public func open(_ text: String, nowMillis: Int64) -> (fields: [String], expiresAtMillis: Int64)? {
        guard text.utf8.count <= Self.textBytesMax, let combined = Base64URL.decode(Substring(text)),
              let box = try? ChaChaPoly.SealedBox(combined: combined), let payload = try? ChaChaPoly.open(box, using: key),
              let text = String(validating: Array(payload), as: UTF8.self) else { return nil }
        let fields = text.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        guard let expires = fields.first.flatMap({ Int64($0) }), nowMillis < expires else { return nil }
        return (Array(fields.dropFirst()), expires)
    }
}

/// RFC 4648 §5 base64 without padding.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        // Only the canonical text of the bytes: the last character's unused
        // bits must be zero, so one set of bytes has one text.
        guard let bytes = Data(base64Encoded: standard).map(Array.init), encode(bytes) == text else { return nil }
        return bytes
    }
}
