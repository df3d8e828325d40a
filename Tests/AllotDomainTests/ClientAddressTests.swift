@testable import AllotDomain
import Testing

@Suite struct ClientAddressTests {
    let proxies = [AddressRange("10.0.0.0/8")!, AddressRange("::1")!]

    @Test func rangesMatchByPrefix() {
        #expect(AddressRange("10.0.0.0/8")!.contains("10.200.3.4"))
        #expect(!AddressRange("10.0.0.0/8")!.contains("11.0.0.1"))
        #expect(AddressRange("192.168.1.7")!.contains("192.168.1.7"))
        #expect(!AddressRange("192.168.1.7")!.contains("192.168.1.8"))
        #expect(AddressRange("2001:db8::/32")!.contains("2001:db8:1::5"))
        #expect(!AddressRange("2001:db8::/32")!.contains("10.0.0.1"))
        #expect(AddressRange("0.0.0.0/0")!.contains("203.0.113.9"))
        for bad in ["", "10.0.0.0/33", "10.0.0/8", "nonsense", "::1/129", "10.0.0.1/x"] { #expect(AddressRange(bad) == nil, "\(bad)") }
    }

    @Test func headerIsIgnoredUnlessThePeerIsATrustedProxy() {
        #expect(ClientAddress.resolve(peer: "203.0.113.5", forwardedFor: "1.2.3.4", trusted: proxies) == "203.0.113.5")
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "1.2.3.4", trusted: []) == "10.1.1.1")
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: nil, trusted: proxies) == "10.1.1.1")
    }

    @Test func clientIsTheRightmostUntrustedHop() {
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "203.0.113.5", trusted: proxies) == "203.0.113.5")
        // A client that writes the header itself only adds hops on the left.
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "1.1.1.1, 203.0.113.5", trusted: proxies) == "203.0.113.5")
        // Through two trusted proxies.
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "203.0.113.5, 10.2.2.2", trusted: proxies) == "203.0.113.5")
        #expect(ClientAddress.resolve(peer: "::1", forwardedFor: "2001:db8::7", trusted: proxies) == "2001:db8::7")
        // Garbage where the proxy's entry should be: the nearest known hop.
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "203.0.113.5, bogus", trusted: proxies) == "10.1.1.1")
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: "10.3.3.3", trusted: proxies) == "10.3.3.3")
        // Many hops cost a bounded split.
        let long = Array(repeating: "10.9.9.9", count: 5_000).joined(separator: ",")
        #expect(ClientAddress.resolve(peer: "10.1.1.1", forwardedFor: long, trusted: proxies) != "")
    }
}
