import Crypto

/// Tamper evidence for reservation events at one audit row per batch.
///
/// Every state change the persister writes becomes a row of
/// `reservation_events`, numbered 1, 2, 3… (`seq`) with its leaf: the first
/// 16 bytes of SHA-256 over the event's fields. Each batch adds one audit
/// row (`reservations.persisted`) naming its events' seq range and the
/// root: SHA-256 over their leaves in order. The audit row is hash-chained
/// like every other, so the root of every batch is fixed in the chain, and
/// `EventLedgerVerifier` names the event that was edited (its leaf no longer
/// matches), deleted (a seq missing) or inserted (a seq no batch covers); an
/// edit that also rewrote the leaf changes the root, and names the batch.
public enum EventLedger {
    public static let leafBytes = 16
    public static let batchAction = "reservations.persisted"

    /// One event's fields, borrowed (the persister reads them in place from
    /// a Redis reply).
    public struct Fields {
        public var seq: Int64
        public var campaign: UnsafeRawBufferPointer
        public var reservation: UnsafeRawBufferPointer
        public var status: UnsafeRawBufferPointer
        public var slot: UnsafeRawBufferPointer
        public var site: UnsafeRawBufferPointer
        public var actor: UnsafeRawBufferPointer
        public var atMillis: Int64

        public init(seq: Int64, campaign: UnsafeRawBufferPointer, reservation: UnsafeRawBufferPointer,
                    status: UnsafeRawBufferPointer, slot: UnsafeRawBufferPointer, site: UnsafeRawBufferPointer,
                    actor: UnsafeRawBufferPointer, atMillis: Int64) {
            self.seq = seq
            self.campaign = campaign
            self.reservation = reservation
            self.status = status
            self.slot = slot
            self.site = site
            self.actor = actor
            self.atMillis = atMillis
        }
    }

    /// A batch's claim, as its audit row's `after` holds it.
    public struct BatchClaim: Equatable, Sendable {
        public let auditID: Int64
        public let firstSeq: Int64
        public let lastSeq: Int64
        /// Hex SHA-256 over the batch's leaves in seq order.
        public let root: String

        public init(auditID: Int64, firstSeq: Int64, lastSeq: Int64, root: String) {
            self.auditID = auditID
            self.firstSeq = firstSeq
            self.lastSeq = lastSeq
            self.root = root
        }

        /// The audit row's `after`: `{"events":N,"first_seq":A,"last_seq":B,"root":"…"}`.
        public var json: String {
            var json = JSONWriter(capacity: 128)
            json.beginObject()
            json.field("events", Int(lastSeq - firstSeq + 1))
            json.field("first_seq", Int(firstSeq))
            json.field("last_seq", Int(lastSeq))
            json.field("root", root)
            json.endObject()
            return json.text
        }

        /// Reads a batch row's claim back; nil when the row is not one.
        public init?(auditID: Int64, action: String, after: String) {
            guard action == EventLedger.batchAction,
                  let value = try? JSONParser.parse(Array(after.utf8)),
                  case .number(let first)? = value["first_seq"], case .number(let last)? = value["last_seq"],
                  case .string(let root)? = value["root"], first >= 1, last >= first, last < 9e15 else { return nil }
            self.init(auditID: auditID, firstSeq: Int64(first), lastSeq: Int64(last), root: root)
        }
    }

    /// Makes leaves without allocating once warm: one per persister.
    public struct LeafMaker {
        private var buffer: [UInt8] = []

        public init() { buffer.reserveCapacity(256) }

        /// The leaf: SHA-256, cut to 16 bytes, of each field as its decimal
        /// byte length, `:`, and its bytes (no field can run into the next).
        public mutating func leaf(_ fields: Fields) -> Leaf {
            buffer.removeAll(keepingCapacity: true)
            append(fields.seq)
            append(fields.campaign)
            append(fields.reservation)
            append(fields.status)
            append(fields.slot)
            append(fields.site)
            append(fields.actor)
            append(fields.atMillis)
            return Leaf(SHA256.hash(data: buffer))
        }

        private mutating func append(_ bytes: UnsafeRawBufferPointer) {
            Self.withDecimal(Int64(bytes.count)) { buffer.append(contentsOf: $0) }
            buffer.append(UInt8(ascii: ":"))
            buffer.append(contentsOf: bytes)
        }

        private mutating func append(_ number: Int64) {
            Self.withDecimal(number) { append($0) }
        }

        /// `number` in decimal, rendered on the stack.
        private static func withDecimal(_ number: Int64, _ body: (UnsafeRawBufferPointer) -> Void) {
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: "-" and 19 digits fit
            withUnsafeMutableBytes(of: &digits) { space in
                var start = space.count
                var rest = number.magnitude
                repeat {
                    start -= 1
                    space[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                } while rest > 0
                if number < 0 {
                    start -= 1
                    space[start] = UInt8(ascii: "-")
                }
                body(UnsafeRawBufferPointer(rebasing: space[start...]))
            }
        }
    }

    /// A leaf's 16 bytes, kept inline.
    public struct Leaf: Equatable, Sendable {
        public var high: UInt64
        public var low: UInt64

        init(_ digest: SHA256.Digest) {
            var high: UInt64 = 0
            var low: UInt64 = 0
            digest.withUnsafeBytes { bytes in
                for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
            }
            self.high = high
            self.low = low
        }

        /// From stored bytes; nil unless exactly 16.
        public init?(bytes: [UInt8]) {
            guard bytes.count == EventLedger.leafBytes else { return nil }
            high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        }

        /// The 16 bytes, big-endian, for `body` (no allocation).
        public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
            var bigEndian = (high.bigEndian, low.bigEndian)
            return try withUnsafeBytes(of: &bigEndian) { try body($0) }
        }
    }

    /// SHA-256 over a batch's leaves in order.
    public struct RootHasher {
        private var hasher = SHA256()
        public init() {}
        public mutating func add(_ leaf: Leaf) { leaf.withBytes { hasher.update(bufferPointer: $0) } }
        public func root() -> String { Hex.encode(hasher.finalize()) }
    }
}

/// Checks `reservation_events` against the batch claims of an intact audit
/// chain (pure, so `allot audit verify` and the tests share it). Feed it the
/// events in seq order, then `finish()`.
public struct EventLedgerVerifier {
    public enum Break: Equatable, Sendable {
        /// The event's fields do not match its leaf.
        case eventEdited(seq: Int64)
        /// No row has this seq, though a batch claims it.
        case eventMissing(seq: Int64)
        /// A row no batch claims.
        case eventInserted(seq: Int64)
        /// The batch's leaves do not make the root its audit row holds.
        case batchAltered(auditID: Int64)
    }

    private let claims: [EventLedger.BatchClaim]
    private var claimIndex = 0
    private var expected: Int64
    private var root = EventLedger.RootHasher()
    private var maker = EventLedger.LeafMaker()
    public private(set) var eventsChecked = 0

    public init(claims: [EventLedger.BatchClaim]) {
        self.claims = claims
        expected = claims.first?.firstSeq ?? 1
    }

    /// Checks the next event row (in seq order), given its stored leaf.
    public mutating func check(_ fields: EventLedger.Fields, storedLeaf: [UInt8]) -> Break? {
        guard claimIndex < claims.count, fields.seq >= expected else { return .eventInserted(seq: fields.seq) }
        if fields.seq > expected { return .eventMissing(seq: expected) }
        guard let stored = EventLedger.Leaf(bytes: storedLeaf), maker.leaf(fields) == stored else {
            return .eventEdited(seq: fields.seq)
        }
        root.add(stored)
        eventsChecked += 1
        expected += 1
        let claim = claims[claimIndex]
        guard fields.seq == claim.lastSeq else { return nil }
        if root.root() != claim.root { return .batchAltered(auditID: claim.auditID) }
        root = EventLedger.RootHasher()
        claimIndex += 1
        if claimIndex < claims.count {
            // Batches follow one another without a gap, by construction.
            guard claims[claimIndex].firstSeq == expected else { return .batchAltered(auditID: claims[claimIndex].auditID) }
        }
        return nil
    }

    /// After the last row: every claimed event must have been seen.
    public func finish() -> Break? {
        claimIndex < claims.count ? .eventMissing(seq: expected) : nil
    }
}
