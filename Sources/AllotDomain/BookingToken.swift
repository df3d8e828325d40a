/// What a citizen's check-your-answers page carries to the booking itself,
/// signed (SignedFields): the slot, who is booking as the citizen key (the
/// keyed fingerprint Redis holds, never the id), the idempotency key the
/// form was given (so a double submit or a reload books once), and the id
/// masked for the page to show. A token is good for `lifetimeMillis`.
public struct BookingToken: Equatable, Sendable {
    public static let lifetimeMillis: Int64 = 30 * 60 * 1000
    public var campaignID: String
    public var slotID: String
    public var citizenKey: String
    public var idempotencyKey: String
    public var maskedID: String

    public init(campaignID: String, slotID: String, citizenKey: String, idempotencyKey: String, maskedID: String) {
        self.campaignID = campaignID
        self.slotID = slotID
        self.citizenKey = citizenKey
        self.idempotencyKey = idempotencyKey
        self.maskedID = maskedID
    }

    public func sealed(with signer: SignedFields, nowMillis: Int64) -> String? {
        signer.seal([campaignID, slotID, citizenKey, idempotencyKey, maskedID], expiresAtMillis: nowMillis + Self.lifetimeMillis)
    }

    /// Nil for a token not made by `signer`, altered, or expired.
    public init?(opening text: String, with signer: SignedFields, nowMillis: Int64) {
        guard let fields = signer.open(text, nowMillis: nowMillis), fields.count == 5 else { return nil }
        self.init(campaignID: fields[0], slotID: fields[1], citizenKey: fields[2], idempotencyKey: fields[3], maskedID: fields[4])
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
