/// A command in Redis's wire format (a RESP array of bulk strings), written
/// straight into one byte buffer: for the hot path, where an array of
/// argument strings (each key built by concatenation) and hiredis's own
/// formatting cost several allocations per command. An argument may be given
/// in pieces (a key's prefix and its variable tail) and is sent as one.
public struct RedisCommand: Sendable {
    public private(set) var bytes: [UInt8] = []
    private let argumentCount: Int
    private var appended = 0

    /// At least two arguments: hiredis 0.14 reads one byte past a
    /// formatted command of one argument (its own formatter ends each
    /// command with a NUL that the length does not count; this one does not).
    public init(argumentCount: Int, bytesCapacity: Int = 512) {
        precondition(argumentCount >= 2, "a formatted command needs at least two arguments")
        self.argumentCount = argumentCount
        bytes.reserveCapacity(bytesCapacity)
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        appendLineEnd()
    }

    /// Whether every argument announced at init has been appended.
    public var isComplete: Bool { appended == argumentCount }

    public mutating func append(_ argument: String) {
        begin(length: argument.utf8.count)
        appendUTF8(argument)
        end()
    }

    /// One argument made of two pieces, `first + second`.
    public mutating func append(_ first: String, _ second: String) {
        append(first, second, "")
    }

    /// One argument made of three pieces.
    public mutating func append(_ first: String, _ second: String, _ third: String) {
        begin(length: first.utf8.count + second.utf8.count + third.utf8.count)
        appendUTF8(first)
        appendUTF8(second)
        appendUTF8(third)
        end()
    }

    public mutating func append(_ value: Int) {
        begin(length: Self.decimalLength(value))
        appendDecimal(value)
        end()
    }

    // MARK: the wire format

    private mutating func begin(length: Int) {
        precondition(appended < argumentCount, "more arguments than announced")
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(length)
        appendLineEnd()
    }

    private mutating func appendUTF8(_ text: String) {
        // Native strings are contiguous UTF-8: one copy. A bridged one goes
        // byte by byte.
        if text.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil {
            bytes.append(contentsOf: text.utf8)
        }
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
        // Lengths and counts are small: no division for one or two digits.
        if value >= 0, value < 100 {
            if value >= 10 { bytes.append(UInt8(truncatingIfNeeded: 0x30 + value / 10)) }
            bytes.append(UInt8(truncatingIfNeeded: 0x30 + value % 10))
            return
        }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        let magnitude = value.magnitude
        var divisor: UInt = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: 0x30 + magnitude / divisor % 10))
            divisor /= 10
        }
    }

    private static func decimalLength(_ value: Int) -> Int {
        var length = value < 0 ? 2 : 1
        var rest = value.magnitude
        while rest >= 10 { rest /= 10; length += 1 }
        return length
    }
}
