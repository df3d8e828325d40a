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
