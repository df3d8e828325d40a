@testable import AllotServer
import AllotDomain
import Foundation
import ProcessSupervision
import RedisClient
import Testing

/// `--durability replicated`: a 201 is sent only once a replica has the
/// reservation; without one in time the answer is 503, and the same
/// Idempotency-Key gets the 201 once the replica is back.
@Suite(.serialized) struct ReplicatedDurabilityTests {
    /// A server in replicated mode on a master with one online replica. Its
    /// wait is long enough for a replica on a busy test machine; only a
    /// paused one misses it.
    func withReplicatedStack(_ body: (LiveStack, RedisProcess) throws -> Void) throws {
        let stack = try LiveStack { config in
            config.replicaAcksRequired = 1
            config.redisCommandTimeoutMillis = 4_000
            config.replicaWaitMillis = 1_500
        }
        defer { stack.shutdown() }
        // The first sync at once, not after Redis's 5 s wait for more replicas.
        _ = try stack.redis.command(["CONFIG", "SET", "repl-diskless-sync-delay", "0"])
        let replica = try RedisProcess(directory: stack.directory + "/replica",
                                       extraArguments: ["--replicaof", "127.0.0.1", String(stack.redis.port)])
        defer { replica.stop() }
        #expect(try waitUntil { (try stack.redis.command(["INFO", "replication"]).text ?? "").contains("state=online") })
        try body(stack, replica)
    }

    @Test func a201WaitsForAReplicaAndA503SaysWhenNoneConfirmed() throws {
        try withReplicatedStack { stack, replica in
            // The start-up check sees the replica too.
            #expect(try Durability.replicated.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: stack.redis.port))).isEmpty)
            try stack.makeCampaign("rep", limit: 1, capacity: 100)
            let client = stack.client()
            for citizen in 0..<20 {
                let answer = try stack.reserve(client, campaign: "rep", citizen: "r-\(citizen)", slot: "s0")
                #expect(answer.status == 201)
                // Already on the replica when the 201 arrives.
                let id = try #require(answer.json["id"] as? String)
                #expect(try replica.command(["HEXISTS", CampaignKeys("rep").records, id]).integer == 1, "\(id)")
        }
        // A replica that does not answer: no 201, a 503 that says why.
        replica.pause()
        let unconfirmed = try stack.reserve(client, campaign: "rep", citizen: "late", slot: "s0", headers: ["Idempotency-Key": "late-1"])
        #expect(unconfirmed.status == 503, "\(unconfirmed.text)")
        #expect(unconfirmed.text.contains("no replica confirmed"))
        // From then on the shard is refused before anything is written:
        // fast, and no reservation made that could not be confirmed.
        let recordsBefore = try stack.redis.command(["HLEN", CampaignKeys("rep").records]).integer
        let started = Date()
        let refused = try stack.reserve(client, campaign: "rep", citizen: "later", slot: "s0")
        #expect(refused.status == 503 && refused.text.contains("no replica is confirming"), "\(refused.text)")
        #expect(Date().timeIntervalSince(started) < 1.0)
        #expect(try stack.redis.command(["HLEN", CampaignKeys("rep").records]).integer == recordsBefore)
        replica.resume()
        // Sent again with its key: the reservation made then, now confirmed
        // (once the shard's probe has seen the replica again).
        var replayed: HTTPClient.Response?
        #expect(waitUntil {
            replayed = try? stack.reserve(client, campaign: "rep", citizen: "late", slot: "s0", headers: ["Idempotency-Key": "late-1"])
            return replayed?.status == 201
        }, "\(replayed?.text ?? "")")
        #expect(try invariantViolations(stack, campaign: "rep", limit: 1).isEmpty)
        }
    }

    /// Many reservations at once share their WAITs: fewer WAITs than
    /// reservations, and every 201 still has its record on the replica.
    /// A confirm is what keeps a held place: it too is answered only once a
    /// replica has it, and sent again once the replica is back it is 200.
    @Test func aConfirmWaitsForAReplicaToo() throws {
        try withReplicatedStack { stack, replica in
            try stack.makeCampaign("rephold", limit: 1, capacity: 10, holdSeconds: 60)
            let client = stack.client()
            let held = try stack.reserve(client, campaign: "rephold", citizen: "h", slot: "s0")
            #expect(held.status == 201 && held.json["status"] as? String == "held", "\(held.text)")
            let id = try #require(held.json["id"] as? String)
            replica.pause()
            let unconfirmed = try client.request("POST", "/v1/reservations/\(id)/confirm")
            #expect(unconfirmed.status == 503 && unconfirmed.text.contains("no replica confirmed"), "\(unconfirmed.text)")
            replica.resume()
            var confirmed: HTTPClient.Response?
            #expect(waitUntil(seconds: 10) {
                confirmed = try? client.request("POST", "/v1/reservations/\(id)/confirm")
                return confirmed?.status == 200
            }, "\(confirmed?.text ?? "")")
            #expect(confirmed?.json["status"] as? String == "confirmed")
            #expect(try replica.command(["HGET", CampaignKeys("rephold").records, id]).text?.hasPrefix("confirmed|") == true)
        }
    }

    @Test func concurrentReservationsShareTheirWaits() throws {
        try withReplicatedStack { stack, replica in
            try stack.makeCampaign("many", limit: 1, capacity: 1_000)
            _ = try stack.redis.command(["CONFIG", "RESETSTAT"])
            let ids = Locked<[String]>([])
            let port = stack.port
            concurrently(32) { worker in
                let client = HTTPClient(port: port)
                for attempt in 0..<10 {
                    if let answer = try? stack.reserve(client, campaign: "many", citizen: "m-\(worker)-\(attempt)", slot: "s0"),
                       answer.status == 201, let id = answer.json["id"] as? String {
                        ids.withLock { $0.append(id) }
                    }
                }
        }
        let booked = ids.withLock { $0 }
        #expect(booked.count == 320)
        let stats = try stack.redis.command(["INFO", "commandstats"]).text ?? ""
        let waits = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_wait:") }
            .flatMap { $0.split(separator: "=").dropFirst().first?.split(separator: ",").first }.flatMap { Int($0) } ?? 0
        #expect(waits > 0 && waits < booked.count, "\(waits) WAITs for \(booked.count) reservations")
        let onReplica = try booked.allSatisfy { try replica.command(["HEXISTS", CampaignKeys("many").records, $0]).integer == 1 }
        #expect(onReplica)
        }
    }

    @Test func theStartUpCheckRefusesARedisWithoutAReplica() throws {
        let redis = try RedisProcess(directory: NSTemporaryDirectory() + "no-replica-" + UUID().uuidString)
        defer { redis.stop() }
        #expect(throws: Durability.Unmet.self) { try Durability.replicated.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))) }
    }

    /// On a cluster each reservation's WAIT goes to the master that made it,
    /// on the connection that made it: every master waits for its own
    /// replica, and every 201 is on the replica of its bucket's master.
    @Test func onAClusterEachMastersReplicaHasWhatItConfirmed() throws {
        let stack = try LiveStack(clusterMasters: 3, clusterReplicasPerMaster: 1) { config in
            config.replicaAcksRequired = 1
            config.redisCommandTimeoutMillis = 4_000
            config.replicaWaitMillis = 1_500
        }
        defer { stack.shutdown() }
        let cluster = try #require(stack.cluster)
        #expect(try Durability.replicated.check(stack.redisDeployment).isEmpty)
        try stack.makeCampaign("rc", limit: 1, slots: 1, capacity: 1_000, buckets: 6)
        for master in 0..<3 { _ = try cluster.clients[master].command(["CONFIG", "RESETSTAT"]) }
        let ids = Locked<[String]>([])
        let port = stack.port
        concurrently(16) { worker in
            let client = HTTPClient(port: port)
            for attempt in 0..<10 {
                if let answer = try? stack.reserve(client, campaign: "rc", citizen: "w-\(worker)-\(attempt)", slot: "s0"),
                   answer.status == 201, let id = answer.json["id"] as? String {
                    ids.withLock { $0.append(id) }
                }
            }
        }
        let booked = Set(ids.withLock { $0 })
        #expect(booked.count == 160)
        var onReplicas: Set<String> = []
        for replica in 3..<6 {
            // A cluster replica serves reads of its master's slots once asked to.
            try cluster.clients[replica].checked(["READONLY"])
            for bucket in 0..<6 {
                let keys = CampaignKeys("rc", bucket: bucket, of: CampaignBuckets(6)!)
                let held = try cluster.clients[replica].command(["HKEYS", keys.records])
                onReplicas.formUnion(held.elements?.compactMap(\.text) ?? [])  // a bucket of another master: an error, no keys
            }
        }
        #expect(booked.isSubset(of: onReplicas), "\(booked.subtracting(onReplicas).count) confirmed but not on a replica")
        for master in 0..<3 {
            let stats = try cluster.clients[master].command(["INFO", "commandstats"]).text ?? ""
            #expect(stats.contains("cmdstat_wait:"), "master \(master) made reservations without a WAIT")
        }
        // One master without its replica (as after a failover): a node may
        // still start, warned that the shard is refused until one confirms.
        cluster.stopNode(3)
        #expect(try waitUntil { !((try cluster.clients[0].command(["INFO", "replication"]).text ?? "").contains("state=online")) })
        let warnings = try Durability.replicated.check(stack.redisDeployment)
        #expect(warnings.count == 1 && warnings[0].contains("refused until a replica confirms"), "\(warnings)")
    }

    @Test func aClusterWithoutReplicasIsRefusedForReplicated() throws {
        let cluster = try LoopbackRedisCluster(masters: 3)
        defer { cluster.stop() }
        #expect(throws: Durability.Unmet.self) { try Durability.replicated.check(.cluster(seeds: [cluster.address(0)])) }
        #expect(try Durability.standard.check(.cluster(seeds: [cluster.address(0)])).isEmpty)
    }
}
