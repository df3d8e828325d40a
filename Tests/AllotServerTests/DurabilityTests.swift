import AllotServer
import Foundation
import RedisClient
import Testing

/// `--durability`: strict refuses a Redis that does not fsync every write.
@Suite struct DurabilityTests {
    @Test func strictNeedsAppendFsyncAlwaysStandardWarnsWithoutAOF() throws {
        let directory = NSTemporaryDirectory() + "allot-durability-" + UUID().uuidString
        let redis = try RedisProcess(directory: directory)  // AOF on, appendfsync everysec
        defer {
            redis.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        #expect(try Durability.standard.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))).isEmpty)
        #expect(throws: Durability.Unmet.self) { try Durability.strict.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))) }
        _ = try redis.command(["CONFIG", "SET", "appendfsync", "always"])
        #expect(try Durability.strict.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))).isEmpty)
        _ = try redis.command(["CONFIG", "SET", "appendonly", "no"])
        #expect(throws: Durability.Unmet.self) { try Durability.strict.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))) }
        #expect(try Durability.standard.check(.single(ClusterNodeAddress(host: "127.0.0.1", port: redis.port))).first?.contains("without AOF") == true)
    }
}
