/// An entrant's receipt (issue 14), fetched with their registration id:
/// their entry (id and preferences: the Merkle leaf), its place among the
/// frozen entries with an inclusion proof under the published root, their
/// rank, ticket and outcome. With `draw.json` alone anyone can check it
/// (`allot draw verify-receipt`): the entry is in the frozen list, and its
/// ticket is HMAC-SHA256(seed, entry id); with `results.csv` too, that its
/// rank and outcome are the ones published.
public struct DrawReceipt: Equatable, Sendable {
    public var registrationID: String
    public var campaignID: String
    public var entry: Draw.Entry
    /// The entry's position among the frozen entries (ids ascending).
    public var leafIndex: Int
    public var entryCount: Int
    public var root: Draw.Hash
    public var proof: [Draw.Hash]
    public var rank: Int
    public var ticket: Draw.Hash
    /// The slot won; nil: not drawn (the entry keeps its rank, its place
    /// in line).
    public var wonSlot: String?
    public var reservationID: String?

    public init(registrationID: String, campaignID: String, entry: Draw.Entry, leafIndex: Int, entryCount: Int, root: Draw.Hash,
                proof: [Draw.Hash], rank: Int, ticket: Draw.Hash, wonSlot: String?, reservationID: String?) {
        self.registrationID = registrationID
        self.campaignID = campaignID
        self.entry = entry
        self.leafIndex = leafIndex
        self.entryCount = entryCount
        self.root = root
        self.proof = proof
        self.rank = rank
        self.ticket = ticket
        self.wonSlot = wonSlot
        self.reservationID = reservationID
    }

    public var json: [UInt8] {
        var json = JSONWriter(capacity: 1_024 + 70 * proof.count)
        json.beginObject()
        json.field("registration_id", registrationID)
        json.field("campaign_id", campaignID)
        json.field("entry_id", HexBytes.encode(entry.id))
        json.key("preferences")
        json.beginArray()
        for preference in entry.preferences { json.string(preference.text) }
        json.endArray()
        json.field("leaf", HexBytes.encode(entry.leaf))
        json.field("leaf_index", leafIndex)
        json.field("entry_count", entryCount)
        json.field("root", HexBytes.encode(root))
        json.key("inclusion_proof")
        json.beginArray()
        for hash in proof { json.string(HexBytes.encode(hash)) }
        json.endArray()
        json.field("rank", rank)
        json.field("ticket", HexBytes.encode(ticket))
        json.field("outcome", wonSlot == nil ? "not_drawn" : "won")
        if let wonSlot { json.field("slot_id", wonSlot) }
        if let reservationID { json.field("reservation_id", reservationID) }
        json.endObject()
        return json.bytes
    }

    public init(json bytes: [UInt8]) throws(DrawFileError) {
        do {
            let fields = try Fields.parse(bytes)
            // Hashes are 32 bytes: an entry id of another length would split
            // another's leaf otherwise.
            func hex(_ text: String, _ name: String) throws(DrawFileError) -> [UInt8] {
                guard let bytes = HexBytes.decode(Substring(text)), bytes.count == 32 else {
                    throw DrawFileError("receipt: \(name) must be 32 bytes in lower-case hex")
                }
                return bytes
            }
            func strings(_ name: String) throws -> [String] {
                try fields.array(name, countMax: 64).map { value in
                    guard case .string(let text) = value else { throw DrawFileError("receipt: \(name) must hold strings") }
                    return text
                }
            }
            let preferences = try strings("preferences").map { text throws(DrawFileError) in
                guard let preference = Draw.Preference(Substring(text)) else { throw DrawFileError("receipt: preference \(text)") }
                return preference
            }
            registrationID = try fields.string("registration_id")
            campaignID = try fields.identifier("campaign_id")
            entry = Draw.Entry(id: try hex(try fields.string("entry_id"), "entry_id"), preferences: preferences)
            leafIndex = try fields.integer("leaf_index", in: 0...100_000_000)
            entryCount = try fields.integer("entry_count", in: 0...100_000_000)
            root = try hex(try fields.string("root"), "root")
            proof = try strings("inclusion_proof").map { text throws(DrawFileError) in try hex(text, "inclusion_proof") }
            rank = try fields.integer("rank", in: 1...100_000_000)
            ticket = try hex(try fields.string("ticket"), "ticket")
            wonSlot = try fields.optionalString("slot_id")
            reservationID = try fields.optionalString("reservation_id")
            guard (try fields.string("outcome") == "won") == (wonSlot != nil) else {
                throw DrawFileError("receipt: the outcome and slot_id disagree")
            }
            guard HexBytes.decode(Substring(try fields.string("leaf", bytesMax: 4_096))) == entry.leaf else {
                throw DrawFileError("receipt: the leaf is not the entry id followed by its preferences")
            }
        } catch let error as DrawFileError {
            throw error
        } catch let problem as Problem {
            throw DrawFileError("receipt: \(problem.detail)")
        } catch {
            throw DrawFileError("receipt: \(error)")
        }
    }

    /// Nil when the receipt holds against the published files; else what
    /// does not. `results`: `results.csv`'s rows, when at hand.
    public func verify(description: DrawDescription, results: [Draw.Result]? = nil) -> String? {
        guard campaignID == description.campaignID else { return "the receipt is for campaign \(campaignID), not \(description.campaignID)" }
        guard entryCount == description.entryCount, root == description.root else {
            return "the receipt's root and count are not the ones published at close"
        }
        guard MerkleTree.verifyInclusion(leaf: entry.leaf, index: leafIndex, count: entryCount, proof: proof, root: root) else {
            return "the inclusion proof does not lead from the entry to the published root"
        }
        guard ticket == Draw.ticket(seed: description.seed, entryID: entry.id) else {
            return "the ticket is not HMAC-SHA256(seed, entry id)"
        }
        guard rank >= 1, rank <= entryCount else { return "rank \(rank) is not one of the \(entryCount) entries'" }
        if let results {
            guard results.count >= rank, results[rank - 1].entry == entry, results[rank - 1].ticket == ticket else {
                return "results.csv has another entry at rank \(rank)"
            }
            guard results[rank - 1].wonSlot == wonSlot else {
                return "results.csv says \(results[rank - 1].wonSlot ?? "-") at rank \(rank), not \(wonSlot ?? "-")"
            }
        }
        return nil
    }
}
