/// A command in Redis's wire format (a RESP array of bulk strings), written
/// straight into one byte buffer: for the hot path, where an array of
/// argument strings (each key built by concatenation) and hiredis's own
/// formatting cost several allocations per command. An argument may be given
/// in pieces (a key's prefix and its variable tail) and is sent as one.
public struct RedisCommand: Sendable {
    public private(set) var bytes: [UInt8] = []
    private let argumentCount: Int
    private var appended = 0

    public init(argumentCount: Int, bytesCapacity: Int = 512) {
        precondition(argumentCount > 0)
        self.argumentCount = argumentCount
        bytes.reserveCapacity(bytesCapacity)
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        appendLineEnd()
    }

    /// Whether every argument announced at init has been appended.
    public var isComplete: Bool { appended == argumentCount }

    public mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { begin(length: $0.count); bytes.append(contentsOf: $0) }
        end()
    }

    /// One argument made of two pieces, `first + second`.
    public mutating func append(_ first: String, _ second: String) {
        append(first, second, "")
    }

    /// One argument made of three pieces.
    public mutating func append(_ first: String, _ second: String, _ third: String) {
        var first = first, second = second, third = third
        begin(length: first.utf8.count + second.utf8.count + third.utf8.count)
        first.withUTF8 { bytes.append(contentsOf: $0) }
        second.withUTF8 { bytes.append(contentsOf: $0) }
        third.withUTF8 { bytes.append(contentsOf: $0) }
        end()
    }

    public mutating func append(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int
        let count = withUnsafeMutableBytes(of: &digits) { Self.writeDecimal(value, into: $0) }
        begin(length: count)
        withUnsafeBytes(of: &digits) { bytes.append(contentsOf: $0.prefix(count)) }
        end()
    }

    // MARK: the wire format

    private mutating func begin(length: Int) {
        precondition(appended < argumentCount, "more arguments than announced")
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(length)
        appendLineEnd()
    }

    private mutating func end() {
        appendLineEnd()
        appended += 1
    }

    private mutating func appendLineEnd() {
        bytes.append(0x0D)
        bytes.append(0x0A)
    }

    private mutating func appendDecimal(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let count = withUnsafeMutableBytes(of: &digits) { Self.writeDecimal(value, into: $0) }
        withUnsafeBytes(of: &digits) { bytes.append(contentsOf: $0.prefix(count)) }
    }

    /// `value` in decimal at the start of `buffer` (at least 20 bytes); its length.
    private static func writeDecimal(_ value: Int, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var magnitude = value.magnitude
        var reversed = 0
        repeat {
            buffer[reversed] = UInt8(truncatingIfNeeded: 0x30 + magnitude % 10)
            magnitude /= 10
            reversed += 1
        } while magnitude > 0
        if value < 0 { buffer[reversed] = UInt8(ascii: "-"); reversed += 1 }
        var low = 0, high = reversed - 1
        while low < high { buffer.swapAt(low, high); low += 1; high -= 1 }
        return reversed
    }
}
