import Foundation
import Logging
import ProcessSupervision
import RedisClient
import Testing

/// The blocking client against a real redis-server (the admin worker's,
/// the persister's and `allot recover`'s client).
@Suite(.serialized) struct RedisSyncClientTests {
    func withRedis(_ body: (RedisSupervisor) throws -> Void) throws {
        let directory = NSTemporaryDirectory() + "redis-client-" + UUID().uuidString
        let redis = RedisSupervisor(directory: directory, port: try RedisSupervisor.freePort(), logger: Logger(label: "test"))
        try redis.start()
        defer {
            redis.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try body(redis)
    }

    @Test func pipelinedRepliesComeBackInOrderAndErrorRepliesAreValues() throws {
        try withRedis { redis in
            let client = RedisSyncClient(host: "127.0.0.1", port: redis.port)
            defer { client.close() }
            let replies = try client.pipeline((0..<100).map { _ in ["INCR", "n"] } + [["GET", "n"], ["HGET", "n", "x"]])
            #expect(replies.count == 102)
            #expect(replies.prefix(100).map(\.integer) == (1...100).map { Int64($0) })
            #expect(replies[100].text == "100")
            #expect(replies[101].errorMessage?.hasPrefix("WRONGTYPE") == true)
            #expect(throws: RedisError.self) { try client.checked(["HGET", "n", "x"]) }
            // Binary-safe arguments, NULs included.
            try client.checked(["SET", "b", "a\u{0}b"])
            #expect(try client.command(["GET", "b"]) == .string([97, 0, 98]))
        }
    }

    @Test func aClosedConnectionIsRedialledOnceForTheNextCommand() throws {
        try withRedis { redis in
            let client = RedisSyncClient(host: "127.0.0.1", port: redis.port)
            defer { client.close() }
            #expect(try client.command(["PING"]) == .status("PONG"))
            // Redis drops every client (as a restart does): the reused
            // connection fails once, and the command goes through on a new one.
            let other = RedisSyncClient(host: "127.0.0.1", port: redis.port)
            defer { other.close() }
            try other.checked(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
            #expect(try client.command(["PING"]) == .status("PONG"))
        }
    }

    @Test func noRedisIsAThrownErrorNotAHang() throws {
        let client = RedisSyncClient(host: "127.0.0.1", port: try RedisSupervisor.freePort(), timeoutMillis: 300)
        defer { client.close() }
        #expect(throws: RedisError.self) { try client.command(["PING"]) }
    }
}
