import AllotDomain
import AllotServer
import Foundation
import Testing

/// X-Forwarded-For moves a request to another per-address bucket only when
/// it comes through a trusted proxy.
@Suite(.serialized) struct WhoIsAskingTests {
    /// Campaign "w" with an ip bucket of 2 that refills only very slowly.
    func stackWithIPBucket(_ configure: (inout ServerConfig) -> Void = { _ in }) throws -> LiveStack {
        let stack = try LiveStack(configure: configure)
        try stack.makeCampaign("w", limit: 10, capacity: 100)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/w/rate-limits", #"{"ip":{"rate":0.001,"burst":2}}"#).status == 200)
        return stack
    }

    func reserve(_ stack: LiveStack, _ client: HTTPClient, _ citizen: String, forwardedFor: String) throws -> HTTPClient.Response {
        try stack.reserve(client, campaign: "w", citizen: citizen, slot: "s0", headers: ["X-Forwarded-For": forwardedFor])
    }

    @Test func aClientCannotDodgeItsBucketWithAHeader() throws {
        let stack = try stackWithIPBucket()
        defer { stack.shutdown() }
        let client = stack.client()
        #expect(try reserve(stack, client, "a", forwardedFor: "203.0.113.1").status == 201)
        #expect(try reserve(stack, client, "b", forwardedFor: "203.0.113.2").status == 201)
        // Every request is 127.0.0.1's: the header changes nothing.
        #expect(try reserve(stack, client, "c", forwardedFor: "203.0.113.3").code == "rate_limited")
    }

    @Test func behindATrustedProxyEachClientHasItsOwnBucket() throws {
        let stack = try stackWithIPBucket { $0.trustedProxies = [AddressRange("127.0.0.1")!] }
        defer { stack.shutdown() }
        let client = stack.client()
        #expect(try reserve(stack, client, "a", forwardedFor: "203.0.113.1").status == 201)
        #expect(try reserve(stack, client, "b", forwardedFor: "203.0.113.1").status == 201)
        #expect(try reserve(stack, client, "c", forwardedFor: "203.0.113.1").code == "rate_limited")
        // Another client behind the proxy is not held back by the first...
        #expect(try reserve(stack, client, "d", forwardedFor: "203.0.113.2").status == 201)
        // ...and the first cannot become someone else by adding hops on the left.
        #expect(try reserve(stack, client, "e", forwardedFor: "198.51.100.9, 203.0.113.1").code == "rate_limited")
    }
}
