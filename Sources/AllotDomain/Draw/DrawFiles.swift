/// The files a draw publishes (README, Lottery), from which anyone can
/// repeat it: `draw.json` (the rules, the places, the commitment, the
/// revealed secret, the public value, the entry count, the root and the
/// seed) and `results.csv` (every entry in rank order: its id, ticket,
/// preferences and outcome). `DrawVerifier` checks one against the other.
public struct DrawDescription: Equatable, Sendable {
    public static let format = "allot-draw-v1"
    public var campaignID: String
    public var places: [Draw.Place]
    public var commitment: Draw.Hash
    public var secret: [UInt8]
    /// What the public value is, named before registration (committed to).
    public var publicValueSource: String
    public var publicValue: String
    public var entryCount: Int
    public var root: Draw.Hash
    public var seed: Draw.Hash

    public init(campaignID: String, places: [Draw.Place], commitment: Draw.Hash, secret: [UInt8], publicValueSource: String,
                publicValue: String, entryCount: Int, root: Draw.Hash, seed: Draw.Hash) {
        self.campaignID = campaignID
        self.places = places
        self.commitment = commitment
        self.secret = secret
        self.publicValueSource = publicValueSource
        self.publicValue = publicValue
        self.entryCount = entryCount
        self.root = root
        self.seed = seed
    }

    public var json: [UInt8] {
        var json = JSONWriter(capacity: 512 + 64 * places.count)
        json.beginObject()
        json.field("format", Self.format)
        json.field("campaign_id", campaignID)
        json.field("commitment", HexBytes.encode(commitment))
        json.field("secret", HexBytes.encode(secret))
        json.field("public_value_source", publicValueSource)
        json.field("public_value", publicValue)
        json.field("entry_count", entryCount)
        json.field("root", HexBytes.encode(root))
        json.field("seed", HexBytes.encode(seed))
        Draw.Place.write(places, to: &json)
        json.endObject()
        return json.bytes
    }

    public init(json bytes: [UInt8]) throws(DrawFileError) {
        let fields: Fields
        do { fields = try Fields.parse(bytes) } catch { throw DrawFileError("draw.json: \(error.detail)") }
        func hex(_ name: String) throws(DrawFileError) -> [UInt8] {
            guard let text = try? fields.string(name, bytesMax: 128), let bytes = HexBytes.decode(Substring(text)) else {
                throw DrawFileError("draw.json: \(name) must be lower-case hex")
            }
            return bytes
        }
        do {
            guard try fields.string("format") == Self.format else { throw DrawFileError("draw.json: format is not \(Self.format)") }
            campaignID = try fields.identifier("campaign_id")
            publicValueSource = try fields.text("public_value_source", bytesMax: 1024)
            publicValue = try fields.text("public_value", bytesMax: 1024)
            entryCount = try fields.integer("entry_count", in: 0...100_000_000)
            places = try fields.array("places", countMax: Slot.perCallMax).enumerated().map { index, element throws(Problem) in
                let place = try Fields(element, prefix: "places[\(index)].")
                return Draw.Place(slotID: try place.identifier("slot_id"), siteID: try place.identifier("site_id"),
                                  capacity: try place.integer("capacity", in: 0...Slot.capacityMax))
            }
        } catch let error as DrawFileError {
            throw error
        } catch let problem as Problem {
            throw DrawFileError("draw.json: \(problem.detail)")
        } catch {
            throw DrawFileError("draw.json: \(error)")
        }
        commitment = try hex("commitment")
        secret = try hex("secret")
        root = try hex("root")
        seed = try hex("seed")
        guard secret.count == Draw.secretBytes else { throw DrawFileError("draw.json: the secret must be \(Draw.secretBytes) bytes") }
        guard Set(places.map(\.slotID)).count == places.count else { throw DrawFileError("draw.json: a slot is listed twice") }
    }

    /// SHA-256 of the rules the commitment binds (Draw.rulesDigest).
    public var rules: Draw.Hash {
        Draw.rulesDigest(campaignID: campaignID, places: places, publicValueSource: publicValueSource)
    }
}

public struct DrawFileError: Error, Equatable, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `results.csv`: `rank,entry_id,ticket,preferences,outcome`, one row per
/// entry in rank order; preferences separated by spaces, the outcome the
/// slot won or `-`. No field needs quoting.
public enum ResultsFile {
    public static let header = "rank,entry_id,ticket,preferences,outcome"

    public static func write(_ results: [Draw.Result]) -> [UInt8] {
        var text = header + "\r\n"
        text.reserveCapacity(200 * results.count)
        for result in results {
            text += "\(result.rank),\(HexBytes.encode(result.entry.id)),\(HexBytes.encode(result.ticket)),"
                + result.entry.preferences.map(\.text).joined(separator: " ") + "," + (result.wonSlot ?? "-") + "\r\n"
        }
        return Array(text.utf8)
    }

    public static func read(_ bytes: [UInt8]) throws(DrawFileError) -> [Draw.Result] {
        // By byte: in a Swift String "\r\n" is one Character, not a "\n".
        var lines = bytes.split(separator: UInt8(ascii: "\n")).map { line in
            Substring(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        guard lines.first == Substring(header) else { throw DrawFileError("results.csv: the first line must be \(header)") }
        lines.removeFirst()
        var results: [Draw.Result] = []
        results.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            let row = index + 2
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 5, let rank = Int(fields[0]), let id = HexBytes.decode(fields[1]), id.count == 32,
                  let ticket = HexBytes.decode(fields[2]), ticket.count == 32 else {
                throw DrawFileError("results.csv line \(row): not rank,entry_id,ticket,preferences,outcome")
            }
            let preferences = fields[3].split(separator: " ").map(Draw.Preference.init)
            guard preferences.count <= Draw.preferencesMax, preferences.allSatisfy({ $0 != nil }) else {
                throw DrawFileError("results.csv line \(row): preferences are slot ids or site:<id>, at most \(Draw.preferencesMax)")
            }
            let outcome = fields[4]
            guard outcome == "-" || OperatorID.isValid(outcome) else { throw DrawFileError("results.csv line \(row): bad outcome") }
            results.append(Draw.Result(rank: rank, entry: Draw.Entry(id: id, preferences: preferences.map { $0! }), ticket: ticket,
                                       wonSlot: outcome == "-" ? nil : String(outcome)))
        }
        // One set of results, one file: no blank line, spacing or number
        // written another way.
        guard write(results) == bytes else { throw DrawFileError("results.csv is not in the form `allot` writes (CRLF lines, no blanks)") }
        return results
    }
}

/// `allot draw verify`: repeats a draw from its published files and names
/// the first thing that does not match.
public enum DrawVerifier {
    /// Nil when everything matches; else what does not.
    public static func verify(description: DrawDescription, results: [Draw.Result]) -> String? {
        guard Draw.commitment(rules: description.rules, secret: description.secret) == description.commitment else {
            return "the rules and the secret do not match the commitment published before registration"
        }
        guard results.count == description.entryCount else {
            return "results.csv has \(results.count) entries; the frozen list had \(description.entryCount)"
        }
        let ids = results.map(\.entry.id).sorted { $0.lexicographicallyPrecedes($1) }
        for index in ids.indices.dropFirst() where ids[index] == ids[index - 1] {
            return "entry \(HexBytes.encode(ids[index])) appears twice"
        }
        guard MerkleTree.root(Draw.leaves(results.map(\.entry))) == description.root else {
            return "the entries' Merkle root (ids and preferences) is not the root published at close"
        }
        let seed = Draw.seed(rules: description.rules, secret: description.secret, root: description.root,
                             publicValue: description.publicValue)
        guard seed == description.seed else { return "the seed is not SHA-256 of the secret, the root and the public value" }
        let expected = Draw.run(entries: results.map(\.entry), places: description.places, seed: seed)
        for (published, repeated) in zip(results, expected) where published != repeated {
            if published.entry.id != repeated.entry.id || published.rank != repeated.rank {
                return "rank \(repeated.rank) belongs to entry \(HexBytes.encode(repeated.entry.id)) by its ticket, "
                    + "not to the row published there"
            }
            if published.ticket != repeated.ticket { return "rank \(published.rank): the ticket is not HMAC-SHA256(seed, entry id)" }
            return "rank \(published.rank): the outcome should be \(repeated.wonSlot ?? "-"), not \(published.wonSlot ?? "-")"
        }
        return nil
    }
}
