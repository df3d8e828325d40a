import EventHTTP

/// The parts of an answer the harness acts on, read without a JSON parser
/// (it runs beside the server on the same cores: its own cost matters).
struct Answer {
    let status: Int
    let code: String?
    let id: String?
    /// A 200 naming a reservation (a waitlist entry once offered).
    let reservationID: String?
    let retryAfterSeconds: Int?

    init(_ response: HTTPClientConnection.Response) {
        status = response.status
        code = status >= 400 ? Self.stringField("code", in: response.body) : nil
        id = status == 201 ? Self.stringField("id", in: response.body) : nil
        reservationID = status == 200 ? Self.stringField("reservation_id", in: response.body) : nil
        retryAfterSeconds = response.retryAfterSeconds
    }

    /// "201", "409 slot_full", "0 transport": the key outcomes are counted by.
    var label: String {
        switch status {
        case 0: "0 transport"
        case 200..<300: String(status)
        default: "\(status) \(code ?? "-")"
        }
    }

    /// The value of `"name": "…"` at the top of a flat JSON object.
    static func stringField(_ name: StaticString, in body: [UInt8]) -> String? {
        let key = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        let quote = UInt8(ascii: "\"")
        guard body.count > key.count + 2 else { return nil }
        var index = 0
        while index + key.count + 2 <= body.count {
            if body[index] == quote, body[index + key.count + 1] == quote,
               body[(index + 1)..<(index + 1 + key.count)].elementsEqual(key) {
                var cursor = index + key.count + 2
                while cursor < body.count, body[cursor] == UInt8(ascii: " ") || body[cursor] == UInt8(ascii: ":") { cursor += 1 }
                guard cursor < body.count, body[cursor] == quote else { return nil }
                let start = cursor + 1
                guard let end = body[start...].firstIndex(of: quote) else { return nil }
                return String(decoding: body[start..<end], as: UTF8.self)
            }
            index += 1
        }
        return nil
    }
}
