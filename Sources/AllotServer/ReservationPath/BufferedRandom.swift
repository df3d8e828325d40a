import Glibc

/// The kernel's CSPRNG, read 4 KiB at a time: reservation ids and pickup
/// codes take three 64-bit draws per request, and one getrandom(2) per draw
/// showed in the profile. Owned by one loop; not shared between threads.
struct BufferedRandom: RandomNumberGenerator {
    static let bufferBytes = 4096
    private var buffer = [UInt64](repeating: 0, count: bufferBytes / 8)
    private var position = bufferBytes / 8

    mutating func next() -> UInt64 {
        if position == buffer.count { refill() }
        defer { position += 1 }
        return buffer[position]
    }

    private mutating func refill() {
        // glibc ≥ 2.36: arc4random_buf reads the kernel's getrandom(2).
        buffer.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        position = 0
    }
}
