@testable import AllotServer
import AllotDomain
import Foundation
import Logging
import ProcessSupervision
import RedisClient
import Testing

/// Moves of places between a campaign's pool and its buckets, on a real
/// three-master cluster (the pool and the buckets on different shards),
/// stopped between every pair of steps: no place is ever made or lost.
@Suite(.serialized) struct PlaceTransferTests {
    static let buckets = CampaignBuckets(4)!
    static let capacity = 100

    /// pool + every bucket's remaining + the places of moves debited and
    /// not credited: what conservation says equals the capacity.
    static func accounted(_ campaign: String, slot: String, _ redis: any RedisSyncRouting) throws -> (total: Int, inFlight: Int) {
        let home = CampaignKeys(campaign)
        var total = Int(try redis.checked(["HGET", home.pool, slot], slot: home.slot).text ?? "0") ?? -1_000
        var inFlight = 0
        let sources = [home] + (0..<buckets.count).map { CampaignKeys(campaign, bucket: $0, of: buckets) }
        for (index, keys) in sources.enumerated() {
            if index > 0 { total += Int(try redis.checked(["HGET", keys.remaining, slot], slot: keys.slot).text ?? "0") ?? -1_000 }
            for (id, text) in try redis.checked(["HGETALL", keys.transfers], slot: keys.slot).pairs ?? [:] {
                let record = try #require(PlaceTransfer.Record(text))
                let target = CampaignKeys(campaign, bucket: record.target, of: buckets)
                if try redis.checked(["EXISTS", target.transferCredit(id)], slot: target.slot).integer == 0 {
                    inFlight += record.places
                }
            }
        }
        return (total + inFlight, inFlight)
    }

    static func remaining(_ campaign: String, bucket: Int, _ redis: any RedisSyncRouting) throws -> Int {
        let keys = CampaignKeys(campaign, bucket: bucket, of: buckets)
        return Int(try redis.checked(["HGET", keys.remaining, "s0"], slot: keys.slot).text ?? "0") ?? -1
    }

    static func withCluster(_ body: (LoopbackRedisCluster, RedisSyncClusterClient) throws -> Void) throws {
        let cluster = try LoopbackRedisCluster(masters: 3)
        defer { cluster.stop() }
        let redis = RedisSyncClusterClient(seeds: [cluster.address(0)])
        defer { redis.close() }
        try body(cluster, redis)
    }

    static func fill(_ campaign: String, _ redis: any RedisSyncRouting) throws {
        let home = CampaignKeys(campaign)
        try redis.checked(["HSET", home.pool, "s0", String(capacity)], slot: home.slot)
    }

    @Test func aMoveStoppedBetweenAnyTwoStepsIsFinishedByTheSweeperExactlyOnce() throws {
        try Self.withCluster { cluster, redis in
            // The pool and the buckets are spread over the masters.
            let shards = Set(CampaignLayout("m0", buckets: Self.buckets).bucketKeys.map { cluster.owner(ofSlot: $0.slot) })
            #expect(shards.count >= 2)
            let sweeper = TransferSweeper(staleMillis: 0, logger: Logger(label: "sweeper-test"))
            for stepsTaken in 0...3 {
                let campaign = "m\(stepsTaken)"
                try Self.fill(campaign, redis)
                let move = PlaceTransfer(id: "move-\(stepsTaken)", campaign: campaign, buckets: Self.buckets, slot: "s0",
                                         source: .pool, target: 1)
                let stoppedAt = try move.run(from: .debit(.places(25)), on: redis, stepsMax: stepsTaken)
                // Stopped (a crash): every place is still accounted for.
                let midway = try Self.accounted(campaign, slot: "s0", redis)
                #expect(midway.total == Self.capacity, "stopped after \(stepsTaken) steps")
                #expect(midway.inFlight == (stepsTaken == 1 ? 25 : 0))
                // The sweeper finishes it; run twice, it changes nothing more.
                let finished = try sweeper.sweep(campaign: campaign, buckets: Self.buckets, redis: redis)
                #expect(finished == (stepsTaken == 1 || stepsTaken == 2 ? 1 : 0))
                try sweeper.sweep(campaign: campaign, buckets: Self.buckets, redis: redis)
                // The mover comes back (its reply was lost, not its life) and finishes too.
                try move.run(from: stoppedAt, on: redis)
                let after = try Self.accounted(campaign, slot: "s0", redis)
                #expect(after.total == Self.capacity && after.inFlight == 0)
                #expect(try Self.remaining(campaign, bucket: 1, redis) == 25, "stopped after \(stepsTaken) steps")
            }
        }
    }

    @Test func aStealTakesHalfAndAnEmptySourceMovesNothing() throws {
        try Self.withCluster { _, redis in
            try Self.fill("st", redis)
            let refill = PlaceTransfer(id: "r", campaign: "st", buckets: Self.buckets, slot: "s0", source: .pool, target: 2)
            #expect(try refill.run(from: .debit(.places(9)), on: redis) == .done(places: 9))
            let steal = PlaceTransfer(id: "s", campaign: "st", buckets: Self.buckets, slot: "s0", source: .bucket(2), target: 3)
            #expect(try steal.run(from: .debit(.half), on: redis) == .done(places: 5))
            #expect(try [2, 3].map { try Self.remaining("st", bucket: $0, redis) } == [4, 5])
            let fromNothing = PlaceTransfer(id: "n", campaign: "st", buckets: Self.buckets, slot: "s0", source: .bucket(0), target: 3)
            #expect(try fromNothing.run(from: .debit(.half), on: redis) == .done(places: 0))
            // The same id debits once: a resent debit takes nothing more.
            #expect(try refill.run(from: .debit(.places(9)), on: redis, stepsMax: 1) == .credit(places: 9))
            #expect(try Self.accounted("st", slot: "s0", redis).total == Self.capacity)
            // A bucket whose line waits for the slot, or for its site, keeps
            // its places for the line (waitlist.lua): nothing is taken.
            let lined = CampaignKeys("st", bucket: 3, of: Self.buckets)
            try redis.checked(["HSET", lined.waitSites, "s0", "hall"], slot: lined.slot)
            for queue in ["s0", "site:hall"] {
                try redis.checked(["ZADD", lined.waitQueuePrefix + queue, "1", "w"], slot: lined.slot)
                let kept = PlaceTransfer(id: "k-" + queue, campaign: "st", buckets: Self.buckets, slot: "s0", source: .bucket(3), target: 0)
                #expect(try kept.run(from: .debit(.half), on: redis) == .done(places: 0), "\(queue)")
                try redis.checked(["DEL", lined.waitQueuePrefix + queue], slot: lined.slot)
            }
            let free = PlaceTransfer(id: "f", campaign: "st", buckets: Self.buckets, slot: "s0", source: .bucket(3), target: 0)
            #expect(try free.run(from: .debit(.half), on: redis) == .done(places: 3))
        }
    }

    @Test func concurrentMovesStoppedAtRandomWithASweeperRunningKeepEveryPlace() throws {
        try Self.withCluster { cluster, redis in
            try Self.fill("cc", redis)
            let seeds = [cluster.address(0)]
            let stop = Locked(false)
            let sweeps = Locked(0)
            let sweeperThread = Thread {
                let redis = RedisSyncClusterClient(seeds: seeds)
                defer { redis.close() }
                let sweeper = TransferSweeper(staleMillis: 0, logger: Logger(label: "sweeper-test"))
                while !stop.withLock({ $0 }) {
                    _ = try? sweeper.sweep(campaign: "cc", buckets: Self.buckets, redis: redis)
                    sweeps.withLock { $0 += 1 }
                }
            }
            sweeperThread.start()
            concurrently(8) { worker in
                let redis = RedisSyncClusterClient(seeds: seeds)
                defer { redis.close() }
                var generator = SystemRandomNumberGenerator()
                for index in 0..<40 {
                    let target = Int.random(in: 0..<4, using: &generator)
                    let source: PlaceTransfer.Source = Bool.random(using: &generator) ? .pool : .bucket((target + 1) % 4)
                    let move = PlaceTransfer(id: "w\(worker)-\(index)", campaign: "cc", buckets: Self.buckets, slot: "s0",
                                             source: source, target: target)
                    let amount: PlaceTransfer.Amount = source == .pool ? .places(Int.random(in: 1...3, using: &generator)) : .half
                    _ = try? move.run(from: .debit(amount), on: redis, stepsMax: Int.random(in: 1...3, using: &generator))
                }
            }
            while sweeps.withLock({ $0 }) < 3 { Thread.sleep(forTimeInterval: 0.01) }
            stop.withLock { $0 = true }
            while !sweeperThread.isFinished { Thread.sleep(forTimeInterval: 0.01) }
            try TransferSweeper(staleMillis: 0, logger: Logger(label: "sweeper-test")).sweep(campaign: "cc", buckets: Self.buckets, redis: redis)
            let after = try Self.accounted("cc", slot: "s0", redis)
            #expect(after.total == Self.capacity && after.inFlight == 0)
            #expect(try (0..<4).allSatisfy { try Self.remaining("cc", bucket: $0, redis) >= 0 })
        }
    }

    /// Replicated: a step goes on only once a replica has the one before.
    /// With none (this cluster has no replicas) the move stops after its
    /// debit, its places held in the record for the sweeper.
    @Test func aReplicatedMoveWaitsForAReplicaAfterEachStep() throws {
        try Self.withCluster { _, redis in
            try Self.fill("rw", redis)
            let move = PlaceTransfer(id: "w", campaign: "rw", buckets: Self.buckets, slot: "s0", source: .pool, target: 1)
            #expect(throws: RedisError.self) { try move.run(from: .debit(.places(10)), on: redis, replicaAcks: 1) }
            let state = try Self.accounted("rw", slot: "s0", redis)
            #expect(state.total == Self.capacity && state.inFlight == 10)
            #expect(try Self.remaining("rw", bucket: 1, redis) == 0)
        }
    }
}
