public enum ReservationStatus: String, Sendable {
    case confirmed, cancelled, redeemed
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

    public init(id: ReservationID, campaignID: String, slotID: String, siteID: String,
                status: ReservationStatus, code: String, createdAtMillis: Int64) {
        self.id = id
        self.campaignID = campaignID
        self.slotID = slotID
        self.siteID = siteID
        self.status = status
        self.code = code
        self.createdAtMillis = createdAtMillis
    }

    public var json: [UInt8] {
        var json = JSONWriter(capacity: 220)
        json.beginObject()
        json.field("id", id.text)
        json.field("campaign_id", campaignID)
        json.field("slot_id", slotID)
        json.field("site_id", siteID)
        json.field("status", status.rawValue)
        json.field("code", code)
        json.field("created_at", Timestamp.format(millis: createdAtMillis))
        json.endObject()
        return json.bytes
    }
}

/// `POST /v1/campaigns/{cid}/reservations` body.
public struct ReserveRequest: Equatable, Sendable {
    public static let citizenIDBytesMax = 128
    public let citizenID: String
    public let slotID: String

    public static func decode(_ body: [UInt8]) throws(Problem) -> ReserveRequest {
        let fields = try Fields.parse(body)
        try fields.allowOnly(["citizen_id", "slot_id"])
        return ReserveRequest(citizenID: try fields.string("citizen_id", bytesMax: citizenIDBytesMax),
                              slotID: try fields.identifier("slot_id"))
    }
}
