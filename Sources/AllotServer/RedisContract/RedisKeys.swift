import AllotDomain
import RedisClient

/// Names of Redis keys. Every key of a campaign carries the hash tag
/// `{c:<cid>}`, so each script touches one Redis Cluster slot.
/// The fixed keys are made once (a campaign's view keeps its `CampaignKeys`),
/// as the reservation path names six of them per request.
struct CampaignKeys: Sendable {
    let campaign: String
    let tag: String
    /// The Redis Cluster hash slot of every key here (their tag's).
    let slot: Int
    let config: String
    let remaining: String
    let holdings: String
    let stats: String
    let stream: String
    let globalBucket: String
    /// Reservation id → record (ReservationRecord.swift), one hash per campaign.
    let records: String

    /// The campaign's home: its configuration, capacities, metadata and (when
    /// it has several buckets) the pool. With one bucket, the bucket too.
    init(_ campaign: String) { self.init(campaign, tag: "{c:\(campaign)}") }

    /// Bucket `bucket` of `buckets`: the home with one bucket, else a tag
    /// of its own (`bucketTag`), so the buckets spread over the shards.
    init(_ campaign: String, bucket: Int, of buckets: CampaignBuckets) {
        if buckets.count == 1 { self.init(campaign) } else { self.init(campaign, tag: Self.bucketTag(campaign, bucket, of: buckets)) }
    }

    /// Where a routes hash value points (ConfigHash.routeTarget): its keys,
    /// made when the target was.
    init(_ target: RouteTarget) { self = target.keys }

    /// A spread bucket's tag, `{c:<cid>:<b>}`, or `{c:<cid>:<b>.<n>}` with
    /// the least n that puts it in the b-th of `count` equal parts of the
    /// slot space: a cluster's masters own contiguous ranges of slots, so
    /// the buckets spread evenly over them (16 over 3 masters: 6, 5, 5),
    /// not as their hashes fall (7, 3, 6 in one measured case). About
    /// `count` hashes to find, each under a microsecond.
    static func bucketTag(_ campaign: String, _ bucket: Int, of buckets: CampaignBuckets) -> String {
        let share = (bucket * ClusterSlot.count / buckets.count)..<((bucket + 1) * ClusterSlot.count / buckets.count)
        var tag = "{c:\(campaign):\(bucket)}"
        var attempt = 0
        while !share.contains(ClusterSlot.of(tag)), attempt < 100_000 {
            attempt += 1
            tag = "{c:\(campaign):\(bucket).\(attempt)}"
        }
        return tag
    }

    private init(_ campaign: String, tag: String) {
        self.campaign = campaign
        self.tag = tag
        slot = ClusterSlot.of(tag)
        config = tag + ":cfg"
        remaining = tag + ":rem"
        holdings = tag + ":held"
        stats = tag + ":stats"
        stream = tag + ":ev"
        globalBucket = tag + ":bucket:g"
        records = tag + ":recs"
    }

    var capacity: String { tag + ":cap" }
    /// snapshot.lua's keys, of a home.
    var snapshotKeys: [String] { [config, remaining, capacity, sites, slots, pool, transfers] }
    /// Home only, with several buckets: slot → places not handed to a bucket yet.
    var pool: String { tag + ":pool" }
    /// Moves of places out of here not yet settled: id → PlaceTransfer.Record.
    var transfers: String { tag + ":xfer" }
    /// Set when a move's places reached this bucket (PlaceTransfer's credit).
    func transferCredit(_ id: String) -> String { tag + ":xin:" + id }
    /// Set when a move out of here is settled, with its places (settle.lua).
    func transferSettled(_ id: String) -> String { tag + ":xdone:" + id }
    var sites: String { tag + ":sites" }
    var slots: String { tag + ":slots" }
    func idempotency(_ keyHash: String) -> String { tag + Self.idempotencyInfix + keyHash }

    // Per-request keys appended to a command in pieces, with no string built
    // (the reservation path names three of them per request).
    func appendIPBucket(_ address: String, to command: inout RedisCommand) { command.append(tag, Self.ipBucketInfix, address) }
    func appendCitizenBucket(_ citizenKey: String, to command: inout RedisCommand) {
        command.append(tag, Self.citizenBucketInfix, citizenKey)
    }
    func appendIdempotency(_ keyHash: String, to command: inout RedisCommand) {
        command.append(tag, Self.idempotencyInfix, keyHash)
    }

    private static let ipBucketInfix = ":bucket:ip:"
    private static let citizenBucketInfix = ":bucket:c:"
    private static let idempotencyInfix = ":idem:"
}

enum GlobalKeys {
    /// The hot set: campaigns the loops refresh and the persister reads. A
    /// campaign leaves it once booking has ended and SQLite has every event
    /// (retire.lua), and comes back when an operator changes it or a
    /// reservation of it is cancelled or redeemed.
    static let campaigns = "allot:campaigns"
    /// Route (ReservationID) → campaign id, for every campaign ever made.
    static let routes = "allot:routes"
    static let campaignsSlot = ClusterSlot.of(campaigns)
    static let routesSlot = ClusterSlot.of(routes)
    static let persistGroup = "persist"
    /// The SQLite writer's lease and its fencing counter (one slot).
    static let writerLease = "{allot:writer}:lease"
    static let writerFence = "{allot:writer}:fence"
    static let writerSlot = ClusterSlot.of(writerLease)
    /// Operators' bearer tokens for nodes without SQLite: SHA-256 digest →
    /// `role|name`, published by the full nodes (TokenMirror).
    static let tokens = "allot:tokens"
    static let tokensSlot = ClusterSlot.of(tokens)
}

/// What a reservation id's route names: a campaign, and its bucket (of
/// how many) when the campaign is spread over several, with that bucket's
/// keys, made once (a spread bucket's tag takes a few dozen hashes to
/// find, `CampaignKeys.bucketTag`; a lookup reuses them).
struct RouteTarget: Sendable {
    let campaign: String
    let spreadBucket: Int?
    let buckets: CampaignBuckets
    let keys: CampaignKeys

    init(campaign: String, spreadBucket: Int?, buckets: CampaignBuckets, keys: CampaignKeys? = nil) {
        self.campaign = campaign
        self.spreadBucket = spreadBucket
        self.buckets = buckets
        self.keys = keys ?? spreadBucket.map { CampaignKeys(campaign, bucket: $0, of: buckets) } ?? CampaignKeys(campaign)
    }

    var bucket: Int { spreadBucket ?? 0 }
}

/// Where all of a campaign's keys are: its home (configuration, capacities,
/// metadata, and with several buckets the pool) and its buckets (places
/// handed out, and everything about their citizens). With one bucket the
/// bucket is the home: today's layout, every key on one slot.
struct CampaignLayout: Sendable {
    let campaign: String
    let buckets: CampaignBuckets
    let home: CampaignKeys
    /// Indexed by bucket.
    let bucketKeys: [CampaignKeys]

    init(_ campaign: String, buckets: CampaignBuckets) {
        self.campaign = campaign
        self.buckets = buckets
        home = CampaignKeys(campaign)
        bucketKeys = buckets.count == 1 ? [home] : (0..<buckets.count).map { CampaignKeys(campaign, bucket: $0, of: buckets) }
    }

    var isSpread: Bool { buckets.count > 1 }

    /// The hash of places not handed to any bucket: the pool when spread;
    /// with one bucket, the bucket's own remaining.
    var unassignedPlaces: String { isSpread ? home.pool : home.remaining }
}

extension Campaign {
    var layout: CampaignLayout { CampaignLayout(id, buckets: buckets) }
}
