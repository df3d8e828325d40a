import AllotDomain
import RedisClient

/// The fields of a campaign stream's entries, as reserve.lua and
/// transition.lua write them: `XADD … e <rid>|<record> [a <actor>]`. One
/// field for the reservation (not two): every field is an object hiredis
/// allocates, and a string Redis keeps and sends, per entry. Entries of
/// older servers (`id <rid> r <record>`) are still read.
enum StreamEntryFields {
    /// The reservation id, `|`, and its record after the change (ReservationRecord).
    static let event = Array("e".utf8)
    /// Older servers' two fields: the id, and the record.
    static let id = Array("id".utf8)
    static let record = Array("r".utf8)
    /// Who made the change; absent: the citizen.
    static let actor = Array("a".utf8)
    /// A lottery registration: its id, `|`, and its record (register.lua).
    static let registration = Array("g".utf8)
    /// A waitlist entry: its id, `|`, and its record (waitlist.lua).
    static let waitlist = Array("w".utf8)
}

/// A waitlist entry of a campaign stream: `w` = `<id>|<WaitlistRecord>`.
struct WaitlistEntryView {
    let id: String
    let record: WaitlistRecord

    /// Nil for an entry that is not a waitlist entry, or not a readable one.
    init?(_ entry: RedisReplyView) {
        guard entry.count == 2, let fields = entry[1], fields.count == 2, let name = fields[0]?.bytes,
              name.elementsEqual(StreamEntryFields.waitlist), let value = fields[1]?.bytes,
              let bar = value.firstIndex(of: UInt8(ascii: "|")), bar > 0,
              let record = WaitlistRecord(String(decoding: value[(bar + 1)...], as: UTF8.self)) else { return nil }
        id = String(decoding: value[..<bar], as: UTF8.self)
        self.record = record
    }
}

/// A registration entry of a campaign stream, read in place: `g` =
/// `<id>|<citizen key>|<preferences>|<created ms>`.
struct RegistrationEntryView {
    let id: UnsafeRawBufferPointer
    let citizenKey: UnsafeRawBufferPointer
    let preferences: UnsafeRawBufferPointer
    let createdAtMillis: Int64

    /// Nil for an entry that is not a registration, or not a readable one.
    init?(_ entry: RedisReplyView) {
        guard entry.count == 2, let fields = entry[1], fields.count == 2, let name = fields[0]?.bytes,
              name.elementsEqual(StreamEntryFields.registration), let value = fields[1]?.bytes else { return nil }
        let parts = value.split(separator: UInt8(ascii: "|"), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty,
              let created = Int64(String(decoding: parts[3], as: UTF8.self)) else { return nil }
        id = UnsafeRawBufferPointer(rebasing: parts[0])
        citizenKey = UnsafeRawBufferPointer(rebasing: parts[1])
        preferences = UnsafeRawBufferPointer(rebasing: parts[2])
        createdAtMillis = created
    }
}

/// One entry of an XREADGROUP reply (`[id, [field, value, …]]`), read in
/// place: every field is a slice of the reply, valid while it is.
struct StreamEntryView {
    let streamID: UnsafeRawBufferPointer
    let reservationID: UnsafeRawBufferPointer
    let record: RecordFields
    /// Who made the change; nil: the citizen.
    let actor: UnsafeRawBufferPointer?

    /// The entry's stream id; nil when it has none.
    static func streamID(of entry: RedisReplyView) -> UnsafeRawBufferPointer? {
        guard entry.count == 2, let id = entry[0], id.isString, !id.bytes.isEmpty else { return nil }
        return id.bytes
    }

    init?(_ entry: RedisReplyView) {
        guard let streamID = Self.streamID(of: entry), let fields = entry[1] else { return nil }
        var reservationID: UnsafeRawBufferPointer?
        var record: RecordFields?
        var actor: UnsafeRawBufferPointer?
        var index = 0
        while index + 1 < fields.count {
            guard let name = fields[index]?.bytes, let value = fields[index + 1]?.bytes else { return nil }
            if name.elementsEqual(StreamEntryFields.event), let bar = value.firstIndex(of: UInt8(ascii: "|")) {
                reservationID = UnsafeRawBufferPointer(rebasing: value[..<bar])
                record = RecordFields(UnsafeRawBufferPointer(rebasing: value[(bar + 1)...]))
            }
            else if name.elementsEqual(StreamEntryFields.id) { reservationID = value }
            else if name.elementsEqual(StreamEntryFields.record) { record = RecordFields(value) }
            else if name.elementsEqual(StreamEntryFields.actor) { actor = value }
            index += 2
        }
        guard let reservationID, !reservationID.isEmpty, let record else { return nil }
        self.streamID = streamID
        self.reservationID = reservationID
        self.record = record
        self.actor = actor
    }
}

/// Stream entry ids, `<ms>-<seq>`.
enum StreamID {
    /// The millisecond part, read from the id's bytes (the persister reads
    /// them in place).
    static func millis(bytes: UnsafeRawBufferPointer) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: "-") { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 15 else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    static func millis(_ id: String) -> Int64? {
        var id = id
        return id.withUTF8 { millis(bytes: UnsafeRawBufferPointer($0)) }
    }
}
