import Glibc

/// An IPv4 or IPv6 network, e.g. `10.0.0.0/8`, `::1/128`, or one address.
public struct AddressRange: Equatable, Sendable {
    let bytes: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = Self.parse(String(first)) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            prefixLength = length
        } else {
            prefixLength = bits
        }
        bytes = address
    }

    public func contains(_ address: String) -> Bool {
        guard let other = Self.parse(address), other.count == bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(bytes, other) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    /// The address's bytes (4 or 16), or nil if it is not an IP address.
    static func parse(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// Who is asking (issue 5, "Who is asking"). `X-Forwarded-For` is believed
/// only when the connection comes from a trusted proxy, and then only as far
/// as the chain of trusted proxies goes: the client is the rightmost address
/// that is not one of them. A client cannot choose its own address (and so
/// its per-address bucket) by sending the header itself.
public enum ClientAddress {
    static let hopsMax = 32

    public static func resolve(peer: String, forwardedFor: String?, trusted: [AddressRange]) -> String {
        guard !trusted.isEmpty, let forwardedFor, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let hops = forwardedFor.split(separator: ",", maxSplits: hopsMax, omittingEmptySubsequences: false)
        var nearest = peer
        for hop in hops.reversed() {
            let address = hop.trimmingCharacters(in: " \t")
            // Not an address: what lies beyond cannot be vouched for.
            guard AddressRange.parse(address) != nil else { return nearest }
            guard trusted.contains(where: { $0.contains(address) }) else { return address }
            nearest = address
        }
        return nearest
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        return String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}
