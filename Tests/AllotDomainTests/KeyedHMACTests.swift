import Crypto
import Testing
@testable import AllotDomain

/// The hand-written HMAC-SHA256 of the hot path, against RFC 4231 and
/// against swift-crypto for keys and messages of every length that matters
/// (padding changes at 55/56 and 64 bytes; keys longer than a block are
/// hashed first).
@Suite struct KeyedHMACTests {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func rfc4231Vectors() {
        // Test cases 1, 2 and 6 (a 131-byte key, longer than a block).
        let cases: [([UInt8], String, String)] = [
            ([UInt8](repeating: 0x0b, count: 20), "Hi There",
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), "what do ya want for nothing?",
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First",
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ]
        for (key, message, expected) in cases {
            #expect(hex(KeyedHMAC(key: key).authenticationCode(for: Array(message.utf8)).bytes) == expected)
        }
    }

    @Test func matchesSwiftCryptoForEveryLength() {
        var generator = SystemRandomNumberGenerator()
        for keyLength in [1, 32, 63, 64, 65, 200] {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let ours = KeyedHMAC(key: key)
            for messageLength in 0...200 {
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let theirs = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(ours.authenticationCode(for: message).bytes == theirs, "key \(keyLength) B, message \(messageLength) B")
            }
        }
    }

    @Test func routeMaskIsTheFirstThreeBytesOfTheCode() {
        let secret = [UInt8](repeating: 7, count: 32)
        let derived = Array(HMAC<SHA256>.authenticationCode(for: Array("allot reservation route v1".utf8),
                                                            using: SymmetricKey(data: secret)))
        let high: UInt64 = 0x0123_4567_89ab_cdef, low: UInt64 = 0xff_1122_3344_5566
        var input = [UInt8](repeating: 0, count: 13)
        for index in 0..<8 { input[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * index)) }
        for index in 0..<5 { input[8 + index] = UInt8(truncatingIfNeeded: low >> (32 - 8 * index)) }
        let mac = Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: derived)))
        let expected = mac.prefix(3).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        #expect(RouteCipher(secret: secret).mask(high: high, randomLow: low) == expected)
    }
}
