@testable import AllotServer
import Foundation
import Testing

/// Issue 11: the scripts are a Redis Functions library, loaded again when
/// Redis lost it.
@Suite(.serialized) struct FunctionsTests {
    @Test func aFlushedLibraryIsLoadedAgainAndTheCallMadeOnce() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("fn", slots: 1, capacity: 5)
        let listed = try stack.redis.command(["FUNCTION", "LIST", "LIBRARYNAME", Scripts.libraryName])
        #expect(listed.elements?.count == 1, "\(listed)")
        #expect(try stack.redis.command(["FUNCTION", "FLUSH"]) == .status("OK"))
        #expect(try stack.redis.command(["FUNCTION", "LIST"]).elements?.isEmpty == true)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "fn", citizen: "ann", slot: "s0").status == 201)
        #expect(try stack.redis.command(["FUNCTION", "LIST", "LIBRARYNAME", Scripts.libraryName]).elements?.count == 1)
        #expect(try stack.reserve(client, campaign: "fn", citizen: "ben", slot: "s0").status == 201)
        // Read-only functions say so (they may run on a replica).
        #expect(Scripts.library.contains("function_name='\(Scripts.snapshot.functionName)', callback=snapshot_body, flags={'no-writes'}"))
    }
}
