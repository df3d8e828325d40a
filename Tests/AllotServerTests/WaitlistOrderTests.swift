@testable import AllotServer
import AllotDomain
import Foundation
import RedisClient
import Testing

/// The waitlist's order as waitlist.lua decides it, one offer at a time, on
/// a bucket laid out by hand in a bare Redis (no server): whoever joined
/// first of the slot's and the site's queues is offered the place; an
/// entry no longer waiting is dropped; one at their limit or holding a
/// place is passed over (20 at most a call); nobody is offered anything
/// when the campaign is not open; a lottery entry leaves all its queues.
@Suite(.serialized) struct WaitlistOrderTests {
    /// The bucket's keys, as record_move hands them to waitlist_offer.
    static let prefix = "{c:wo}"
    static let keys = ["records", "rem", "held", "stats", "ev", "holds", "holders", "cfg", "wl"].map { prefix + ":" + $0 }
    /// Calls waitlist_offer once for a place of s0 (at site hall) just put
    /// back on sale; returns whether an offer was made.
    static let offer = Scripts.resource("waitlist") + """

        local k = {records = KEYS[1], remaining = KEYS[2], holdings = KEYS[3], stats = KEYS[4], stream = KEYS[5],
                   holds = KEYS[6], holders = KEYS[7], cfg = KEYS[8], waitlist = KEYS[9], prefix = ARGV[1]}
        redis.call('HINCRBY', k.remaining, 's0', 1)
        return waitlist_offer(k, 's0', 'hall', tonumber(ARGV[2])) and 1 or 0
        """
    /// Calls waitlist_serve once (a sweep's): returns how many were
    /// offered, then the targets still waiting with no place here.
    static let serve = Scripts.resource("waitlist") + """

        local k = {records = KEYS[1], remaining = KEYS[2], holdings = KEYS[3], stats = KEYS[4], stream = KEYS[5],
                   holds = KEYS[6], holders = KEYS[7], cfg = KEYS[8], waitlist = KEYS[9], prefix = ARGV[1],
                   wsites = ARGV[1] .. ':wlsite', wtargets = ARGV[1] .. ':wlq'}
        local offered, wanting = waitlist_serve(k, tonumber(ARGV[2]), 20)
        return {offered, unpack(wanting)}
        """
    static let now: Int64 = 1_800_000_000_000

    final class Bucket {
        let redis: RedisProcess
        let directory = NSTemporaryDirectory() + "allot-wo-" + UUID().uuidString

        init(allocation: String = "first_come", status: String = "open") throws {
            redis = try RedisProcess(directory: directory)
            try command(["HSET", WaitlistOrderTests.keys[7], "status", status, "opens", "0", "closes", String(WaitlistOrderTests.now + 3_600_000),
                         "wl_offer", "60000", "limit", "1", "alloc", allocation])
        }

        deinit {
            redis.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        @discardableResult
        func command(_ arguments: [String]) throws -> RedisReply { try redis.command(arguments) }

        /// Entry `id` of citizen `id`, in `queues` at `score`.
        func join(_ id: String, _ queues: [String], score: Int, status: String = "waiting") throws {
            try command(["HSET", WaitlistOrderTests.prefix + ":wl", id, "\(status)|\(queues[0])|\(id)|1|r-\(id)|code-\(id)|1"])
            for queue in queues { try command(["ZADD", WaitlistOrderTests.prefix + ":wq:" + queue, String(score), id]) }
        }

        func offer() throws -> Bool {
            let reply = try command(["EVAL", WaitlistOrderTests.offer, String(WaitlistOrderTests.keys.count)] + WaitlistOrderTests.keys
                                    + [WaitlistOrderTests.prefix, String(WaitlistOrderTests.now)])
            return try #require(reply.integer, "\(reply)") == 1
        }

        func status(_ id: String) throws -> String? {
            try command(["HGET", WaitlistOrderTests.prefix + ":wl", id]).text.flatMap(WaitlistRecord.init)?.status.rawValue
        }

        func queue(_ name: String) throws -> [String] {
            try command(["ZRANGE", WaitlistOrderTests.prefix + ":wq:" + name, "0", "-1"]).elements?.compactMap(\.text) ?? []
        }

        var remaining: Int { get throws { Int(try command(["HGET", WaitlistOrderTests.keys[1], "s0"]).text ?? "0") ?? -1 } }

        func serve() throws -> (offered: Int, wanting: Set<String>) {
            let reply = try command(["EVAL", WaitlistOrderTests.serve, String(WaitlistOrderTests.keys.count)] + WaitlistOrderTests.keys
                                    + [WaitlistOrderTests.prefix, String(WaitlistOrderTests.now)])
            let parts = try #require(reply.elements, "\(reply)")
            return (Int(try #require(parts.first?.integer)), Set(parts.dropFirst().compactMap(\.text)))
        }
    }

    @Test func theFirstWhoCanTakeItOfTheSlotsAndTheSitesQueuesIsOffered() throws {
        let bucket = try Bucket()
        try bucket.join("left", ["s0"], score: 1, status: "left")
        try bucket.join("atLimit", ["site:hall"], score: 2)
        try bucket.command(["HSET", Self.keys[2], "atLimit", "1"])
        try bucket.join("a", ["s0"], score: 3)
        try bucket.join("holding", ["site:hall"], score: 4)
        try bucket.command(["HSET", Self.keys[6], "holding", "r-other"])
        try bucket.join("c", ["s0"], score: 5)
        try bucket.join("e", ["site:hall"], score: 6)

        // 1 is no longer waiting (dropped), 2 is at their limit (passed): 3.
        #expect(try bucket.offer())
        #expect(try ["left", "atLimit", "a"].map { try bucket.status($0) } == ["left", "passed", "offered"])
        #expect(try bucket.queue("s0") == ["c"] && bucket.queue("site:hall") == ["holding", "e"])
        #expect(try bucket.remaining == 0)
        // The offer is a hold of the offer's length, on the entry's own id.
        let record = try #require(try bucket.command(["HGET", Self.keys[0], "r-a"]).text.flatMap(ReservationRecord.init))
        #expect(record.status == .held && record.expiresAtMillis == Self.now + 60_000)
        #expect(try bucket.command(["HGET", Self.keys[6], "a"]).text == "r-a")
        #expect(try bucket.command(["HGET", Self.keys[2], "a"]).text == "1")
        // Then 4 holds a place (passed), 5 is offered; then 6.
        #expect(try bucket.offer())
        #expect(try ["holding", "c"].map { try bucket.status($0) } == ["passed", "offered"])
        #expect(try bucket.offer())
        #expect(try bucket.status("e") == "offered")
        // Nobody left: the place stays on sale.
        #expect(try !bucket.offer())
        #expect(try bucket.remaining == 1)
    }

    @Test func twentyArePassedOverACallAndTheNextCallGoesOn() throws {
        let bucket = try Bucket()
        for index in 0..<25 {
            try bucket.join("full\(index)", ["s0"], score: index + 1)
            try bucket.command(["HSET", Self.keys[2], "full\(index)", "1"])
        }
        try bucket.join("free", ["s0"], score: 100)
        #expect(try !bucket.offer())
        #expect(try bucket.queue("s0").count == 6)
        #expect(try bucket.offer())
        #expect(try bucket.status("free") == "offered" && bucket.remaining == 1)
    }

    @Test func aCampaignNotOpenOffersNothing() throws {
        for status in ["paused", "closed"] {
            let bucket = try Bucket(status: status)
            try bucket.join("a", ["s0"], score: 1)
            #expect(try !bucket.offer(), "\(status)")
            #expect(try bucket.status("a") == "waiting" && bucket.remaining == 1, "\(status)")
        }
    }

    /// The sweep's serve: a place on sale goes to a line that waits for its
    /// slot's site; a slot moved to another site since leaves the site's
    /// set and is not offered; the targets left waiting are named.
    @Test func aSweepServesPlacesOnSaleToTheirLinesAndNamesTheLinesStillWaiting() throws {
        let bucket = try Bucket()
        try bucket.command(["HSET", Self.keys[1], "s0", "1", "s1", "1", "s2", "0"])
        try bucket.command(["HSET", Self.prefix + ":wlsite", "s0", "hall", "s1", "annex", "s2", "hall"])
        try bucket.command(["SADD", Self.prefix + ":wlss:hall", "s0", "s1", "s2"])
        try bucket.command(["SADD", Self.prefix + ":wlq", "site:hall", "s2", "gone"])
        try bucket.join("a", ["site:hall"], score: 1)
        try bucket.join("b", ["site:hall"], score: 2)
        try bucket.join("c", ["s2"], score: 3)
        let served = try bucket.serve()
        #expect(served.offered == 1 && served.wanting == ["site:hall", "s2"], "\(served)")
        #expect(try ["a", "b", "c"].map { try bucket.status($0) } == ["offered", "waiting", "waiting"])
        #expect(try bucket.command(["HGET", Self.keys[0], "r-a"]).text.flatMap(ReservationRecord.init)?.slot == "s0")
        // s1 is the annex's now; a target with nobody in line is dropped.
        #expect(try bucket.command(["SMEMBERS", Self.prefix + ":wlss:hall"]).elements?.compactMap(\.text).sorted() == ["s0", "s2"])
        #expect(try bucket.command(["SMEMBERS", Self.prefix + ":wlq"]).elements?.compactMap(\.text).sorted() == ["s2", "site:hall"])
        #expect(try bucket.command(["HGET", Self.keys[1], "s1"]).text == "1")
        // Paused, it serves nobody and names nothing.
        try bucket.command(["HSET", Self.keys[7], "status", "paused"])
        try bucket.command(["HSET", Self.keys[1], "s2", "1"])
        #expect(try bucket.serve().offered == 0 && bucket.status("c") == "waiting")
    }

    @Test func aLotteryEntryLeavesAllItsQueuesAtItsTurn() throws {
        let bucket = try Bucket(allocation: "lottery")
        // Its registration names its preferences, in the order ranked.
        try bucket.command(["HSET", Self.prefix + ":regs", "x", "x|s0,site:hall|1", "y", "y|site:hall|1"])
        try bucket.join("x", ["s0", "site:hall"], score: 1)
        try bucket.join("y", ["site:hall"], score: 2)
        #expect(try bucket.offer())
        #expect(try bucket.status("x") == "offered")
        #expect(try bucket.queue("s0").isEmpty && bucket.queue("site:hall") == ["y"])
        #expect(try bucket.command(["HGET", Self.prefix + ":awards", "x"]).text == "r-x")
    }
}
