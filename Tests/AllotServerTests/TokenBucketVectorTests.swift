@testable import AllotServer
import AllotDomain
import Foundation
import RedisClient
import Testing

/// One set of token bucket vectors (Tests/Vectors/token-bucket.json), held
/// by both implementations: AllotDomain/TokenBucket.swift and
/// Scripts/token_bucket.lua, which reserve.lua runs.
@Suite struct TokenBucketVectorTests {
    @Test func swiftGivesEveryVector() throws {
        for vector in try TokenBucketVector.load() {
            let policy = try #require(BucketPolicy(rate: vector.rate, burst: vector.burst), "\(vector.name)")
            var bucket = vector.tokens.map { TokenBucket(tokens: $0, updatedMicros: vector.updatedMicros ?? vector.nowMicros) }
                ?? TokenBucket(policy: policy, nowMicros: vector.nowMicros)
            let result = bucket.take(policy: policy, nowMicros: vector.nowMicros)
            #expect(abs(bucket.tokens - vector.expectTokens) < 1e-9, "\(vector.name)")
            #expect(bucket.updatedMicros == vector.expectStamp, "\(vector.name)")
            switch result {
            case .taken:
                #expect(vector.expectTaken, "\(vector.name)")
                #expect(policy.refillMillis(from: bucket.tokens) == vector.expectExpiryMillis, "\(vector.name)")
            case .empty(let retry):
                #expect(!vector.expectTaken, "\(vector.name)")
                #expect(retry == vector.expectRetryAfterSeconds, "\(vector.name)")
            }
        }
    }

    @Test func luaGivesEveryVector() throws {
        let directory = NSTemporaryDirectory() + "allot-lua-" + UUID().uuidString
        let redis = try RedisProcess(directory: directory)
        defer {
            redis.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        // The prelude reserve.lua is loaded with, and a line that returns
        // its results as text (Redis turns Lua numbers into integers).
        let source = Scripts.resource("token_bucket") + """

            local taken, tokens, stamp, retry, expiry = bucket_take(tonumber(ARGV[1]), tonumber(ARGV[2]),
              tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
            return {taken and 1 or 0, string.format('%.17g', tokens), string.format('%.17g', stamp), retry, expiry}
            """
        for vector in try TokenBucketVector.load() {
            let reply = try redis.command([
                "EVAL", source, "0", vector.tokens.map { String($0) } ?? "", vector.updatedMicros.map { String($0) } ?? "",
                String(vector.rate), String(vector.burst), String(vector.nowMicros),
            ])
            let parts = try #require(reply.elements, "\(vector.name): \(reply)")
            try #require(parts.count == 5)
            #expect((parts[0].integer == 1) == vector.expectTaken, "\(vector.name)")
            #expect(abs((parts[1].text.flatMap(Double.init) ?? -1) - vector.expectTokens) < 1e-9, "\(vector.name)")
            #expect(parts[2].text.flatMap(Double.init).map { Int64($0) } == vector.expectStamp, "\(vector.name)")
            #expect(parts[3].integer.map { Int($0) } == vector.expectRetryAfterSeconds, "\(vector.name)")
            #expect(parts[4].integer.map { Int($0) } == vector.expectExpiryMillis, "\(vector.name)")
        }
    }
}

struct TokenBucketVector {
    let name: String
    let rate: Double, burst: Double
    let tokens: Double?, updatedMicros: Int64?, nowMicros: Int64
    let expectTaken: Bool, expectTokens: Double, expectStamp: Int64
    let expectRetryAfterSeconds: Int, expectExpiryMillis: Int

    static func load() throws -> [TokenBucketVector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Vectors/token-bucket.json")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let list = try #require(root["vectors"] as? [[String: Any]])
        return try list.map { item in
            let expect = try #require(item["expect"] as? [String: Any])
            func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
            return TokenBucketVector(
                name: item["name"] as? String ?? "?", rate: try #require(number(item["rate"])),
                burst: try #require(number(item["burst"])), tokens: number(item["tokens"]),
                updatedMicros: number(item["updated_us"]).map { Int64($0) }, nowMicros: Int64(try #require(number(item["now_us"]))),
                expectTaken: expect["taken"] as? Bool ?? false, expectTokens: try #require(number(expect["tokens"])),
                expectStamp: Int64(try #require(number(expect["stamp"]))),
                expectRetryAfterSeconds: Int(try #require(number(expect["retry_after_s"]))),
                expectExpiryMillis: Int(try #require(number(expect["expiry_ms"]))))
        }
    }
}
