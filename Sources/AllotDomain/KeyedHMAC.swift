/// HMAC-SHA256 (RFC 2104, FIPS 180-4) under one key, used for many short
/// messages on the reservation path: every request keys its citizen id and
/// masks its reservation id's route.
///
/// Hand-written rather than swift-crypto's `HMAC<SHA256>` because this is the
/// hot path: a copy of swift-crypto's keyed HMAC allocates four times per
/// message (its BoringSSL context, the digest, the iterators), and hashes
/// four blocks where two do. Here the key's two pads are compressed once, at
/// init; a message of up to 55 bytes then costs one compression for the
/// inner hash and one for the outer, with every buffer on the stack.
/// Tested against swift-crypto and RFC 4231's vectors (KeyedHMACTests).
struct KeyedHMAC: Sendable {
    private let innerState: SHA256State
    private let outerState: SHA256State

    init(key: [UInt8]) {
        // A key longer than a block is hashed first (RFC 2104, step 1).
        var block = key.count > SHA256State.blockBytes ? SHA256State.digest(of: key) : key
        block += [UInt8](repeating: 0, count: SHA256State.blockBytes - block.count)
        var inner = SHA256State.initial, outer = SHA256State.initial
        inner.compress(block.map { $0 ^ 0x36 })
        outer.compress(block.map { $0 ^ 0x5C })
        innerState = inner
        outerState = outer
    }

    /// The 32-byte code of `message`.
    func authenticationCode(for message: UnsafeRawBufferPointer) -> SHA256Digest {
        var inner = innerState
        let innerDigest = inner.finish(message, bytesBefore: SHA256State.blockBytes)
        var outer = outerState
        return withUnsafeBytes(of: innerDigest.bigEndianBytes) {
            outer.finish($0, bytesBefore: SHA256State.blockBytes)
        }
    }

    func authenticationCode(for message: [UInt8]) -> SHA256Digest {
        message.withUnsafeBytes { authenticationCode(for: $0) }
    }
}

/// A SHA-256 digest as its eight big-endian words.
struct SHA256Digest: Sendable {
    var words: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    /// The digest's 32 bytes, in order, without an array.
    var bigEndianBytes: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) {
        (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian,
         words.4.bigEndian, words.5.bigEndian, words.6.bigEndian, words.7.bigEndian)
    }

    var bytes: [UInt8] { withUnsafeBytes(of: bigEndianBytes) { Array($0) } }
}

/// SHA-256's chaining state and compression function.
struct SHA256State: Sendable {
    static let blockBytes = 64
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    static let initial = SHA256State(h: (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a,
                                         0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19))

    static func digest(of message: [UInt8]) -> [UInt8] {
        var state = initial
        return message.withUnsafeBytes { state.finish($0, bytesBefore: 0) }.bytes
    }

    mutating func compress(_ block: [UInt8]) {
        precondition(block.count == Self.blockBytes)
        block.withUnsafeBytes { compress($0.baseAddress!) }
    }

    /// Hashes `message` as the tail of a message whose first `bytesBefore`
    /// bytes (whole blocks) this state has absorbed, padding included.
    mutating func finish(_ message: UnsafeRawBufferPointer, bytesBefore: Int) -> SHA256Digest {
        precondition(bytesBefore % Self.blockBytes == 0)
        var offset = 0
        while message.count - offset >= Self.blockBytes {
            compress(message.baseAddress! + offset)
            offset += Self.blockBytes
        }
        let rest = message.count - offset
        let bitCount = UInt64(bytesBefore + message.count) * 8
        // The last one or two blocks: the rest, 0x80, zeros, the bit count.
        withUnsafeTemporaryAllocation(byteCount: 2 * Self.blockBytes, alignment: 8) { tail in
            tail.initializeMemory(as: UInt8.self, repeating: 0)
            if rest > 0 { tail.baseAddress!.copyMemory(from: message.baseAddress! + offset, byteCount: rest) }
            tail[rest] = 0x80
            let blocks = rest + 9 <= Self.blockBytes ? 1 : 2
            let end = blocks * Self.blockBytes
            for index in 0..<8 { tail[end - 1 - index] = UInt8(truncatingIfNeeded: bitCount >> (8 * index)) }
            for block in 0..<blocks { compress(tail.baseAddress! + block * Self.blockBytes) }
        }
        return SHA256Digest(words: h)
    }

    private mutating func compress(_ block: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            for t in 0..<16 { w[t] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
            for t in 16..<64 {
                let s0 = w[t - 15].rotatedRight(7) ^ w[t - 15].rotatedRight(18) ^ (w[t - 15] >> 3)
                let s1 = w[t - 2].rotatedRight(17) ^ w[t - 2].rotatedRight(19) ^ (w[t - 2] >> 10)
                w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = h
            SHA256State.roundConstants.withUnsafeBufferPointer { k in
                for t in 0..<64 {
                    let s1 = e.rotatedRight(6) ^ e.rotatedRight(11) ^ e.rotatedRight(25)
                    let choice = (e & f) ^ (~e & g)
                    let temp1 = hh &+ s1 &+ choice &+ k[t] &+ w[t]
                    let s0 = a.rotatedRight(2) ^ a.rotatedRight(13) ^ a.rotatedRight(22)
                    let majority = (a & b) ^ (a & c) ^ (b & c)
                    let temp2 = s0 &+ majority
                    hh = g; g = f; f = e; e = d &+ temp1
                    d = c; c = b; b = a; a = temp1 &+ temp2
                }
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
        }
    }

    private static let roundConstants: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]
}

private extension UInt32 {
    func rotatedRight(_ count: UInt32) -> UInt32 { (self >> count) | (self << (32 - count)) }
}
