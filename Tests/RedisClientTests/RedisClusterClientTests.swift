import EventLoops
import Foundation
import ProcessSupervision
import RedisClient
import Testing

/// The cluster client against a real three-master cluster: every key at its
/// slot's master, and the specification's redirections followed.
@Suite(.serialized) struct RedisClusterClientTests {
    final class Fixture: @unchecked Sendable {
        let cluster: LoopbackRedisCluster
        let thread = LoopThread()
        let client: RedisClusterClient

        init(replicasPerMaster: Int = 0) throws {
            cluster = try LoopbackRedisCluster(replicasPerMaster: replicasPerMaster)
            var settings = RedisClusterClient.Settings(seeds: [cluster.address(0)])
            settings.deadlineMillis = 800
            let loop = thread.loop
            client = thread.sync { RedisClusterClient(loop: loop, settings: settings) }
            let client = client, thread = thread
            thread.sync { client.start() }
            try cluster.wait("the client to be ready") { thread.sync { client.isReady } }
        }

        /// Sends and waits for the reply.
        func send(_ arguments: [String], key: String) -> Result<RedisReply, RedisFailure> {
            let client = client
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var result: Result<RedisReply, RedisFailure>?
            thread.sync {
                client.send(arguments, slot: ClusterSlot.of(key)) {
                    result = $0
                    done.signal()
                }
            }
            done.wait()
            return result!
        }

        /// The reply, nil when the command failed (not an error reply).
        func reply(_ arguments: [String], key: String) -> RedisReply? {
            try? send(arguments, key: key).get()
        }

        func succeeds(_ arguments: [String], key: String) -> Bool {
            guard let reply = reply(arguments, key: key) else { return false }
            return reply.errorMessage == nil
        }

        func masterOf(slot: Int) -> ClusterNodeAddress? {
            let client = client
            return thread.sync { client.map.master(forSlot: slot) }
        }

        func stop() {
            let client = client
            thread.sync { client.stop() }
            thread.stop()
            cluster.stop()
        }
    }

    @Test func everyKeyGoesToItsSlotsMaster() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let client = fixture.client
        #expect(fixture.thread.sync { client.map.masters.count } == 3)
        let keys: [String] = (0..<150).map { "key-\($0)" } + (0..<30).map { "{tag}-\($0)" }
        for key in keys {
            let stored = fixture.succeeds(["SET", key, "v-" + key], key: key)
            #expect(stored, "\(key)")
        }
        for key in keys {
            // Read straight from the master that owns the slot.
            let owner = fixture.cluster.owner(ofSlot: ClusterSlot.of(key))
            let value = try fixture.cluster.clients[owner].command(["GET", key]).text
            #expect(value == "v-" + key, "\(key)")
        }
        let counts: [Int64] = try fixture.cluster.clients.map { try $0.command(["DBSIZE"]).integer ?? 0 }
        #expect(counts.reduce(0, +) == Int64(keys.count))
        #expect(counts.allSatisfy { $0 > 0 })
    }

    @Test func movedIsFollowedAndPatchesTheMap() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let key = "moving", slot = ClusterSlot.of(key)
        let source = fixture.cluster.owner(ofSlot: slot), target = (source + 1) % 3
        #expect(fixture.succeeds(["SET", key, "1"], key: key))
        try fixture.cluster.moveSlot(slot, from: source, to: target)
        // The client's map still names the source: MOVED, then the target.
        let incremented = fixture.reply(["INCR", key], key: key)?.integer
        #expect(incremented == 2)
        #expect(fixture.masterOf(slot: slot) == fixture.cluster.address(target))
        let stored = try fixture.cluster.clients[target].command(["GET", key]).text
        #expect(stored == "2")
    }

    @Test func askIsFollowedWithoutChangingTheMap() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let key = "asked", slot = ClusterSlot.of(key)
        let source = fixture.cluster.owner(ofSlot: slot), target = (source + 2) % 3
        #expect(fixture.succeeds(["SET", key, "here"], key: key))
        // Half-way through a migration: the key is on the target already.
        try fixture.cluster.moveSlot(slot, from: source, to: target, finish: false)
        let read = fixture.reply(["GET", key], key: key)?.text
        #expect(read == "here")
        #expect(fixture.masterOf(slot: slot) == fixture.cluster.address(source))
    }

    /// A command in flight when its master's connection drops may have run:
    /// it fails, and is not sent again (a second run could book twice).
    @Test func aCommandInFlightWhenTheConnectionDropsIsNotSentAgain() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let key = "waiting-list", owner = fixture.cluster.owner(ofSlot: ClusterSlot.of(key))
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<RedisReply, RedisFailure>?
        let client = fixture.client
        fixture.thread.sync {
            client.send(["BLPOP", key, "3"], slot: ClusterSlot.of(key)) {
                result = $0
                done.signal()
            }
        }
        Thread.sleep(forTimeInterval: 0.2)
        try fixture.cluster.clients[owner].checked(["CLIENT", "KILL", "TYPE", "normal"])
        #expect(done.wait(timeout: .now() + 2) == .success)
        guard case .failure(.disconnected)? = result else {
            Issue.record("expected a failure, got \(String(describing: result))")
            return
        }
        // Had it been sent again, this value would be popped by it.
        _ = try fixture.cluster.clients[owner].command(["RPUSH", key, "kept"])
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try fixture.cluster.clients[owner].command(["LLEN", key]).integer == 1)
    }

    /// A reply names the connection it came on (after a redirection, the
    /// node that ran the command), and a command meant for that connection
    /// is refused once it has been made again: a WAIT there would count
    /// another connection's writes.
    @Test func aCommandForAConnectionMadeAgainIsRefused() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let key = "written", owner = fixture.cluster.owner(ofSlot: ClusterSlot.of(key))
        let client = fixture.client
        func write() -> RedisConnection? {
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var connection: RedisConnection?
            fixture.thread.sync {
                client.send(["SET", key, "1"], slot: ClusterSlot.of(key)) { _ in
                    connection = client.replyingConnection
                    done.signal()
                }
            }
            done.wait()
            return connection
        }
        let made = try #require(write())
        #expect(made.node == fixture.cluster.address(owner))
        func wait(on connection: RedisConnection) -> Result<RedisReply, RedisFailure> {
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var result: Result<RedisReply, RedisFailure>?
            fixture.thread.sync {
                client.send(["WAIT", "0", "0"], on: connection) {
                    result = $0
                    done.signal()
                }
            }
            done.wait()
            return result!
        }
        #expect((try? wait(on: made).get())?.integer == 0)
        try fixture.cluster.clients[owner].checked(["CLIENT", "KILL", "TYPE", "normal"])
        try fixture.cluster.wait("the client to connect again") { (write()?.generation ?? 0) > made.generation }
        guard case .failure(.disconnected) = wait(on: made) else {
            Issue.record("a command for the old connection went on the new one")
            return
        }
    }

    /// A master stopped for good: its replica is promoted (node timeout
    /// 2 s), and the client finds it by reading the map again, with the data
    /// the master had replicated. Meanwhile commands fail fast (503s).
    @Test func aFailoverIsFoundAndServed() throws {
        let fixture = try Fixture(replicasPerMaster: 1)
        defer { fixture.stop() }
        let key = "survivor", slot = ClusterSlot.of(key)
        let owner = fixture.cluster.owner(ofSlot: slot)
        #expect(fixture.succeeds(["SET", key, "before"], key: key))
        // On the replica before the master goes (WAIT: replicated).
        #expect(try fixture.cluster.clients[owner].command(["WAIT", "1", "2000"]).integer == 1)
        fixture.cluster.stopNode(owner)
        let started = Date()
        try fixture.cluster.wait("the replica to be promoted and found", seconds: 20) {
            fixture.reply(["GET", key], key: key)?.text == "before"
        }
        let failedOver = Date().timeIntervalSince(started)
        #expect(failedOver < 20, "\(failedOver) s")
        let replica = fixture.cluster.mastersAtStart + owner  // one replica per master, in master order
        #expect(fixture.masterOf(slot: slot) == fixture.cluster.address(replica))
        #expect(fixture.succeeds(["SET", key, "after"], key: key))
    }

    /// A slot no master serves: fast failures, never a hang, and service
    /// again once it has a master.
    @Test func aSlotWithoutAMasterFailsFastAndRecovers() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let key = "orphan", slot = ClusterSlot.of(key)
        let owner = fixture.cluster.owner(ofSlot: slot)
        try fixture.cluster.clients[owner].checked(["CLUSTER", "DELSLOTS", String(slot)])
        let started = Date()
        guard case .failure(.disconnected) = fixture.send(["SET", key, "x"], key: key) else {
            Issue.record("a slot without a master was served")
            return
        }
        #expect(Date().timeIntervalSince(started) < 1.5)
        try fixture.cluster.clients[owner].checked(["CLUSTER", "ADDSLOTS", String(slot)])
        try fixture.cluster.wait("the slot to be served again") { fixture.succeeds(["SET", key, "y"], key: key) }
        let stored = try fixture.cluster.clients[owner].command(["GET", key]).text
        #expect(stored == "y")
    }

    /// A node that sees a slot with no owner answers `CLUSTERDOWN` for every
    /// key (full coverage is required): a key of another slot it serves
    /// fails within its deadline too (retried with back-off, the map read
    /// again meanwhile), and is served again once the slot is back.
    @Test func clusterDownAnswersFailWithinTheDeadlineAndRecover() throws {
        let fixture = try Fixture()
        defer { fixture.stop() }
        let lost = "orphan", slot = ClusterSlot.of(lost)
        let owner = fixture.cluster.owner(ofSlot: slot)
        let other = (0..<1000).map { "elsewhere-\($0)" }.first {
            ClusterSlot.of($0) != slot && fixture.cluster.owner(ofSlot: ClusterSlot.of($0)) == owner
        }!
        let otherOwner = owner
        try fixture.cluster.clients[owner].checked(["CLUSTER", "DELSLOTS", String(slot)])
        try fixture.cluster.wait("the other master to answer CLUSTERDOWN") {
            (try? fixture.cluster.clients[otherOwner].command(["GET", other]))?.errorMessage?.hasPrefix("CLUSTERDOWN") == true
        }
        let started = Date()
        let answer = fixture.send(["SET", other, "x"], key: other)
        let took = Date().timeIntervalSince(started)
        if case .success(let reply) = answer, reply.errorMessage == nil { Issue.record("served while the cluster was down") }
        #expect(took < 1.5, "\(took) s")
        try fixture.cluster.clients[owner].checked(["CLUSTER", "ADDSLOTS", String(slot)])
        try fixture.cluster.wait("the cluster to serve again") { fixture.succeeds(["SET", other, "y"], key: other) }
        #expect(try fixture.cluster.clients[otherOwner].command(["GET", other]).text == "y")
    }
}

/// The blocking cluster client (the persister's and the admin worker's)
/// against the same kind of cluster.
@Suite(.serialized) struct RedisSyncClusterClientTests {
    func withCluster(_ body: (LoopbackRedisCluster, RedisSyncClusterClient) throws -> Void) throws {
        let cluster = try LoopbackRedisCluster()
        defer { cluster.stop() }
        let client = RedisSyncClusterClient(seeds: [cluster.address(1)])
        client.deadlineMillis = 800
        defer { client.close() }
        try body(cluster, client)
    }

    @Test func everyKeyGoesToItsSlotsMasterAndEveryMasterCanBeAsked() throws {
        try withCluster { cluster, client in
            for index in 0..<120 {
                let key = "sync-\(index)"
                let reply = try client.command(["SET", key, String(index)], slot: ClusterSlot.of(key))
                #expect(reply.errorMessage == nil)
                let stored = try cluster.clients[cluster.owner(ofSlot: ClusterSlot.of(key))].command(["GET", key]).text
                #expect(stored == String(index))
            }
            let pongs = try client.commandOnEveryMaster(["PING"])
            #expect(Set(pongs.keys) == Set((0..<3).map(cluster.address)))
        }
    }

    @Test func movedAndAskAreFollowed() throws {
        try withCluster { cluster, client in
            let moved = "sync-moved", asked = "sync-asked"
            for key in [moved, asked] { _ = try client.command(["SET", key, "1"], slot: ClusterSlot.of(key)) }
            let movedSlot = ClusterSlot.of(moved), askedSlot = ClusterSlot.of(asked)
            try cluster.moveSlot(movedSlot, from: cluster.owner(ofSlot: movedSlot), to: (cluster.owner(ofSlot: movedSlot) + 1) % 3)
            #expect(try client.command(["INCR", moved], slot: movedSlot).integer == 2)
            #expect(client.map.master(forSlot: movedSlot) == cluster.address((cluster.owner(ofSlot: movedSlot) + 1) % 3))
            let askedOwner = cluster.owner(ofSlot: askedSlot)
            try cluster.moveSlot(askedSlot, from: askedOwner, to: (askedOwner + 2) % 3, finish: false)
            #expect(try client.command(["GET", asked], slot: askedSlot).text == "1")
            #expect(client.map.master(forSlot: askedSlot) == cluster.address(askedOwner))
        }
    }

    @Test func aSlotWithoutAMasterThrowsWithinTheDeadline() throws {
        try withCluster { cluster, client in
            let key = "sync-orphan", slot = ClusterSlot.of(key)
            try cluster.clients[cluster.owner(ofSlot: slot)].checked(["CLUSTER", "DELSLOTS", String(slot)])
            let started = monotonicMicros()
            #expect(throws: RedisError.self) { try client.command(["SET", key, "x"], slot: slot) }
            #expect(monotonicMicros() - started < 1_500_000)
            try cluster.clients[cluster.owner(ofSlot: slot)].checked(["CLUSTER", "ADDSLOTS", String(slot)])
            try cluster.wait("the slot to be served again") { (try? client.command(["SET", key, "y"], slot: slot))?.errorMessage == nil }
        }
    }
}
