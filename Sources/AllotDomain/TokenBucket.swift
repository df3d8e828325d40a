/// The three rate buckets a campaign may configure (API.md rate-limits).
public enum BucketName: String, Sendable, CaseIterable {
    case global, ip, citizen
}

/// `rate` tokens per second, holding at most `burst`.
public struct BucketPolicy: Equatable, Sendable {
    public let rate: Double
    public let burst: Double

    public static let rateMax = 1_000_000.0
    public static let burstMax = 10_000_000.0

    public init?(rate: Double, burst: Double) {
        guard rate > 0, rate <= Self.rateMax, burst >= 1, burst <= Self.burstMax else { return nil }
        self.rate = rate
        self.burst = burst
    }

    /// Seconds for an empty bucket to fill: the policy's window.
    public var windowSeconds: Int { max(1, Int((burst / rate).rounded(.up))) }
}

/// Token bucket maths. The live buckets run inside the reservation script
/// (scripts/reserve.lua holds the same formulas); this is the reference the
/// unit tests pin down, and what the server uses where no Redis is involved.
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
        let wait = (1 - tokens) / policy.rate
        return .empty(retryAfterSeconds: max(1, Int(wait.rounded(.up))))
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
