/// `held`: taken until `expires_at`, then confirmed by the citizen or
/// `expired` (a campaign with holds, issue 14).
public enum ReservationStatus: String, Sendable {
    case held, confirmed, cancelled, redeemed, expired
}

/// A citizen's booking of one place (API.md `Reservation`).
public struct Reservation: Equatable, Sendable {
    public var id: ReservationID
    public var campaignID: String
    public var slotID: String
    public var siteID: String
    public var status: ReservationStatus
    public var code: String
    public var createdAtMillis: Int64
    /// A reservation made as a hold: when the hold ends unless confirmed.
    public var expiresAtMillis: Int64?

    public init(id: ReservationID, campaignID: String, slotID: String, siteID: String,
                status: ReservationStatus, code: String, createdAtMillis: Int64, expiresAtMillis: Int64? = nil) {
        self.id = id
        self.campaignID = campaignID
        self.slotID = slotID
        self.siteID = siteID
        self.status = status
        self.code = code
        self.createdAtMillis = createdAtMillis
        self.expiresAtMillis = expiresAtMillis
    }

    /// As it stands at `nowMillis`: a hold past its expiry has ended, even
    /// before the sweep (expire.lua) has written so; a confirm would find
    /// the same.
    public func effective(nowMillis: Int64) -> Reservation {
        guard status == .held, let expiresAtMillis, nowMillis >= expiresAtMillis else { return self }
        var ended = self
        ended.status = .expired
        return ended
    }

    public var json: [UInt8] {
        var json = JSONWriter(capacity: 256)
        write(to: &json)
        return json.bytes
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("id", id.text)
        json.field("campaign_id", campaignID)
        json.field("slot_id", slotID)
        json.field("site_id", siteID)
        json.field("status", status.rawValue)
        json.field("code", code)
        json.field("created_at", timestampMillis: createdAtMillis)
        // While held, and once expired: the deadline it had.
        if let expiresAtMillis, status == .held || status == .expired { json.field("expires_at", timestampMillis: expiresAtMillis) }
        json.endObject()
    }
}

/// `POST /v1/campaigns/{cid}/reservations` body.
public struct ReserveRequest: Equatable, Sendable {
    public static let citizenIDBytesMax = 128
    public let citizenID: String
    public let slotID: String

    public static func decode(_ body: [UInt8]) throws(Problem) -> ReserveRequest { try decode(body[...]) }

    /// (A slice: the body where the request was read.)
    public static func decode(_ body: ArraySlice<UInt8>) throws(Problem) -> ReserveRequest {
        if let common = decodeCommonShape(body) { return common }
        let fields = try Fields.parse(Array(body))
        try fields.allowOnly(["citizen_id", "slot_id"])
        return ReserveRequest(citizenID: try fields.string("citizen_id", bytesMax: citizenIDBytesMax),
                              slotID: try fields.identifier("slot_id"))
    }

    /// The body nearly every client sends, `{"citizen_id":"…","slot_id":"…"}`
    /// (either order, any JSON whitespace), read without building a JSON
    /// tree: the hot path's largest allocator. It accepts only what the full
    /// parser accepts with the same result: values of printable ASCII without
    /// escapes, that pass the same checks. Anything else (escapes, other
    /// members, a value the checks refuse) is left to the full parser, which
    /// names the field at fault.
    static func decodeCommonShape(_ body: ArraySlice<UInt8>) -> ReserveRequest? {
        body.withUnsafeBufferPointer { bytes -> ReserveRequest? in
            let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
            var index = 0
            func skipWhitespace() {
                while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
            }
            func take(_ byte: UInt8) -> Bool {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == byte else { return false }
                index += 1
                return true
            }
            func string() -> Range<Int>? {
                guard take(quote) else { return nil }
                let start = index
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == quote {
                        index += 1
                        return start..<(index - 1)
                    }
                    guard byte >= 0x20, byte < 0x7F, byte != backslash else { return nil }
                    index += 1
                }
                return nil
            }
            func named(_ range: Range<Int>, _ name: StaticString) -> Bool {
                name.withUTF8Buffer { $0.elementsEqual(bytes[range]) }
            }
            var citizen: Range<Int>?, slot: Range<Int>?
            guard take(UInt8(ascii: "{")) else { return nil }
            for member in 0..<2 {
                if member == 1 { guard take(UInt8(ascii: ",")) else { return nil } }
                guard let name = string(), take(UInt8(ascii: ":")), let value = string() else { return nil }
                if citizen == nil, named(name, "citizen_id") { citizen = value }
                else if slot == nil, named(name, "slot_id") { slot = value }
                else { return nil }
            }
            guard take(UInt8(ascii: "}")) else { return nil }
            skipWhitespace()
            guard index == bytes.count, let citizen, let slot, (1...citizenIDBytesMax).contains(citizen.count) else { return nil }
            let slotID = String(decoding: bytes[slot], as: UTF8.self)
            guard OperatorID.isValid(slotID) else { return nil }
            return ReserveRequest(citizenID: String(decoding: bytes[citizen], as: UTF8.self), slotID: slotID)
        }
    }
}
