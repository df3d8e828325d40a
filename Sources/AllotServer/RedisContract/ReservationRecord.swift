import AllotDomain

/// A reservation as Redis keeps it, as its field of the campaign's records
/// hash and in each stream entry:
/// `status|slot|site|code|citizen key|created ms|updated ms`. One string
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

    init?(_ text: String) {
        let fields = text.split(separator: "|", omittingEmptySubsequences: false)
        guard fields.count == 7, let status = ReservationStatus(rawValue: String(fields[0])),
              let created = Int64(fields[5]), let updated = Int64(fields[6]),
              Timestamp.isInRange(created), Timestamp.isInRange(updated) else { return nil }
        self.status = status
        slot = String(fields[1])
        site = String(fields[2])
        code = String(fields[3])
        citizenKey = String(fields[4])
        createdAtMillis = created
        updatedAtMillis = updated
    }

    init(status: ReservationStatus, slot: String, site: String, code: String, citizenKey: String,
         createdAtMillis: Int64, updatedAtMillis: Int64) {
        self.status = status
        self.slot = slot
        self.site = site
        self.code = code
        self.citizenKey = citizenKey
        self.createdAtMillis = createdAtMillis
        self.updatedAtMillis = updatedAtMillis
    }

    /// The record as Redis keeps it (what `init?(_:)` reads).
    var text: String {
        [status.rawValue, slot, site, code, citizenKey, String(createdAtMillis), String(updatedAtMillis)].joined(separator: "|")
    }

    func reservation(id: ReservationID, campaign: String) -> Reservation {
        Reservation(id: id, campaignID: campaign, slotID: slot, siteID: site, status: status, code: code,
                    createdAtMillis: createdAtMillis)
    }
}
