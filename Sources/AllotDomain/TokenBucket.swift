/// The three rate buckets a campaign may configure (API.md rate-limits).
public enum BucketName: String, Sendable, CaseIterable {
    case global, ip, citizen
}

/// `rate` tokens per second, holding at most `burst` (a whole number).
///
/// The ranges make every derived quantity small and exact in a double and
/// in Lua: a window (`burst / rate`) is at most 10^10 s, a Retry-After at
/// most 1 000 s, a bucket key's expiry at most about 10^13 ms, far inside
/// what Redis's PEXPIRE and Swift's `Int` take.
public struct BucketPolicy: Equatable, Sendable {
    public let rate: Double
    public let burst: Double

    public static let rateRange: ClosedRange<Double> = 0.001...1_000_000
    public static let burstRange: ClosedRange<Double> = 1...10_000_000
    public static let rangeDescription = "rate must be a number in [0.001, 1000000] and burst a whole number in [1, 10000000]"

    public init?(rate: Double, burst: Double) {
        guard Self.rateRange.contains(rate), Self.burstRange.contains(burst), burst == burst.rounded() else { return nil }
        self.rate = rate
        self.burst = burst
    }

    /// Seconds for an empty bucket to fill: the policy's window.
    public var windowSeconds: Int { Self.wholeUnits(burst / rate) }

    /// How long a bucket holding `tokens` takes to be full again: past
    /// that, a missing bucket and a full one are the same, so its key may
    /// expire (plus a second's margin for clocks).
    public func refillMillis(from tokens: Double) -> Int {
        Self.wholeUnits(max(0, burst - tokens) / rate * 1000) + 1000
    }

    /// Rounds up to a whole number, at least 1. Total: the ranges keep the
    /// value below 10^13, and a NaN or infinity could only come from a
    /// policy the initialiser refused.
    static func wholeUnits(_ value: Double) -> Int {
        guard value.isFinite, value > 1 else { return 1 }
        return Int(min(value.rounded(.up), 1e15))
    }
}

/// Token bucket maths. The live buckets run inside the reservation script
/// (Scripts/token_bucket.lua holds the same formulas, and the tests run both
/// on the same vectors); this is the reference the unit tests pin down, and
/// what the server uses where no Redis is involved.
public struct TokenBucket: Equatable, Sendable {
    public private(set) var tokens: Double
    public private(set) var updatedMicros: Int64

    /// A full bucket.
    public init(policy: BucketPolicy, nowMicros: Int64) {
        tokens = policy.burst
        updatedMicros = nowMicros
    }

    public init(tokens: Double, updatedMicros: Int64) {
        self.tokens = tokens
        self.updatedMicros = updatedMicros
    }

    /// Refills for the time passed (a clock going backwards adds nothing),
    /// then takes one token if there is one.
    /// Returns the seconds until a token is available when it is empty.
    public mutating func take(policy: BucketPolicy, nowMicros: Int64) -> TakeResult {
        let elapsed = max(0, nowMicros - updatedMicros)
        tokens = min(policy.burst, tokens + Double(elapsed) / 1_000_000 * policy.rate)
        updatedMicros = max(updatedMicros, nowMicros)
        if tokens >= 1 {
            tokens -= 1
            return .taken(remaining: Int(tokens))
        }
        return .empty(retryAfterSeconds: BucketPolicy.wholeUnits((1 - tokens) / policy.rate))
    }

    /// Seconds until a token is available, or nil if one is now; takes nothing.
    public func waitSeconds(policy: BucketPolicy, nowMicros: Int64) -> Int? {
        var copy = self
        if case .empty(let seconds) = copy.take(policy: policy, nowMicros: nowMicros) { return seconds }
        return nil
    }

    public enum TakeResult: Equatable, Sendable {
        case taken(remaining: Int)
        case empty(retryAfterSeconds: Int)
    }
}

/// What a 429 tells the client: which bucket, when to retry, and the policy
/// in the IETF httpapi ratelimit-headers form.
public struct RateLimitRejection: Equatable, Sendable {
    public let bucket: BucketName
    public let retryAfterSeconds: Int
    public let policy: BucketPolicy

    public init(bucket: BucketName, retryAfterSeconds: Int, policy: BucketPolicy) {
        precondition(retryAfterSeconds >= 1)
        self.bucket = bucket
        self.retryAfterSeconds = retryAfterSeconds
        self.policy = policy
    }

    public var headers: [(String, String)] {
        let name = "\"\(bucket.rawValue)\""
        return [
            ("Retry-After", String(retryAfterSeconds)),
            ("RateLimit-Policy", "\(name);q=\(Int(policy.burst));w=\(policy.windowSeconds)"),
            ("RateLimit", "\(name);r=0;t=\(retryAfterSeconds)"),
        ]
    }
}
