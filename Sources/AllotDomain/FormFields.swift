/// A form's fields as a browser posts them
/// (`application/x-www-form-urlencoded`): the citizen pages' and the
/// dashboard's forms. Bounded: at most `fieldsMax` fields are read.
public struct FormFields: Sendable {
    public static let fieldsMax = 16
    private var fields: [(name: String, value: String)] = []

    /// Nil when the body is not such a form: a bad `%` escape, bytes that
    /// are not UTF-8 once decoded, or more than `fieldsMax` fields.
    public init?(_ body: ArraySlice<UInt8>) {
        guard !body.isEmpty else { return }
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            guard fields.count < Self.fieldsMax else { return nil }
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            guard let name = Self.decode(pair[..<(equals ?? pair.endIndex)]),
                  let value = Self.decode(equals.map { pair[pair.index(after: $0)...] } ?? []) else { return nil }
            fields.append((name, value))
        }
    }

    /// The first value of `name`; nil when absent.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// `+` is a space and `%XY` a byte; the bytes must be UTF-8.
    static func decode(_ text: ArraySlice<UInt8>) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < text.endIndex, let high = hexValue(text[index + 1]), let low = hexValue(text[index + 2]) else { return nil }
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
