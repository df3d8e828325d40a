@testable import AllotDomain
import Testing

@Suite struct TokenBucketTests {
    let policy = BucketPolicy(rate: 2, burst: 5)!

    @Test func fullBucketGivesItsBurstThenRefusesWithRetryAfter() {
        var bucket = TokenBucket(policy: policy, nowMicros: 0)
        for expected in (0..<5).reversed() {
            #expect(bucket.take(policy: policy, nowMicros: 0) == .taken(remaining: expected))
        }
        #expect(bucket.take(policy: policy, nowMicros: 0) == .empty(retryAfterSeconds: 1))
    }

    @Test func refillsAtItsRateAndNeverAboveBurst() {
        var bucket = TokenBucket(tokens: 0, updatedMicros: 0)
        #expect(bucket.take(policy: policy, nowMicros: 400_000) == .empty(retryAfterSeconds: 1))
        #expect(bucket.take(policy: policy, nowMicros: 500_000) == .taken(remaining: 0))
        var idle = TokenBucket(tokens: 0, updatedMicros: 0)
        _ = idle.take(policy: policy, nowMicros: 3_600_000_000)
        #expect(idle.tokens == 4)
    }

    @Test func retryAfterRoundsUpToWholeSeconds() {
        let slow = BucketPolicy(rate: 0.2, burst: 1)!
        var bucket = TokenBucket(tokens: 0, updatedMicros: 0)
        #expect(bucket.take(policy: slow, nowMicros: 0) == .empty(retryAfterSeconds: 5))
        #expect(bucket.take(policy: slow, nowMicros: 4_100_000) == .empty(retryAfterSeconds: 1))
    }

    @Test func clockGoingBackwardsAddsNothing() {
        var bucket = TokenBucket(tokens: 1, updatedMicros: 10_000_000)
        #expect(bucket.take(policy: policy, nowMicros: 0) == .taken(remaining: 0))
        #expect(bucket.take(policy: policy, nowMicros: 5_000_000) == .empty(retryAfterSeconds: 1))
    }

    @Test func policyRejectsNonsense() {
        #expect(BucketPolicy(rate: 0, burst: 1) == nil)
        #expect(BucketPolicy(rate: -1, burst: 1) == nil)
        #expect(BucketPolicy(rate: 1, burst: 0.5) == nil)
        #expect(BucketPolicy(rate: .infinity, burst: 1) == nil)
        #expect(BucketPolicy(rate: 1, burst: .nan) == nil)
    }

    @Test func rejectionHeadersFollowTheRateLimitDraft() {
        let rejection = RateLimitRejection(bucket: .ip, retryAfterSeconds: 3, policy: policy)
        let headers = Dictionary(uniqueKeysWithValues: rejection.headers)
        #expect(headers["Retry-After"] == "3")
        #expect(headers["RateLimit-Policy"] == "\"ip\";q=5;w=3")
        #expect(headers["RateLimit"] == "\"ip\";r=0;t=3")
    }
}

@Suite struct BucketPolicyRangeTests {
    @Test func derivedQuantitiesStayInRangeAtEveryEdge() throws {
        for rate in [BucketPolicy.rateRange.lowerBound, 1, BucketPolicy.rateRange.upperBound] {
            for burst in [BucketPolicy.burstRange.lowerBound, BucketPolicy.burstRange.upperBound] {
                let policy = try #require(BucketPolicy(rate: rate, burst: burst))
                #expect(policy.windowSeconds >= 1 && policy.windowSeconds <= 10_000_000_000)
                #expect(policy.refillMillis(from: 0) <= 10_000_000_001_000)
                var empty = TokenBucket(tokens: 0, updatedMicros: 0)
                if case .empty(let retry) = empty.take(policy: policy, nowMicros: 0) { #expect(retry >= 1 && retry <= 1_000) }
            }
        }
    }

    @Test func policiesOutsideTheRangesAreRefused() {
        #expect(BucketPolicy(rate: 1e-19, burst: 1) == nil)
        #expect(BucketPolicy(rate: 0.000_999, burst: 1) == nil)
        #expect(BucketPolicy(rate: 1_000_001, burst: 1) == nil)
        #expect(BucketPolicy(rate: 1, burst: 10_000_001) == nil)
        #expect(BucketPolicy(rate: 1, burst: 2.5) == nil)
        #expect(BucketPolicy(rate: 0.001, burst: 10_000_000) != nil)
    }
}

