import Foundation
import Logging
import ProcessSupervision
import RedisClient
import Testing

/// Key slots, hash tags, cluster error replies and the slot map: pure
/// logic, checked against the cluster specification's examples and against
/// a real cluster-enabled redis-server.
@Suite(.serialized) struct ClusterSlotTests {
    /// A lone cluster-enabled node: it answers CLUSTER KEYSLOT, and owns
    /// every slot once they are added to it.
    func withClusterNode(_ body: (RedisSyncClient, Int) throws -> Void) throws {
        let directory = NSTemporaryDirectory() + "cluster-node-" + UUID().uuidString
        let port = try RedisSupervisor.freeClusterPort()
        let redis = RedisSupervisor(directory: directory, port: port,
                                    extraArguments: ["--cluster-enabled", "yes", "--cluster-config-file", directory + "/nodes.conf"],
                                    logger: Logger(label: "test"))
        try redis.start()
        defer {
            redis.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let client = RedisSyncClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        try body(client, port)
    }

    func slot(_ key: [UInt8]) -> Int { key.withUnsafeBytes { ClusterSlot.of($0) } }

    func tag(_ key: String) -> String {
        let bytes = Array(key.utf8)
        return String(decoding: bytes[bytes.withUnsafeBytes { ClusterSlot.hashTag(of: $0) }], as: UTF8.self)
    }

    @Test func crc16IsXMODEMAsTheSpecificationGivesIt() {
        let check = Array("123456789".utf8).withUnsafeBytes { ClusterSlot.crc16($0) }
        #expect(check == 0x31C3)
        #expect(ClusterSlot.of("123456789") == 0x31C3 % 16_384)
    }

    /// The specification's own examples of hash tags.
    @Test func hashTagsFollowTheSpecification() {
        #expect(tag("{user1000}.following") == "user1000")
        #expect(tag("{user1000}.followers") == "user1000")
        #expect(tag("foo{}{bar}") == "foo{}{bar}")
        #expect(tag("foo{{bar}}zap") == "{bar")
        #expect(tag("foo{bar}{zap}") == "bar")
        #expect(tag("no tag") == "no tag")
        #expect(tag("{c:bench}:cfg") == "c:bench")
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("user1000"))
    }

    @Test func everySlotIsTheOneRedisComputes() throws {
        try withClusterNode { client, _ in
            var generator = SystemRandomNumberGenerator()
            let alphabet = Array("abcxyz019{}:- ".utf8) + [0, 0xFF, 0x7B, 0x7D]
            var keys: [[UInt8]] = [Array("foo".utf8), Array("{}".utf8), Array("{".utf8), Array("}{a}".utf8), []]
            for _ in 0..<400 { keys.append((0..<Int.random(in: 1...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }) }
            let replies = try client.pipeline(keys.map { ["CLUSTER", "KEYSLOT", String(decoding: $0, as: UTF8.self)] })
            for (key, reply) in zip(keys, replies) {
                // (A key that is not UTF-8 went as its repaired text.)
                let sent = Array(String(decoding: key, as: UTF8.self).utf8)
                #expect(Int64(slot(sent)) == reply.integer, "\(sent)")
            }
        }
    }

    @Test func clusterErrorsAreReadAndOthersAreNot() {
        let there = ClusterNodeAddress(host: "127.0.0.1", port: 6381)
        #expect(ClusterError(errorMessage: "MOVED 3999 127.0.0.1:6381") == .moved(slot: 3999, to: there))
        #expect(ClusterError(errorMessage: "ASK 3999 127.0.0.1:6381") == .ask(slot: 3999, to: there))
        #expect(ClusterError(errorMessage: "MOVED 1 ::1:7000") == .moved(slot: 1, to: ClusterNodeAddress(host: "::1", port: 7000)))
        // An unknown endpoint is the speaker's host.
        let speaker = ClusterNodeAddress(host: "10.0.0.9", port: 7000)
        for unknown in ["MOVED 2 :7002", "MOVED 2 ?:7002"] {
            guard case .moved(2, let address)? = ClusterError(errorMessage: unknown) else { Issue.record("\(unknown)"); continue }
            #expect(address.resolved(against: speaker) == ClusterNodeAddress(host: "10.0.0.9", port: 7002))
        }
        #expect(there.resolved(against: speaker) == there)
        #expect(ClusterError(errorMessage: "TRYAGAIN Multiple keys request during rehashing of slot") == .tryAgain)
        #expect(ClusterError(errorMessage: "CLUSTERDOWN The cluster is down") == .clusterDown)
        #expect(ClusterError(errorMessage: "CLUSTERDOWN Hash slot not served") == .clusterDown)
        #expect(ClusterError(errorMessage: "LOADING Redis is loading the dataset in memory") == .loading)
        #expect(ClusterError(errorMessage: "READONLY You can't write against a read only replica.") == .readOnly)
        for other in ["MOVED", "MOVED x 127.0.0.1:1", "MOVED 16384 127.0.0.1:1", "MOVED -1 127.0.0.1:1", "MOVED 1 nowhere",
                      "MOVED 1 127.0.0.1:0", "ASK 1 127.0.0.1:70000", "ERR wrong number", "NOSCRIPT", ""] {
            #expect(ClusterError(errorMessage: other) == nil, "\(other)")
        }
    }

    /// CLUSTER SHARDS and CLUSTER SLOTS of a real node give the same map;
    /// MOVED patches it.
    @Test func theSlotMapIsReadFromTheClusterAndPatchedByMoved() throws {
        try withClusterNode { client, port in
            // A lone node does not know its own address yet: the map uses
            // the one it was asked at.
            let node = ClusterNodeAddress(host: "127.0.0.1", port: port)
            #expect(try ClusterSlotMap(shards: client.command(["CLUSTER", "SHARDS"]), answeredBy: node).unownedSlotCount == 16_384)
            try client.checked(["CLUSTER", "ADDSLOTSRANGE", "0", "99", "200", "16383"])
            for map in [try ClusterSlotMap(shards: client.command(["CLUSTER", "SHARDS"]), answeredBy: node),
                        try ClusterSlotMap(slots: client.command(["CLUSTER", "SLOTS"]), answeredBy: node)] {
                #expect(map.masters == [node])
                #expect(map.unownedSlotCount == 100)
                #expect(map.master(forSlot: 0) == node && map.master(forSlot: 16_383) == node)
                #expect(map.master(forSlot: 100) == nil && map.master(forSlot: 199) == nil)
            }
            var map = try ClusterSlotMap(shards: client.command(["CLUSTER", "SHARDS"]), answeredBy: node)
            let other = ClusterNodeAddress(host: "127.0.0.1", port: 7001)
            map.move(slot: 150, to: other)
            map.move(slot: 5, to: other)
            #expect(map.masters == [node, other])
            #expect(map.master(forSlot: 150) == other && map.master(forSlot: 5) == other && map.master(forSlot: 6) == node)
            #expect(map.unownedSlotCount == 99)
        }
    }

    @Test func malformedMapsAreRefusedNotTrapped() {
        let replies: [RedisReply] = [
            .null, .error("ERR"), .array([.integer(1)]),
            .array([.array([.string(Array("slots".utf8)), .array([.integer(0), .integer(16_384)]),
                            .string(Array("nodes".utf8)), .array([])])]),
            .array([.array([.string(Array("slots".utf8)), .array([.integer(5)]), .string(Array("nodes".utf8)), .array([])])]),
            .array([.array([.string(Array("slots".utf8))])]),
        ]
        let node = ClusterNodeAddress(host: "127.0.0.1", port: 7000)
        for reply in replies {
            let refused = (try? ClusterSlotMap(shards: reply, answeredBy: node)) == nil  // (a map is too long to print)
            #expect(refused, "\(reply)")
        }
        let slots: [RedisReply] = [
            .null, .array([.array([.integer(0), .integer(10)])]),
            .array([.array([.integer(10), .integer(0), .array([.string(Array("h".utf8)), .integer(1)])])]),
            .array([.array([.integer(0), .integer(10), .array([.string(Array("h".utf8)), .integer(0)])])]),
        ]
        for reply in slots {
            let refused = (try? ClusterSlotMap(slots: reply, answeredBy: node)) == nil
            #expect(refused, "\(reply)")
        }
    }
}
