/// How a campaign is spread over Redis Cluster shards (issue 12): `count`
/// buckets, each with its own hash tag, each holding a share of every
/// slot's places and everything about the citizens that map to it. One
/// bucket is the layout of a single shard. Pure arithmetic: the keys are
/// RedisContract's, the moves of places between buckets PlaceTransfer's.
public struct CampaignBuckets: Hashable, Sendable {
    /// At most this many: 64 shards' worth of spread, and a campaign takes
    /// one route per bucket out of RouteCipher's 2^24.
    public static let countRange: ClosedRange<Int> = 1...64
    public let count: Int
    /// The series the campaign belongs to (CampaignSeries), if any: its
    /// buckets are the series' (one hash tag per bucket, shared by every
    /// campaign of the series), so a citizen's bookings in the whole
    /// series are on one shard and one script counts them.
    public let series: String?

    public init?(_ count: Int, series: String? = nil) {
        guard Self.countRange.contains(count), series.map(OperatorID.isValid) ?? true else { return nil }
        self.count = count
        self.series = series
    }

    public static let single = CampaignBuckets(1)!

    /// Whether the campaign's citizens live outside its home: in buckets of
    /// their own, or in its series' (even with one bucket).
    public var isSpread: Bool { count > 1 || series != nil }

    /// A citizen's bucket: the first 64 bits of their keyed hash (lower-case
    /// hex, CitizenKeyer), modulo the count. Fixed for the campaign, so a
    /// citizen's limit, answers and rate bucket stay on one shard; keyed,
    /// so nobody can aim many ids at one bucket.
    public func bucket(ofCitizenKey key: String) -> Int {
        guard count > 1 else { return 0 }
        var value: UInt64 = 0
        for byte in key.utf8.prefix(16) { value = value << 4 | UInt64(Self.hexValue(byte)) }
        return Int(value % UInt64(count))
    }

    /// Each bucket has a route of its own, consecutive from the campaign's
    /// first: a reservation id says its bucket without saying it to anyone
    /// without the route cipher.
    public func route(ofBucket bucket: Int, firstRoute: UInt32) -> UInt32 {
        precondition(bucket >= 0 && bucket < count)
        return firstRoute + UInt32(bucket)
    }

    /// The bucket a route names, if it is one of this campaign's.
    public func bucket(ofRoute route: UInt32, firstRoute: UInt32) -> Int? {
        guard route >= firstRoute, route - firstRoute < UInt32(count) else { return nil }
        return Int(route - firstRoute)
    }

    /// A bucket's share of the campaign-wide rate limit: each bucket admits
    /// 1/count of the rate and of the burst for its own citizens. Citizens
    /// spread evenly over buckets, so the total stays near the policy; when
    /// demand comes from few buckets it is below it (each still at most its
    /// share). Above it only by rounding: each share's burst is rounded up
    /// to a whole token and its rate to at least the least one allowed, so
    /// the sum may exceed a small policy (burst 10 over 64 buckets: 64).
    public func share(of policy: BucketPolicy) -> BucketPolicy {
        guard count > 1 else { return policy }
        let rate = max(BucketPolicy.rateRange.lowerBound, policy.rate / Double(count))
        let burst = max(1, (policy.burst / Double(count)).rounded(.up))
        return BucketPolicy(rate: rate, burst: burst)!
    }

    /// How many places a bucket takes from the pool at a time: half of an
    /// even share of the slot's capacity, so the pool is handed out in
    /// about 2 × count moves and the last places stay where demand is; at
    /// least `refillPlacesMin`, so a move carries places enough to be worth it.
    public func refillPlaces(capacity: Int) -> Int {
        max(Self.refillPlacesMin, capacity / (2 * count))
    }

    public static let refillPlacesMin = 10

    private static func hexValue(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: 0
        }
    }
}
