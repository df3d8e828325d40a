@testable import AllotServer
import AllotDomain
import EventHTTP
import EventLoops
import Foundation
import RedisClient
import SQLiteStore
import Testing

/// Regressions of issue 10, part 1: each of these failed before its fix.
@Suite(.serialized) struct HardeningTests {
    // MARK: 1. bucket maths total over every configuration the API accepts

    @Test func rateLimitsOutsideTheirRangesAreRefusedAndEveryEdgeWorks() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("edges", limit: 10, capacity: 100)
        let path = "/v1/admin/campaigns/edges/rate-limits"
        for bad in [#"{"ip":{"rate":1e-19,"burst":1}}"#, #"{"ip":{"rate":2000000,"burst":1}}"#,
                    #"{"citizen":{"rate":1,"burst":2.5}}"#, #"{"global":{"rate":1,"burst":0}}"#,
                    #"{"global":{"rate":1,"burst":1e300}}"#] {
            let answer = try stack.admin("PUT", path, bad)
            #expect(answer.status == 400, "\(bad)")
            #expect(answer.code == "invalid_field", "\(bad)")
        }
        let edges = #"{"global":{"rate":0.001,"burst":10000000},"ip":{"rate":1000000,"burst":1},"citizen":{"rate":0.001,"burst":1}}"#
        #expect(try stack.admin("PUT", path, edges).status == 200)
        let client = stack.client()
        #expect(try stack.reserve(client, campaign: "edges", citizen: "c1", slot: "s0").status == 201)
        let limited = try stack.reserve(client, campaign: "edges", citizen: "c1", slot: "s0")
        #expect(limited.status == 429)
        #expect((1...1_001).contains(Int(limited.header("Retry-After") ?? "") ?? 0))
        #expect(limited.header("RateLimit-Policy")?.hasPrefix("\"citizen\";q=1;w=") == true)
        // Every bucket key expires: none is left behind for ever.
        let buckets = try stack.redis.command(["KEYS", "{c:edges}:bucket:*"]).elements ?? []
        #expect(buckets.count == 3)
        for key in buckets.compactMap(\.text) {
            #expect((try stack.redis.command(["PTTL", key]).integer ?? -1) > 0, "\(key)")
        }
        #expect(try client.get("/healthz").status == 200)
    }

    @Test func aStoredConfigurationOutOfRangeGives503NeverACrash() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("stale", limit: 10, capacity: 100)
        // What an older server (or a hand edit) may have left in Redis.
        try stack.redis.command(["HSET", "{c:stale}:cfg", "ip_rate", "1e-19", "ip_burst", "1"])
        let client = stack.client()
        for index in 0..<3 {
            let answer = try stack.reserve(client, campaign: "stale", citizen: "c\(index)", slot: "s0")
            #expect(answer.status == 503)
            #expect(answer.code == "unavailable")
        }
        #expect(try client.get("/healthz").status == 200)
        #expect(stack.logLines.withLock { $0.contains { $0.contains("reserve script failed") } })
    }

    // MARK: 2. no reply and no stored state ends the process

    @Test func malformedScriptRepliesDecodeToErrorsNotTraps() {
        let replies: [RedisReply] = [
            .null, .array([]), .error("ERR boom"), .array([.string(Array("ok".utf8))]), .integer(0), .integer(-5),
            .array([.string(Array("ok".utf8)), .integer(7)]),
            .array([.string(Array("rate_limited".utf8)), .string(Array("ip".utf8))]),
            .array([.string(Array("rate_limited".utf8)), .string(Array("ip".utf8)), .integer(1),
                    .string(Array("1e-19".utf8)), .string(Array("1".utf8))]),
            .array([.string(Array("citizen_limit_reached".utf8))]),
            .array([.string(Array("replay".utf8)), .string(Array("ok|not-an-id".utf8))]),
            .array([.string(Array("something_new".utf8))]),
        ]
        for reply in replies { #expect(throws: ContractViolation.self) { try ReserveOutcome(reply) } }
        #expect(throws: ContractViolation.self) { try TransitionOutcome(.array([.string(Array("ok".utf8)), .string(Array("x|y".utf8))])) }
        #expect(throws: ContractViolation.self) { try SnapshotReply(.array([.string(Array("1".utf8))]), knownVersion: nil) }
        #expect((try? ReserveOutcome(.array([.string(Array("slot_full".utf8))]))) == .slotFull)
    }

    /// The reservation path reads its reply where hiredis keeps it: every
    /// shape must decode exactly as its copy does.
    @Test func aBorrowedReserveReplyDecodesAsItsCopy() throws {
        let replies = [
            "*2\r\n$2\r\nok\r\n:1772323201234\r\n", "*2\r\n$2\r\nok\r\n$3\r\n123\r\n", "*2\r\n$2\r\nOK\r\n:1\r\n",
            "*3\r\n$2\r\nok\r\n:1\r\n:2\r\n", "*1\r\n$2\r\nok\r\n", "*2\r\n$3\r\nokk\r\n:1\r\n", "*2\r\n+ok\r\n:5\r\n",
            "*1\r\n$9\r\nslot_full\r\n", "*2\r\n$21\r\ncitizen_limit_reached\r\n:2\r\n", "-ERR boom\r\n", ":1\r\n", "$-1\r\n",
            ":1772323201234\r\n", ":0\r\n", ":-3\r\n", "$13\r\n1772323201234\r\n",
        ]
        for resp in replies {
            let borrowed = try #require(RedisReplyView.parsing(Array(resp.utf8)) { view in Result { () throws(ContractViolation) in try ReserveOutcome(view) } })
            let copied = try #require(RedisReplyView.parsing(Array(resp.utf8)) { view in Result { () throws(ContractViolation) in try ReserveOutcome(view.copy) } })
            switch (borrowed, copied) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(resp)")
            case (.failure, .failure): break
            default: Issue.record("\(resp): borrowed \(borrowed), copied \(copied)")
            }
        }
        let confirmed = RedisReplyView.parsing(Array(":1772323201234\r\n".utf8)) { try? ReserveOutcome($0) }
        #expect(confirmed == .confirmed(createdAtMillis: 1_772_323_201_234))
    }

    @Test func unreadableStoredStateGives503AndALogLine() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("odd", limit: 10, capacity: 100)
        let client = stack.client()
        let made = try stack.reserve(client, campaign: "odd", citizen: "a", slot: "s0", headers: ["Idempotency-Key": "k-1"])
        let id = try #require(made.json["id"] as? String)
        try stack.redis.command(["HSET", "{c:odd}:recs", id, "confirmed|s0"])
        #expect(try client.get("/v1/reservations/\(id)").status == 503)
        #expect(try client.request("DELETE", "/v1/reservations/\(id)").status == 503)
        let stored = try #require(try stack.redis.command(["KEYS", "{c:odd}:idem:*"]).elements?.first?.text)
        let fingerprint = try #require(try stack.redis.command(["GET", stored]).text?.split(separator: "|").first)
        for broken in [String(fingerprint) + "|ok|garbage", "no-bar-at-all"] {
            try stack.redis.command(["SET", stored, broken])
            let replayed = try stack.reserve(client, campaign: "odd", citizen: "a", slot: "s0", headers: ["Idempotency-Key": "k-1"])
            #expect(replayed.status == 503, "\(broken)")
        }
        #expect(try client.get("/healthz").status == 200)
        #expect(stack.logLines.withLock { $0.contains { $0.contains("unreadable reservation record") } })
    }

    // MARK: 3. control characters

    @Test func controlCharactersAreRefusedAndTextIsKeptWhole() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("names", capacity: 10)
        let refused = [
            try stack.admin("PATCH", "/v1/admin/campaigns/names", #"{"name":"\u0000"}"#),
            try stack.admin("PATCH", "/v1/admin/campaigns/names", #"{"name":"a\u001b[2Jb"}"#),
            try stack.admin("PUT", "/v1/admin/campaigns/names/sites", #"{"sites":[{"id":"x","name":"X","address":"1\tRoad"}]}"#),
            try stack.admin("POST", "/v1/admin/campaigns", """
                {"id":"n2","name":"del\\u007f","id_scheme":"any","per_citizen_limit":1,
                 "opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}
                """),
        ]
        for answer in refused {
            #expect(answer.status == 400)
            #expect(answer.code == "invalid_field")
        }
        let name = "Masks — 第12週 ✓"
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/names", #"{"name":"\#(name)"}"#).status == 200)
        #expect(try stack.client().get("/v1/campaigns/names").json["name"] as? String == name)
        #expect(try stack.redis.command(["HGET", "{c:names}:cfg", "name"]).text == name)
        let stored = try stack.sqlite().statement("SELECT name FROM campaigns WHERE id = 'names'").rows { $0.text(0) }
        #expect(stored == [name])
    }

    // MARK: 5. an answer from another thread always gets back

    @Test func operatorAnswersArriveWhenTheLoopInboxIsFull() throws {
        let stack = try LiveStack(threads: 1)
        defer { stack.shutdown() }
        try stack.makeCampaign("inbox", capacity: 10)
        let loop = try #require(stack.server.eventLoops.first)
        // Hold the admin worker, so the operator's request waits there...
        let released = DispatchSemaphore(value: 0)
        let held = stack.server.adminWorker.submit({ _ in
            released.wait()
            return .json(200, [])
        }, reply: { _ in })
        #expect(held)
        let answered = Locked<HTTPClient.Response?>(nil)
        let requester = Thread {
            let response = try? stack.admin("PATCH", "/v1/admin/campaigns/inbox", #"{"name":"Renamed"}"#)
            answered.withLock { $0 = response }
        }
        requester.start()
        Thread.sleep(forTimeInterval: 0.3)
        // ...then fill the loop's inbox while it is busy, and let go.
        let busy = DispatchSemaphore(value: 0)
        loop.execute { busy.wait() }
        var queued = 0
        while loop.execute({}) { queued += 1 }
        #expect(queued > 60_000)
        released.signal()
        Thread.sleep(forTimeInterval: 0.3)
        busy.signal()
        for _ in 0..<100 where answered.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.05) }
        let answer = try #require(answered.withLock { $0 }, "the operator's request was never answered")
        #expect(answer.status == 200)
    }

    // MARK: 7. growth: O(1) lookups, a hot set that shrinks, bounded streams

    @Test func aReservationIsFoundWithAtMostTwoRedisCallsWhateverTheCampaigns() throws {
        let stack = try LiveStack { config in
            // No timed refresh during the count (each change still refreshes).
            config.snapshotRefreshMillis = 120_000
            config.snapshotStaleMillisMax = 240_000
        }
        defer { stack.shutdown() }
        for index in 0..<30 { try stack.makeCampaign("many-\(index)", slots: 1, capacity: 5) }
        let client = stack.client()
        let id = try #require(try stack.reserve(client, campaign: "many-29", citizen: "a", slot: "s0").json["id"] as? String)
        try stack.redis.command(["CONFIG", "RESETSTAT"])
        for _ in 0..<10 { #expect(try client.get("/v1/reservations/\(id)").status == 200) }
        let stats = try stack.redis.command(["INFO", "commandstats"]).text ?? ""
        let hgets = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_hget:") }
            .flatMap { $0.split(separator: "=").dropFirst().first?.split(separator: ",").first }.flatMap { Int($0) } ?? 0
        #expect(hgets >= 10 && hgets <= 20, "\(hgets) HGETs for 10 lookups among 30 campaigns")
    }

    @Test func aFloodOfMadeUpCampaignsCostsBoundedRedisCalls() throws {
        let stack = try LiveStack(threads: 1) { config in
            config.snapshotRefreshMillis = 120_000
            config.snapshotStaleMillisMax = 240_000
        }
        defer { stack.shutdown() }
        try stack.makeCampaign("known", slots: 1, capacity: 5)
        try stack.redis.command(["CONFIG", "RESETSTAT"])
        let client = stack.client()
        let port = stack.port
        let statuses = Locked<[Int: Int]>([:])
        let started = monotonicMicros()
        // Eight at a time, so the flood outruns the budget on a slow machine too.
        concurrently(8) { worker in
            let client = HTTPClient(port: port)
            for index in stride(from: worker, to: 1_500, by: 8) {
                let status = (try? client.get("/v1/campaigns/made-up-\(index)").status) ?? -1
                statuses.withLock { $0[status, default: 0] += 1 }
            }
        }
        let seconds = Double(monotonicMicros() - started) / 1e6
        let scripts = try stack.redisCalls("fcall")
        // One loop's budget (500 at once, 500 a second), whatever the flood:
        // the bound is the budget over the time the flood took.
        #expect(Double(scripts) <= 500 + 500 * seconds + 10, "\(scripts) script runs for 1 500 made-up campaigns in \(seconds) s")
        let answered = statuses.withLock { $0 }
        #expect(answered[404, default: 0] >= 500 && answered[404, default: 0] + answered[503, default: 0] == 1_500, "\(answered)")
        if seconds < 1.5 { #expect(answered[503, default: 0] >= 1, "\(answered) in \(seconds) s") }
        #expect(try client.get("/v1/campaigns/known").status == 200)
    }

    @Test func aStreamAtItsBoundRefusesWithoutDroppingAndRecovers() throws {
        let stack = try LiveStack { $0.streamEntriesMax = 3 }
        defer { stack.shutdown() }
        try stack.makeCampaign("bound", limit: 100, capacity: 100)
        let client = stack.client()
        var confirmed = 0, refused = 0
        for index in 0..<6 {
            let answer = try stack.reserve(client, campaign: "bound", citizen: "c\(index)", slot: "s0")
            if answer.status == 201 { confirmed += 1 } else if answer.status == 503 { refused += 1 }
            #expect(answer.status == 201 || answer.code == "unavailable")
            #expect((try stack.redis.command(["XLEN", "{c:bound}:ev"]).integer ?? 99) <= 3)
        }
        #expect(refused > 0)
        // The persister trims what SQLite has: booking resumes.
        var resumed = false
        for attempt in 0..<40 where !resumed {
            Thread.sleep(forTimeInterval: 0.1)
            resumed = try stack.reserve(client, campaign: "bound", citizen: "late-\(attempt)", slot: "s0").status == 201
        }
        #expect(resumed)
        _ = try stack.waitForPersistence("bound", expected: confirmed + 1)
    }

    @Test func anEndedCampaignLeavesTheHotSetAndItsReservationsStillWork() throws {
        let stack = try LiveStack { $0.retireEveryMillis = 100 }
        defer { stack.shutdown() }
        let closesAt = Timestamp.format(millis: WallClock.nowMillis() + 2_500, alwaysFraction: false)
        try stack.makeCampaign("ends", capacity: 10, closesAt: closesAt)
        let client = stack.client()
        let id = try #require(try stack.reserve(client, campaign: "ends", citizen: "a", slot: "s0").json["id"] as? String)
        #expect(try stack.redis.command(["SISMEMBER", "allot:campaigns", "ends"]).integer == 1)
        var retired = false
        for _ in 0..<100 where !retired {
            Thread.sleep(forTimeInterval: 0.1)
            retired = try stack.redis.command(["SISMEMBER", "allot:campaigns", "ends"]).integer == 0
        }
        #expect(retired)
        // Out of the refresh, still there for citizens and staff.
        #expect(try client.get("/v1/campaigns/ends").json["status"] as? String == "closed")
        #expect(try client.get("/v1/campaigns/ends/slots").status == 200)
        #expect(try client.get("/v1/reservations/\(id)").json["status"] as? String == "confirmed")
        #expect(try stack.reserve(client, campaign: "ends", citizen: "b", slot: "s0").code == "campaign_not_open")
        let cancelled = try client.request("DELETE", "/v1/reservations/\(id)")
        #expect(cancelled.json["status"] as? String == "cancelled")
        // The change reaches SQLite: the campaign came back to the hot set with it.
        var persisted: [String] = []
        for _ in 0..<100 where persisted != ["cancelled"] {
            Thread.sleep(forTimeInterval: 0.05)
            persisted = try stack.sqlite().statement("SELECT status FROM reservations WHERE id = ?").rows([.text(id)]) { $0.text(0) }
        }
        #expect(persisted == ["cancelled"])
    }

    // MARK: 9. an operator's change is in force when it is answered

    @Test func aCampaignOpenedIsBookableOnEveryLoopOnceAnswered() throws {
        let stack = try LiveStack { config in
            config.snapshotRefreshMillis = 60_000  // only operators' changes refresh
            config.snapshotStaleMillisMax = 120_000
        }
        defer { stack.shutdown() }
        #expect(try stack.admin("POST", "/v1/admin/campaigns", """
            {"id":"soon","name":"Soon","id_scheme":"any","per_citizen_limit":1,
             "opens_at":"2020-01-01T00:00:00Z","closes_at":"2099-01-01T00:00:00Z"}
            """).status == 201)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/soon/sites", #"{"sites":[{"id":"hall","name":"Hall","address":"1 Road"}]}"#).status == 200)
        #expect(try stack.admin("PUT", "/v1/admin/campaigns/soon/slots", """
            {"slots":[{"id":"s0","site_id":"hall","starts_at":"2030-01-01T09:00:00Z","ends_at":"2030-01-01T10:00:00Z","capacity":100}]}
            """).status == 200)
        // Citizens look while it is a draft: every loop has seen it so.
        for _ in 0..<8 { #expect(try HTTPClient(port: stack.port).get("/v1/campaigns/soon").status == 404) }
        #expect(try stack.admin("PATCH", "/v1/admin/campaigns/soon", #"{"status":"open"}"#).status == 200)
        // New connections land on both loops.
        let statuses = Locked<[Int]>([])
        concurrently(16) { index in
            let answer = try? stack.reserve(HTTPClient(port: stack.port), campaign: "soon", citizen: "c\(index)", slot: "s0")
            statuses.withLock { $0.append(answer?.status ?? 0) }
        }
        #expect(statuses.withLock { $0 } == Array(repeating: 201, count: 16))
    }
}
