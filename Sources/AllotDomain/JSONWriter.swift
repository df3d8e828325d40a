/// Builds JSON text by appending; used for every response body so the hot
/// path renders without Codable's reflection.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    /// Whether the next value at each open level needs a comma first.
    private var needsComma = CommaStack()

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// Lets `write` append JSON to `buffer`, which the writer holds for the
    /// time of the writing: no buffer of its own.
    public static func appending(to buffer: inout [UInt8], _ write: (inout JSONWriter) -> Void) {
        var writer = JSONWriter(capacity: 0)
        swap(&writer.bytes, &buffer)
        write(&writer)
        swap(&writer.bytes, &buffer)
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.push() }
    public mutating func endObject() { needsComma.pop(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.push() }
    public mutating func endArray() { needsComma.pop(); bytes.append(UInt8(ascii: "]")) }

    public mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        needsComma.top = false
    }

    public mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma.top = false
    }

    public mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Most values need no escape: one copy.
            if utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
                bytes.append(contentsOf: utf8)
            } else {
                appendEscaped(utf8)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(Hex.digits[Int(byte >> 4)])
                bytes.append(Hex.digits[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
    }

    public mutating func number(_ value: Int) { separate(); bytes.append(contentsOf: String(value).utf8) }

    public mutating func number(_ value: Double) {
        separate()
        if value == value.rounded(), abs(value) < 1e15 {
            bytes.append(contentsOf: Array(String(Int64(value)).utf8))
        } else {
            bytes.append(contentsOf: Array(String(value).utf8))
        }
    }

    public mutating func bool(_ value: Bool) { separate(); bytes.append(contentsOf: Array((value ? "true" : "false").utf8)) }
    /// Embeds JSON this program wrote itself (never text from a client).
    public mutating func raw(_ json: String) { separate(); bytes.append(contentsOf: Array(json.utf8)) }
    public mutating func null() { separate(); bytes.append(contentsOf: Array("null".utf8)) }

    public mutating func field(_ name: StaticString, _ value: String) { key(name); string(value) }
    public mutating func field(_ name: StaticString, _ value: Int) { key(name); number(value) }

    /// `"name":"2026-03-01T00:00:01.234Z"`, written in place (no string made).
    public mutating func field(_ name: StaticString, timestampMillis: Int64) {
        key(name)
        separate()
        bytes.append(UInt8(ascii: "\""))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Timestamp.textBytesMax) { text in
            let count = Timestamp.write(millis: timestampMillis, into: text)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text.prefix(count)))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func separate() {
        if needsComma.top { bytes.append(UInt8(ascii: ",")) }
        needsComma.top = true
    }
}

/// A stack of flags, one per open object or array, in the bits of one word
/// (an array of flags would cost an allocation per body written); levels
/// past 63 spill into an array.
private struct CommaStack {
    private var bits: UInt64 = 0
    private var depth = 0
    private var spilled: [Bool] = []
    private static let inlineLevels = 63

    var top: Bool {
        get { depth < Self.inlineLevels ? bits & (1 << depth) != 0 : spilled[depth - Self.inlineLevels] }
        set {
            if depth < Self.inlineLevels {
                if newValue { bits |= 1 << depth } else { bits &= ~(1 << depth) }
            } else {
                spilled[depth - Self.inlineLevels] = newValue
            }
        }
    }

    mutating func push() {
        depth += 1
        if depth >= Self.inlineLevels { spilled.append(false) } else { bits &= ~(1 << depth) }
    }

    mutating func pop() {
        precondition(depth > 0, "closed more than was opened")
        if depth >= Self.inlineLevels { spilled.removeLast() }
        depth -= 1
    }
}
