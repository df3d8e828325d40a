@testable import AllotServer
import AllotDomain
import Foundation
import RedisClient
import Testing

/// The hot set lives in its own cluster slot, so a campaign leaves it and
/// comes back in steps (HotSet.swift). These check that no step order
/// leaves a change in a stream the persister no longer reads.
@Suite(.serialized) struct HotSetTests {
    /// A campaign whose booking has ended, one reservation of it in SQLite
    /// (its stream all delivered), and that reservation's id.
    private func endedCampaign(_ stack: LiveStack, _ id: String) throws -> String {
        let closesAt = Timestamp.format(millis: WallClock.nowMillis() + 1_500, alwaysFraction: false)
        try stack.makeCampaign(id, capacity: 10, closesAt: closesAt)
        let reservation = try stack.reserve(stack.client(), campaign: id, citizen: "a", slot: "s0")
        let reservationID = try #require(reservation.json["id"] as? String)
        _ = try stack.waitForPersistence(id, expected: 1)
        Thread.sleep(forTimeInterval: 1.6)
        return reservationID
    }

    /// The reservation's status in SQLite once it is cancelled, or after 5 s.
    private func persistedStatus(_ stack: LiveStack, _ reservation: String) throws -> String? {
        var persisted: [String] = []
        for _ in 0..<100 where persisted != ["cancelled"] {
            Thread.sleep(forTimeInterval: 0.05)
            persisted = try stack.sqlite().statement("SELECT status FROM reservations WHERE id = ?").rows([.text(reservation)]) { $0.text(0) }
        }
        return persisted.first
    }

    private func isHot(_ stack: LiveStack, _ id: String) throws -> Bool {
        try stack.redis.command(["SISMEMBER", HotSet.key, id]).integer == 1
    }

    @Test func aChangeBetweenTheMarkAndTheRemovalPutsTheCampaignBack() throws {
        // The persister's own retiring is kept out of the way.
        let stack = try LiveStack { $0.retireEveryMillis = 3_600_000 }
        defer { stack.shutdown() }
        let reservation = try endedCampaign(stack, "race")
        let client = stack.client()
        // The cancel lands after retire.lua marked the campaign and before
        // it leaves the set: its loop's SADD finds it still a member.
        let cancelled = Locked<String?>(nil)
        let redis = BeforeCommand(RedisSyncClient(host: "127.0.0.1", port: stack.redis.port), command: "SREM") {
            let status = try client.request("DELETE", "/v1/reservations/\(reservation)").json["status"] as? String
            cancelled.withLock { $0 = status }
        }
        defer { redis.close() }
        #expect(try HotSet.retire(CampaignLayout("race", buckets: .single), consumerGroup: GlobalKeys.persistGroup, redis: redis) == false)
        #expect(cancelled.withLock { $0 } == "cancelled")
        #expect(try isHot(stack, "race"))
        // And the cancel reaches SQLite.
        #expect(try persistedStatus(stack, reservation) == "cancelled")
        // Nothing changed since: the next attempt takes it out.
        #expect(try HotSet.retire(CampaignLayout("race", buckets: .single), consumerGroup: GlobalKeys.persistGroup, redis: redis))
        #expect(try !isHot(stack, "race"))
    }

    @Test func aCampaignADeadNodeLeftOutIsSweptBackAndItsChangePersisted() throws {
        let stack = try LiveStack {
            $0.retireEveryMillis = 100
            $0.hotSetSweepMillis = 300
        }
        defer { stack.shutdown() }
        let reservation = try endedCampaign(stack, "left")
        var retired = false
        for _ in 0..<100 where !retired {
            Thread.sleep(forTimeInterval: 0.05)
            retired = try !isHot(stack, "left")
        }
        #expect(retired)
        // A node runs transition.lua and dies before its SADD.
        let keys = CampaignKeys("left")
        let reply = try stack.redis.command(Scripts.transition.command(
            keys: [keys.records, keys.remaining, keys.holdings, keys.stats, keys.stream, keys.config],
            arguments: [reservation, "cancelled", "citizen", "1000"]))
        #expect(reply.elements?.last?.integer == 1)  // it was retired: the caller must put it back
        #expect(try !isHot(stack, "left"))
        #expect(try persistedStatus(stack, reservation) == "cancelled")
    }
}

/// A real Redis client that runs `action` once, just before the first
/// command named `command` goes out: a step of another node, placed
/// between two of this one's.
private final class BeforeCommand: RedisSyncRouting {
    private let redis: RedisSyncClient
    private let command: String
    private let action: () throws -> Void
    private var ran = false

    init(_ redis: RedisSyncClient, command: String, action: @escaping () throws -> Void) {
        self.redis = redis
        self.command = command
        self.action = action
    }

    var isCluster: Bool { false }

    private func before(_ arguments: [String]) throws {
        guard !ran, arguments.first == command else { return }
        ran = true
        try action()
    }

    func command(_ arguments: [String], slot: Int) throws -> RedisReply {
        try before(arguments)
        return try redis.command(arguments)
    }

    func withReply<T>(_ arguments: [String], slot: Int, _ body: (RedisReplyView) throws -> T) throws -> T {
        try before(arguments)
        return try redis.withReply(arguments, body)
    }

    func pipeline(_ commands: [RoutedCommand]) throws -> [RedisReply] {
        for command in commands { try before(command.arguments) }
        return try redis.pipeline(commands.map(\.arguments))
    }

    func close() { redis.close() }
}
