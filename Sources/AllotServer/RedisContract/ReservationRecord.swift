import AllotDomain

/// A reservation as Redis keeps it, as its field of the campaign's records
/// hash and in each stream entry:
/// `status|slot|site|code|citizen key|created ms|updated ms`, then
/// `|expires ms` for one made as a hold (holds.lua reads it too). One string
/// rather than a hash per reservation: the reservation script writes it with
/// one HSET into a hash that already exists, the hottest write in the system. No field can hold a `|` (ids,
/// codes and keys have fixed alphabets).
struct ReservationRecord: Equatable {
    let status: ReservationStatus
    let slot: String
    let site: String
    let code: String
    let citizenKey: String
    let createdAtMillis: Int64
    let updatedAtMillis: Int64
    /// A hold's expiry, kept once the hold has ended.
    let expiresAtMillis: Int64?

    init?(_ text: String) {
        var text = text
        guard let record = text.withUTF8({ bytes in
            RecordFields(UnsafeRawBufferPointer(bytes)).map { fields in
                ReservationRecord(status: fields.status, slot: String(decoding: fields.slot, as: UTF8.self),
                                  site: String(decoding: fields.site, as: UTF8.self),
                                  code: String(decoding: fields.code, as: UTF8.self),
                                  citizenKey: String(decoding: fields.citizenKey, as: UTF8.self),
                                  createdAtMillis: fields.createdAtMillis, updatedAtMillis: fields.updatedAtMillis,
                                  expiresAtMillis: fields.expiresAtMillis)
            }
        }) else { return nil }
        self = record
    }

    init(status: ReservationStatus, slot: String, site: String, code: String, citizenKey: String,
         createdAtMillis: Int64, updatedAtMillis: Int64, expiresAtMillis: Int64? = nil) {
        self.status = status
        self.slot = slot
        self.site = site
        self.code = code
        self.citizenKey = citizenKey
        self.createdAtMillis = createdAtMillis
        self.updatedAtMillis = updatedAtMillis
        self.expiresAtMillis = expiresAtMillis
    }

    /// The record as Redis keeps it (what `init?(_:)` reads).
    var text: String {
        ([status.rawValue, slot, site, code, citizenKey, String(createdAtMillis), String(updatedAtMillis)]
            + (expiresAtMillis.map { [String($0)] } ?? [])).joined(separator: "|")
    }

    func reservation(id: ReservationID, campaign: String) -> Reservation {
        Reservation(id: id, campaignID: campaign, slotID: slot, siteID: site, status: status, code: code,
                    createdAtMillis: createdAtMillis, expiresAtMillis: expiresAtMillis)
    }
}

/// A record's fields read in place from its bytes (the persister reads
/// thousands a second straight out of a Redis reply): slices, no copies.
struct RecordFields {
    let status: ReservationStatus
    let statusText: UnsafeRawBufferPointer
    let slot: UnsafeRawBufferPointer
    let site: UnsafeRawBufferPointer
    let code: UnsafeRawBufferPointer
    let citizenKey: UnsafeRawBufferPointer
    let createdAtMillis: Int64
    let updatedAtMillis: Int64
    let expiresAtMillis: Int64?

    init?(_ bytes: UnsafeRawBufferPointer) {
        // Eight slices kept on the stack (an array would allocate per record).
        var slices = (UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0),
                      UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0),
                      UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0),
                      UnsafeRawBufferPointer(start: nil, count: 0), UnsafeRawBufferPointer(start: nil, count: 0))
        var count = 0
        var start = 0
        for index in 0...bytes.count where index == bytes.count || bytes[index] == UInt8(ascii: "|") {
            guard count < 8 else { return nil }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            switch count {
            case 0: slices.0 = slice
            case 1: slices.1 = slice
            case 2: slices.2 = slice
            case 3: slices.3 = slice
            case 4: slices.4 = slice
            case 5: slices.5 = slice
            case 6: slices.6 = slice
            default: slices.7 = slice
            }
            count += 1
            start = index + 1
        }
        guard count == 7 || count == 8, let status = ReservationStatus(bytes: slices.0),
              let created = Self.millis(slices.5), let updated = Self.millis(slices.6) else { return nil }
        if count == 8 {
            guard let expires = Self.millis(slices.7) else { return nil }
            expiresAtMillis = expires
        } else {
            expiresAtMillis = nil
        }
        // Only a hold, and what it became, has an expiry; a hold always has one.
        guard status == .held ? count == 8 : true else { return nil }
        self.status = status
        statusText = slices.0
        slot = slices.1
        site = slices.2
        code = slices.3
        citizenKey = slices.4
        createdAtMillis = created
        updatedAtMillis = updated
    }

    /// Decimal digits only, within Timestamp's range.
    private static func millis(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 15 else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return Timestamp.isInRange(value) ? value : nil
    }
}

extension ReservationStatus {
    /// From its name's bytes, without making a String.
    init?(bytes: UnsafeRawBufferPointer) {
        func named(_ name: StaticString) -> Bool { name.withUTF8Buffer { $0.elementsEqual(bytes) } }
        if named("confirmed") { self = .confirmed }
        else if named("held") { self = .held }
        else if named("cancelled") { self = .cancelled }
        else if named("redeemed") { self = .redeemed }
        else if named("expired") { self = .expired }
        else { return nil }
    }
}
