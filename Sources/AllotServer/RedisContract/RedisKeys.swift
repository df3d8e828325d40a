import AllotDomain
import RedisClient

/// Names of Redis keys. Every key of a campaign carries the hash tag
/// `{c:<cid>}`, so each script touches one Redis Cluster slot.
/// The fixed keys are made once (a campaign's view keeps its `CampaignKeys`),
/// as the reservation path names six of them per request.
struct CampaignKeys: Sendable {
    let campaign: String
    /// The hash tag: which Redis Cluster slot the keys are in.
    let tag: String
    /// What every key's name starts with: the tag, and for a bucket of a
    /// series (whose tag every campaign of the series shares) the campaign.
    let prefix: String
    /// A bucket of a series: its citizens' ledgers are here.
    var isSeriesBucket: Bool { prefix != tag }
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
    /// A campaign with holds: reservation id → its expiry (ms), while held.
    let holds: String
    /// Citizen key → the id of their hold (one at a time).
    let holders: String
    /// A campaign with a waitlist (a line per bucket, for its citizens):
    /// entry id → WaitlistRecord.
    var waitlist: String { prefix + ":wl" }
    /// Citizen key → their latest waitlist entry.
    var waiters: String { prefix + ":wlby" }
    /// The join counter: a queue's order.
    var waitlistSequence: String { prefix + ":wlseq" }
    /// What each queue's name starts with; a slot's queue is this and its
    /// id, a site's this and `site:<id>` (WaitlistTarget.text).
    var waitQueuePrefix: String { prefix + ":wq:" }
    /// The targets with a queue (a set), served from places on sale.
    var waitTargets: String { prefix + ":wlq" }
    /// Slot → its site (every slot's, for the lines).
    var waitSites: String { prefix + ":wlsite" }
    /// A site's slots (a set), for its line.
    func waitSiteSlots(_ site: String) -> String { prefix + ":wlss:" + site }

    /// The campaign's home: its configuration, capacities, metadata and (when
    /// it has several buckets) the pool. With one bucket, the bucket too.
    init(_ campaign: String) { self.init(campaign, tag: "{c:\(campaign)}") }

    /// Bucket `bucket` of `buckets`: the home with one bucket, else a tag
    /// of its own (`bucketTag`), so the buckets spread over the shards.
    /// A series' campaign: the series' bucket tag, `{s:<series>:<b>}`
    /// (found as `bucketTag` finds a spread one), so every campaign of the
    /// series puts a citizen on the same shard, beside their series ledger.
    init(_ campaign: String, bucket: Int, of buckets: CampaignBuckets) {
        if let series = buckets.series {
            let tag = Self.bucketTag(base: "s:" + series, bucket, of: buckets)
            self.init(campaign, tag: tag, prefix: tag + "c:" + campaign)
        } else if buckets.isSpread {
            self.init(campaign, tag: Self.bucketTag(campaign, bucket, of: buckets))
        } else {
            self.init(campaign)
        }
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
        bucketTag(base: "c:" + campaign, bucket, of: buckets)
    }

    static func bucketTag(base: String, _ bucket: Int, of buckets: CampaignBuckets) -> String {
        let share = (bucket * ClusterSlot.count / buckets.count)..<((bucket + 1) * ClusterSlot.count / buckets.count)
        var tag = "{\(base):\(bucket)}"
        var attempt = 0
        while !share.contains(ClusterSlot.of(tag)), attempt < 100_000 {
            attempt += 1
            tag = "{\(base):\(bucket).\(attempt)}"
        }
        return tag
    }

    private init(_ campaign: String, tag: String, prefix: String? = nil) {
        self.campaign = campaign
        self.tag = tag
        let prefix = prefix ?? tag
        self.prefix = prefix
        slot = ClusterSlot.of(tag)
        config = prefix + ":cfg"
        remaining = prefix + ":rem"
        holdings = prefix + ":held"
        stats = prefix + ":stats"
        stream = prefix + ":ev"
        globalBucket = prefix + ":bucket:g"
        records = prefix + ":recs"
        holds = prefix + ":holds"
        holders = prefix + ":holders"
    }

    var capacity: String { prefix + ":cap" }
    /// snapshot.lua's keys, of a home.
    var snapshotKeys: [String] { [config, remaining, capacity, sites, slots, pool, transfers] }
    /// Home only, with several buckets: slot → places not handed to a bucket yet.
    var pool: String { prefix + ":pool" }
    /// Moves of places out of here not yet settled: id → PlaceTransfer.Record.
    var transfers: String { prefix + ":xfer" }
    /// Set when a move's places reached this bucket (PlaceTransfer's credit).
    func transferCredit(_ id: String) -> String { prefix + ":xin:" + id }
    /// Set when a move out of here is settled, with its places (settle.lua).
    func transferSettled(_ id: String) -> String { prefix + ":xdone:" + id }
    /// A lottery's registrations in this bucket: id → RegistrationRecord.
    var registrations: String { prefix + ":regs" }
    /// Citizen key → their registration's id (one each).
    var registrants: String { prefix + ":regby" }
    /// A drawn lottery's winners: registration id → reservation id (award.lua).
    var awards: String { prefix + ":awards" }
    var sites: String { prefix + ":sites" }
    var slots: String { prefix + ":slots" }
    func idempotency(_ keyHash: String) -> String { prefix + Self.idempotencyInfix + keyHash }

    /// A citizen's reservations in the series of this bucket, in its
    /// window: a sorted set of reservation ids by when they were made,
    /// named by the tag alone (every campaign of the series shares it).
    /// Outside a series, a name reserve.lua is handed and never touches.
    func seriesLedger(_ citizenKey: String) -> String { tag + Self.seriesLedgerInfix + citizenKey }
    /// What every ledger's name starts with (expire.lua names a hold's).
    var seriesLedgerPrefix: String { tag + Self.seriesLedgerInfix }

    /// The per-address and per-citizen buckets' keys whole (the paths that
    /// build commands from strings; the reservation path appends them).
    func ipBucket(_ address: String) -> String { prefix + Self.ipBucketInfix + address }
    func citizenBucket(_ citizenKey: String) -> String { prefix + Self.citizenBucketInfix + citizenKey }

    // Per-request keys appended to a command in pieces, with no string built
    // (the reservation path names three of them per request).
    func appendIPBucket(_ address: String, to command: inout RedisCommand) { command.append(prefix, Self.ipBucketInfix, address) }
    func appendCitizenBucket(_ citizenKey: String, to command: inout RedisCommand) {
        command.append(prefix, Self.citizenBucketInfix, citizenKey)
    }
    func appendIdempotency(_ keyHash: String, to command: inout RedisCommand) {
        command.append(prefix, Self.idempotencyInfix, keyHash)
    }
    func appendSeriesLedger(_ citizenKey: String, to command: inout RedisCommand) {
        command.append(tag, Self.seriesLedgerInfix, citizenKey)
    }

    private static let ipBucketInfix = ":bucket:ip:"
    private static let citizenBucketInfix = ":bucket:c:"
    private static let idempotencyInfix = ":idem:"
    private static let seriesLedgerInfix = ":sl:"
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
        bucketKeys = buckets.isSpread ? (0..<buckets.count).map { CampaignKeys(campaign, bucket: $0, of: buckets) } : [home]
    }

    var isSpread: Bool { buckets.isSpread }

    /// The hash of places not handed to any bucket: the pool when spread;
    /// with one bucket, the bucket's own remaining.
    var unassignedPlaces: String { isSpread ? home.pool : home.remaining }
}

extension Campaign {
    var layout: CampaignLayout { CampaignLayout(id, buckets: buckets) }
}
