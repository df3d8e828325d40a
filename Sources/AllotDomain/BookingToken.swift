import Crypto

/// What a citizen's check-your-answers page carries to the booking itself,
/// sealed (SealedFields: encrypted and authenticated, so it shows nothing of
/// what it holds): the slot, who is booking as the citizen key (the keyed
/// fingerprint Redis holds, never the id), the booking's idempotency key (so
/// a double submit or a reload books once), the id masked for the page to
/// show, what the eligibility rules read of the id (so another slot is
/// checked without it), and when it expires. A token is good for `lifetimeMillis` from the
/// id form, however often its pages are shown again.
public struct BookingToken: Equatable, Sendable {
    public static let lifetimeMillis: Int64 = 30 * 60 * 1000
    public var campaignID: String
    public var slotID: String
    public var citizenKey: String
    public var idempotencyKey: String
    public var maskedID: String
    public var facts: EligibilityFacts
    public var expiresAtMillis: Int64

    /// A booking from the id form: its idempotency key is the form's key,
    /// the citizen and the slot hashed together, so a double submit of the
    /// form keeps it and the same form used for someone else does not.
    public init(campaignID: String, slotID: String, citizenKey: String, formKey: String, maskedID: String,
                facts: EligibilityFacts, nowMillis: Int64) {
        self.campaignID = campaignID
        self.slotID = slotID
        self.citizenKey = citizenKey
        self.maskedID = maskedID
        self.facts = facts
        idempotencyKey = Self.key(formKey, citizenKey, slotID)
        expiresAtMillis = nowMillis + Self.lifetimeMillis
    }

    /// The same citizen's booking of another slot (after a slot-full page):
    /// its own key, the same on every press, and the same expiry.
    public func forSlot(_ slotID: String) -> BookingToken {
        var token = self
        token.slotID = slotID
        token.idempotencyKey = Self.key(idempotencyKey, citizenKey, slotID)
        return token
    }

    static func key(_ parts: String...) -> String {
        HexBytes.encode(Array(SHA256.hash(data: Array(parts.joined(separator: "\u{1F}").utf8))))
    }

    public func sealed(with box: SealedFields) -> String? {
        box.seal([campaignID, slotID, citizenKey, idempotencyKey, maskedID, facts.text], expiresAtMillis: expiresAtMillis)
    }

    /// Nil for a token not sealed with `box`, altered, or expired.
    public init?(opening text: String, with box: SealedFields, nowMillis: Int64) {
        guard let (fields, expires) = box.open(text, nowMillis: nowMillis), fields.count == 6,
              let facts = EligibilityFacts(text: fields[5]) else { return nil }
        campaignID = fields[0]
        slotID = fields[1]
        citizenKey = fields[2]
        idempotencyKey = fields[3]
        maskedID = fields[4]
        self.facts = facts
        expiresAtMillis = expires
    }

    /// An id as a page may show it once the form has taken it: its first
    /// two and last two characters (one and one when short), the rest as
    /// `•`, enough for the citizen to recognise without showing the number.
    public static func mask(_ id: String) -> String {
        let characters = Array(id)
        let kept = characters.count >= 8 ? 2 : characters.count >= 4 ? 1 : 0
        return String(characters.prefix(kept)) + String(repeating: "•", count: characters.count - 2 * kept)
            + String(characters.suffix(kept))
    }
}
