/// Which of Redis Cluster's 16 384 hash slots a key lives in (the cluster
/// specification, "Key distribution model"): CRC16 (XMODEM) of the key, or
/// of its hash tag, modulo 16 384. Pure.
public enum ClusterSlot {
    public static let count = 16_384

    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(UnsafeRawBufferPointer($0)) }
    }

    public static func of(_ key: UnsafeRawBufferPointer) -> Int {
        let hashed = hashTag(of: key)
        return Int(crc16(UnsafeRawBufferPointer(rebasing: key[hashed]))) & (count - 1)
    }

    /// What of the key is hashed: the bytes between its first `{` and the
    /// first `}` after it, if there is at least one; else the whole key.
    public static func hashTag(of key: UnsafeRawBufferPointer) -> Range<Int> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
              close > open + 1 else { return 0..<key.count }
        return (open + 1)..<close
    }

    /// CRC16-CCITT as XMODEM computes it (polynomial 0x1021, initial 0), by
    /// table: "123456789" gives 0x31C3.
    public static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

/// A cluster node's address as the cluster announces it.
public struct ClusterNodeAddress: Hashable, Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, the last colon separating them (an IPv6 host has more).
    /// The host may be empty or `?`: the node does not know how it is
    /// reached (`resolved(against:)`).
    public init?(parsing text: Substring) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65_535).contains(port) else { return nil }
        host = String(text[..<colon])
        self.port = port
    }

    static func isKnownHost(_ host: String) -> Bool { !host.isEmpty && host != "?" }

    /// An unknown host (empty or `?`) is the host of the node that said it.
    public func resolved(against speaker: ClusterNodeAddress) -> ClusterNodeAddress {
        Self.isKnownHost(host) ? self : ClusterNodeAddress(host: speaker.host, port: port)
    }

    public var description: String { "\(host):\(port)" }
}

/// What a cluster error reply asks the client to do (the specification's
/// redirections and transient states). Pure.
public enum ClusterError: Equatable, Sendable {
    /// The slot has moved for good: update the map, resend there.
    case moved(slot: Int, to: ClusterNodeAddress)
    /// The slot is migrating: send `ASKING` and the command to that node,
    /// once, without changing the map.
    case ask(slot: Int, to: ClusterNodeAddress)
    /// A multi-key command's keys are split during a migration: retry soon.
    case tryAgain
    /// The cluster cannot serve the slot now (no owner, a failover): back
    /// off and retry.
    case clusterDown
    /// The node is loading its data: back off and retry.
    case loading
    /// A write reached a replica (a failover demoted the node): refresh the
    /// map and retry.
    case readOnly

    /// Nil for any other error (a script's own, a wrong type…).
    public init?(errorMessage message: String) {
        let words = message.split(separator: " ", maxSplits: 3)
        switch words.first {
        case "MOVED", "ASK":
            guard words.count == 3, let slot = Int(words[1]), (0..<ClusterSlot.count).contains(slot),
                  let address = ClusterNodeAddress(parsing: words[2]) else { return nil }
            self = words[0] == "MOVED" ? .moved(slot: slot, to: address) : .ask(slot: slot, to: address)
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown
        case "LOADING": self = .loading
        case "READONLY": self = .readOnly
        default: return nil
        }
    }
}
