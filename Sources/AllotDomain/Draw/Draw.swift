import Crypto

/// A lottery draw (README, Lottery): who gets which place, from inputs
/// fixed before anyone could know the outcome, by a computation anyone can
/// repeat from the published files (DrawVerifier).
///
/// - Before registration opens, the rules and the operator's secret are
///   committed to: `commitment = SHA-256("allot draw commitment v1" ‖ 0x00 ‖
///   rules ‖ secret)`, where `rules` is SHA-256 of the campaign id, the
///   places in order (slot, site, capacity) and the name of the public value
///   to come (`rulesDigest`). Neither can change once the commitment is out.
/// - An entry's id is `HMAC-SHA256(draw key, citizen key)`: the draw key is
///   the campaign's own (derived from the server's secret), so entries of two
///   draws cannot be linked, and an id says nothing of the citizen.
/// - At close the entries are frozen: each entry's leaf is its id followed by
///   its preferences (UTF-8, space-separated), and the leaves in ascending
///   order of id make a Merkle tree (MerkleTree) whose root is published, so
///   neither an entry nor its preferences can change after close.
/// - The seed mixes the revealed secret, the root and a public value nobody
///   knew at close (a randomness beacon round named in advance):
///   `SHA-256("allot draw seed v1" ‖ 0x00 ‖ len ‖ rules ‖ len ‖ secret ‖ len ‖ root ‖ len ‖ public value)`,
///   each length 4 bytes big-endian.
/// - Each entry's ticket is `HMAC-SHA256(seed, entry id)`; entries are served
///   in ascending ticket order, each its first preference with a place left.
///   Those left without one keep their rank: the order is the waitlist.
public enum Draw {
    public typealias Hash = [UInt8]
    public static let secretBytes = 32
    public static let preferencesMax = 8

    public static func commitment(rules: Hash, secret: [UInt8]) -> Hash {
        Array(SHA256.hash(data: Array("allot draw commitment v1".utf8) + [0] + rules + secret))
    }

    /// The rules a draw is committed to: the campaign, the places in their
    /// order (a site preference tries its slots in it), and what the public
    /// value will be (e.g. "drand quicknet round 1234"), each field
    /// length-prefixed.
    public static func rulesDigest(campaignID: String, places: [Place], publicValueSource: String) -> Hash {
        var fields = [Array(campaignID.utf8), Array(publicValueSource.utf8)]
        for place in places { fields += [Array(place.slotID.utf8), Array(place.siteID.utf8), Array(String(place.capacity).utf8)] }
        return Array(SHA256.hash(data: lengthPrefixed("allot draw rules v1", fields)))
    }

    static func lengthPrefixed(_ tag: String, _ fields: [[UInt8]]) -> [UInt8] {
        var input = Array(tag.utf8) + [0]
        for field in fields {
            let count = UInt32(field.count)
            input += [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
            input += field
        }
        return input
    }

    /// The campaign's draw key, from the server's secret.
    public static func drawKey(serverSecret: [UInt8], campaignID: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("allot draw entry v1\u{0}\(campaignID)".utf8),
                                              using: SymmetricKey(data: serverSecret)))
    }

    public static func entryID(citizenKey: String, drawKey: [UInt8]) -> Hash {
        Array(HMAC<SHA256>.authenticationCode(for: Array(citizenKey.utf8), using: SymmetricKey(data: drawKey)))
    }

    public static func seed(rules: Hash, secret: [UInt8], root: Hash, publicValue: String) -> Hash {
        Array(SHA256.hash(data: lengthPrefixed("allot draw seed v1", [rules, secret, root, Array(publicValue.utf8)])))
    }

    public static func ticket(seed: Hash, entryID: Hash) -> Hash {
        Array(HMAC<SHA256>.authenticationCode(for: entryID, using: SymmetricKey(data: seed)))
    }

    /// The frozen list's leaves, in its canonical order (ids ascending, by byte).
    public static func leaves(_ entries: [Entry]) -> [[UInt8]] {
        entries.sorted { $0.id.lexicographicallyPrecedes($1.id) }.map(\.leaf)
    }

    /// A place to be drawn: a slot, its site, its capacity. Their order is
    /// the order a site preference tries the site's slots in.
    public struct Place: Equatable, Sendable {
        public var slotID: String
        public var siteID: String
        public var capacity: Int

        public init(slotID: String, siteID: String, capacity: Int) {
            self.slotID = slotID
            self.siteID = siteID
            self.capacity = capacity
        }

        /// `"places": [{slot_id, site_id, capacity}…]`, as `draw.json` and
        /// the draw's API answer both write them.
        public static func write(_ places: [Place], to json: inout JSONWriter) {
            json.key("places")
            json.beginArray()
            for place in places {
                json.beginObject()
                json.field("slot_id", place.slotID)
                json.field("site_id", place.siteID)
                json.field("capacity", place.capacity)
                json.endObject()
            }
            json.endArray()
        }
    }

    /// A preference: a slot, or any slot of a site (`site:<id>`).
    public enum Preference: Equatable, Sendable {
        case slot(String)
        case site(String)

        public init?(_ text: Substring) {
            if text.hasPrefix("site:") {
                let id = text.dropFirst(5)
                guard OperatorID.isValid(id) else { return nil }
                self = .site(String(id))
            } else {
                guard OperatorID.isValid(text) else { return nil }
                self = .slot(String(text))
            }
        }

        public var text: String {
            switch self {
            case .slot(let id): id
            case .site(let id): "site:" + id
            }
        }
    }

    public struct Entry: Equatable, Sendable {
        public var id: Hash
        public var preferences: [Preference]

        public init(id: Hash, preferences: [Preference]) {
            self.id = id
            self.preferences = preferences
        }

        /// Its Merkle leaf: the id, then the preferences.
        public var leaf: [UInt8] { id + Array(preferences.map(\.text).joined(separator: " ").utf8) }
    }

    /// An entry's place in the draw: its rank (1 first), ticket, and the
    /// slot it won (nil: none left for its preferences; it waits).
    public struct Result: Equatable, Sendable {
        public var rank: Int
        public var entry: Entry
        public var ticket: Hash
        public var wonSlot: String?
    }

    /// Every entry's result, in rank order.
    public static func run(entries: [Entry], places: [Place], seed: Hash) -> [Result] {
        var left = Dictionary(places.map { ($0.slotID, $0.capacity) }) { first, _ in first }
        let slotsBySite = Dictionary(grouping: places, by: \.siteID).mapValues { $0.map(\.slotID) }
        let ordered = entries.map { (ticket: ticket(seed: seed, entryID: $0.id), entry: $0) }
            .sorted { $0.ticket == $1.ticket ? $0.entry.id.lexicographicallyPrecedes($1.entry.id)
                                             : $0.ticket.lexicographicallyPrecedes($1.ticket) }
        return ordered.enumerated().map { index, item in
            var won: String?
            search: for preference in item.entry.preferences {
                let candidates: [String] = switch preference {
                case .slot(let id): [id]
                case .site(let id): slotsBySite[id] ?? []
                }
                for slot in candidates where (left[slot] ?? 0) > 0 {
                    left[slot]! -= 1
                    won = slot
                    break search
                }
            }
            return Result(rank: index + 1, entry: item.entry, ticket: item.ticket, wonSlot: won)
        }
    }
}

public enum HexBytes {
    public static func encode(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { Hex.encode($0) }
    }

    /// Lower-case hex only (the published files' form); nil for anything else.
    public static func decode(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }
}
