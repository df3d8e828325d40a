/// First-come waitlists (issue 14): a citizen refused with `slot_full`
/// joins the line for that slot or for any time at its site; a place given
/// back (a cancel, an expired hold) is offered to the first in line as a
/// hold of the campaign's `offer_seconds`, and passes on if unclaimed.

/// What a citizen waits for: a slot, or any slot of a site, written as a
/// lottery's preference is (`<slot>` or `site:<id>`): a lottery's entries
/// not drawn wait in the lines of their preferences (lottery_line.lua).
public typealias WaitlistTarget = Draw.Preference

public enum WaitlistStatus: String, Sendable {
    /// In line.
    case waiting
    /// A place was offered: a hold (its reservation) to confirm by its deadline.
    case offered
    /// Left by the citizen.
    case left
    /// Passed over at their turn: by then at their limit, or holding another place.
    case passed
}

/// A campaign's waitlist settings, set at creation: how long an offer is
/// held for its citizen to confirm.
public struct WaitlistSettings: Equatable, Sendable, StoredAsJSON {
    public static let offerSecondsRange = 1...86_400
    public let offerSeconds: Int

    public init(offerSeconds: Int) { self.offerSeconds = offerSeconds }

    public static func decode(_ fields: Fields) throws(Problem) -> WaitlistSettings {
        try fields.allowOnly(["offer_seconds"])
        return WaitlistSettings(offerSeconds: try fields.integer("offer_seconds", in: offerSecondsRange))
    }

    public func write(to json: inout JSONWriter) {
        json.beginObject()
        json.field("offer_seconds", offerSeconds)
        json.endObject()
    }
}

/// `POST /v1/campaigns/{cid}/waitlist`: the id, and a slot or a site.
public struct WaitlistRequest: Equatable, Sendable {
    public let citizenID: String
    public let target: WaitlistTarget

    public static func decode(_ body: ArraySlice<UInt8>) throws(Problem) -> WaitlistRequest {
        let fields = try Fields.parse(Array(body))
        try fields.allowOnly(["citizen_id", "slot_id", "site_id"])
        let citizenID = try fields.string("citizen_id", bytesMax: ReserveRequest.citizenIDBytesMax)
        switch (fields.has("slot_id"), fields.has("site_id")) {
        case (true, false): return WaitlistRequest(citizenID: citizenID, target: .slot(try fields.identifier("slot_id")))
        case (false, true): return WaitlistRequest(citizenID: citizenID, target: .site(try fields.identifier("site_id")))
        default: throw Problem.invalidField("slot_id", "name a slot (slot_id) or a site (site_id), one of them")
        }
    }
}

/// A waitlist entry as Redis keeps it (waitlist.lua), one string:
/// `status|target|citizen key|joined ms|offer's reservation id|offer's code|updated ms`.
public struct WaitlistRecord: Equatable, Sendable {
    public var status: WaitlistStatus
    public var target: WaitlistTarget
    public var citizenKey: String
    public var joinedAtMillis: Int64
    /// The reservation an offer makes (its id made at the join).
    public var offerReservationID: String
    public var offerCode: String
    public var updatedAtMillis: Int64

    public init?(_ text: String) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 7, let status = WaitlistStatus(rawValue: String(parts[0])), let target = WaitlistTarget(parts[1]),
              !parts[2].isEmpty, let joined = Int64(parts[3]), !parts[4].isEmpty, let updated = Int64(parts[6]) else { return nil }
        self.status = status
        self.target = target
        citizenKey = String(parts[2])
        joinedAtMillis = joined
        offerReservationID = String(parts[4])
        offerCode = String(parts[5])
        updatedAtMillis = updated
    }
}

/// A waitlist entry as its citizen sees it (`WaitlistEntry` in the
/// contract): never their key; the offer's reservation once offered.
public struct WaitlistEntry: Equatable, Sendable {
    public var id: String
    public var campaignID: String
    public var target: WaitlistTarget
    public var status: WaitlistStatus
    /// 1 first; while waiting.
    public var position: Int?
    public var joinedAtMillis: Int64
    /// Once offered: the hold's reservation (confirm it by its `expires_at`).
    public var offerReservationID: String?

    public init(id: String, campaignID: String, target: WaitlistTarget, status: WaitlistStatus, position: Int?, joinedAtMillis: Int64,
                offerReservationID: String? = nil) {
        self.id = id
        self.campaignID = campaignID
        self.target = target
        self.status = status
        self.position = position
        self.joinedAtMillis = joinedAtMillis
        self.offerReservationID = offerReservationID
    }

    public init(id: String, campaignID: String, record: WaitlistRecord, position: Int?) {
        self.id = id
        self.campaignID = campaignID
        target = record.target
        status = record.status
        self.position = record.status == .waiting ? position : nil
        joinedAtMillis = record.joinedAtMillis
        offerReservationID = record.status == .offered ? record.offerReservationID : nil
    }

    public var json: [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.field("id", id)
        json.field("campaign_id", campaignID)
        switch target {
        case .slot(let slot): json.field("slot_id", slot)
        case .site(let site): json.field("site_id", site)
        }
        json.field("status", status.rawValue)
        if let position { json.field("position", position) }
        json.field("joined_at", timestampMillis: joinedAtMillis)
        if let offerReservationID { json.field("reservation_id", offerReservationID) }
        json.endObject()
        return json.bytes
    }
}
