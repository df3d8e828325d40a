/// Which master serves each hash slot, as the cluster last said: read from
/// `CLUSTER SHARDS` (Redis 7) or `CLUSTER SLOTS`, patched by `MOVED`. Pure:
/// the client asks it where a key goes and tells it what the cluster said.
public struct ClusterSlotMap: Equatable, Sendable {
    /// Every master the map has named, in the order first seen.
    public private(set) var masters: [ClusterNodeAddress] = []
    /// Each slot's master, an index into `masters`; -1 when no master owns it.
    private var owners = [Int16](repeating: -1, count: ClusterSlot.count)

    public init() {}

    /// The master serving `slot`, if any does.
    public func master(forSlot slot: Int) -> ClusterNodeAddress? {
        let owner = owners[slot]
        return owner < 0 ? nil : masters[Int(owner)]
    }

    /// Slots that no master owns (a cluster being set up, or a shard lost).
    public var unownedSlotCount: Int { owners.lazy.filter { $0 < 0 }.count }

    /// Whether every slot has a master (asked on every readiness check:
    /// the first unowned slot ends the scan).
    public var isComplete: Bool { !owners.contains(-1) }

    /// `MOVED slot address`: from now on that master serves the slot.
    public mutating func move(slot: Int, to address: ClusterNodeAddress) {
        owners[slot] = Int16(index(of: address))
    }

    private mutating func assign(_ slots: ClosedRange<Int>, to address: ClusterNodeAddress) {
        let owner = Int16(index(of: address))
        for slot in slots { owners[slot] = owner }
    }

    private mutating func index(of address: ClusterNodeAddress) -> Int {
        if let known = masters.firstIndex(of: address) { return known }
        masters.append(address)
        return masters.count - 1
    }

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// From a `CLUSTER SHARDS` reply: per shard, its slot ranges and its
    /// nodes, each a flat list of field names and values. A node that
    /// announces no address (an empty one, or `?`) is reached where
    /// `answeredBy` is (the cluster specification's rule).
    public init(shards reply: RedisReply, answeredBy: ClusterNodeAddress) throws(Malformed) {
        guard let shards = reply.elements else { throw Malformed(description: "CLUSTER SHARDS: not an array") }
        for shard in shards {
            let fields = try Self.fields(of: shard)
            guard let ranges = fields["slots"]?.elements, ranges.count % 2 == 0,
                  let nodes = fields["nodes"]?.elements else { throw Malformed(description: "CLUSTER SHARDS: a shard without slots or nodes") }
            var slots: [ClosedRange<Int>] = []
            for pair in stride(from: 0, to: ranges.count, by: 2) {
                slots.append(try Self.slots(ranges[pair].integer, ranges[pair + 1].integer))
            }
            // A shard whose master is gone (failed over, not yet replaced)
            // leaves its slots unowned until the next refresh.
            var master: ClusterNodeAddress?
            for node in nodes {
                let node = try Self.fields(of: node)
                guard node["role"]?.text == "master" else { continue }
                master = try Self.address(host: node["endpoint"]?.text, orIP: node["ip"]?.text, port: node["port"]?.integer,
                                          answeredBy: answeredBy)
            }
            guard let master else { continue }
            for range in slots { assign(range, to: master) }
        }
    }

    /// From a `CLUSTER SLOTS` reply (before Redis 7): per range, its start,
    /// its end, its master's address and port, then its replicas'.
    public init(slots reply: RedisReply, answeredBy: ClusterNodeAddress) throws(Malformed) {
        guard let ranges = reply.elements else { throw Malformed(description: "CLUSTER SLOTS: not an array") }
        for range in ranges {
            guard let parts = range.elements, parts.count >= 3, let node = parts[2].elements, node.count >= 2 else {
                throw Malformed(description: "CLUSTER SLOTS: a range without its master")
            }
            let master = try Self.address(host: node[0].text, orIP: nil, port: node[1].integer, answeredBy: answeredBy)
            assign(try Self.slots(parts[0].integer, parts[1].integer), to: master)
        }
    }

    private static func fields(of reply: RedisReply) throws(Malformed) -> [String: RedisReply] {
        guard let list = reply.elements, list.count % 2 == 0 else { throw Malformed(description: "not a list of fields") }
        var fields: [String: RedisReply] = [:]
        for index in stride(from: 0, to: list.count, by: 2) {
            guard let name = list[index].text else { throw Malformed(description: "a field without a name") }
            fields[name] = list[index + 1]
        }
        return fields
    }

    private static func slots(_ first: Int64?, _ last: Int64?) throws(Malformed) -> ClosedRange<Int> {
        guard let first, let last, first >= 0, first <= last, last < ClusterSlot.count else {
            throw Malformed(description: "a slot range out of bounds")
        }
        return Int(first)...Int(last)
    }

    /// The endpoint the node announces, else its IP, else (neither known)
    /// the host of the node that answered.
    private static func address(host: String?, orIP ip: String?, port: Int64?,
                                answeredBy: ClusterNodeAddress) throws(Malformed) -> ClusterNodeAddress {
        guard let port, (1...65_535).contains(port) else { throw Malformed(description: "a node without a port") }
        return ClusterNodeAddress(host: [host, ip].compactMap { $0 }.first { ClusterNodeAddress.isKnownHost($0) } ?? "",
                                  port: Int(port)).resolved(against: answeredBy)
    }
}
