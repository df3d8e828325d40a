/// Reads the members of a JSON object, with errors that name the field.
public struct Fields: Sendable {
    let members: [String: JSONValue]
    let prefix: String

    public init(_ value: JSONValue, prefix: String = "") throws(Problem) {
        guard case .object(let members) = value else {
            throw prefix.isEmpty ? Problem.invalidJSON("body must be a JSON object")
                                 : Problem.invalidField(String(prefix.dropLast()), "must be an object")
        }
        self.members = members
        self.prefix = prefix
    }

    public static func parse(_ body: [UInt8]) throws(Problem) -> Fields {
        let value: JSONValue
        do { value = try JSONParser.parse(body) } catch { throw Problem.invalidJSON("\(error.message) at byte \(error.offset)") }
        return try Fields(value)
    }

    public func has(_ name: String) -> Bool { members[name] != nil }

    public func string(_ name: String, bytesMax: Int = 256) throws(Problem) -> String {
        guard let value = members[name] else { throw Problem.invalidField(prefix + name, "is required") }
        guard case .string(let text) = value else { throw Problem.invalidField(prefix + name, "must be a string") }
        guard !text.isEmpty, text.utf8.count <= bytesMax else {
            throw Problem.invalidField(prefix + name, "must be 1 to \(bytesMax) bytes")
        }
        return text
    }

    public func optionalString(_ name: String, bytesMax: Int = 256) throws(Problem) -> String? {
        guard has(name) else { return nil }
        return try string(name, bytesMax: bytesMax)
    }

    /// A string people read (a name, an address): no control characters
    /// (U+0000–U+001F, U+007F), which would cut it short in one store and
    /// not in another, or break a terminal or a CSV reader.
    public func text(_ name: String, bytesMax: Int) throws(Problem) -> String {
        let text = try string(name, bytesMax: bytesMax)
        guard !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw Problem.invalidField(prefix + name, "must not contain control characters")
        }
        return text
    }

    public func optionalText(_ name: String, bytesMax: Int) throws(Problem) -> String? {
        guard has(name) else { return nil }
        return try text(name, bytesMax: bytesMax)
    }

    public func identifier(_ name: String) throws(Problem) -> String {
        let text = try string(name, bytesMax: OperatorID.bytesMax)
        guard OperatorID.isValid(text) else { throw Problem.invalidField(prefix + name, "must match ^[a-z0-9][a-z0-9_-]{0,63}$") }
        return text
    }

    public func integer(_ name: String, in range: ClosedRange<Int>) throws(Problem) -> Int {
        guard let value = members[name] else { throw Problem.invalidField(prefix + name, "is required") }
        guard case .number(let number) = value, number == number.rounded(), abs(number) < 1e15,
              range.contains(Int(number)) else {
            throw Problem.invalidField(prefix + name, "must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(number)
    }

    public func optionalInteger(_ name: String, in range: ClosedRange<Int>) throws(Problem) -> Int? {
        guard has(name) else { return nil }
        return try integer(name, in: range)
    }

    public func number(_ name: String) throws(Problem) -> Double {
        guard let value = members[name] else { throw Problem.invalidField(prefix + name, "is required") }
        guard case .number(let number) = value else { throw Problem.invalidField(prefix + name, "must be a number") }
        return number
    }

    public func timestamp(_ name: String) throws(Problem) -> Int64 {
        let text = try string(name, bytesMax: 40)
        guard let millis = Timestamp.parse(text) else {
            throw Problem.invalidField(prefix + name, "must be an RFC 3339 time, e.g. 2026-03-01T00:00:00Z")
        }
        return millis
    }

    public func optionalTimestamp(_ name: String) throws(Problem) -> Int64? {
        guard has(name) else { return nil }
        return try timestamp(name)
    }

    /// The elements of an array member, at most `countMax` of them.
    public func array(_ name: String, countMax: Int) throws(Problem) -> [JSONValue] {
        guard let value = members[name] else { throw Problem.invalidField(prefix + name, "is required") }
        guard case .array(let elements) = value else { throw Problem.invalidField(prefix + name, "must be an array") }
        guard elements.count <= countMax else { throw Problem.invalidField(prefix + name, "has more than \(countMax) elements") }
        return elements
    }

    public func object(_ name: String) throws(Problem) -> Fields? {
        guard let value = members[name], value != .null else { return nil }
        return try Fields(value, prefix: prefix + name + ".")
    }

    /// Refuses members the contract does not define, so a typo is not ignored.
    public func allowOnly(_ names: Set<String>) throws(Problem) {
        for name in members.keys where !names.contains(name) {
            throw Problem.invalidField(prefix + name, "is not a known field")
        }
    }
}

/// Settings kept as their contract's JSON (in SQLite and in Redis), and
/// read back through the same decoder that checks an operator's.
public protocol StoredAsJSON {
    static func decode(_ fields: Fields) throws(Problem) -> Self
    func write(to json: inout JSONWriter)
}

extension StoredAsJSON {
    public var json: String {
        var json = JSONWriter(capacity: 96)
        write(to: &json)
        return json.text
    }

    /// Settings a store holds as `json` wrote them; nil when they do not
    /// parse or no longer pass (the caller fails closed).
    public static func stored(_ text: String) -> Self? {
        guard let fields = try? Fields.parse(Array(text.utf8)) else { return nil }
        return try? decode(fields)
    }
}
