import AllotDomain
import RedisClient

/// What a node runs besides the citizen routes (README, Scale-out).
public enum NodeRole: String, Sendable, CaseIterable {
    /// The SQLite file too: the persister (while it holds the writer lease)
    /// and the admin API.
    case full
    /// Citizens and staff only, with no SQLite: tokens come through Redis,
    /// and operator requests are answered 503 (they go to a full node).
    case front
}

/// Everything `allot serve` is told. Limits are named with the unit last.
public struct ServerConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var threads = 2
    /// One Redis (`--redis`) or a cluster's seeds (`--redis-cluster`).
    public var redis = RedisDeployment.single(ClusterNodeAddress(host: "127.0.0.1", port: 6379))
    public var databasePath = "var/allot.db"
    /// This node's name: in its stream consumer's name and its writer lease.
    /// Unique per node (`allot serve --node-id`; default host name and port).
    public var nodeID = "allot"
    public var role = NodeRole.full
    /// How long the SQLite writer lease lives unrenewed (a standby on the
    /// same database takes over this long after the holder stopped).
    public var writerLeaseMillis = 10_000
    /// Bearer token of the bootstrap admin (`ALLOT_ADMIN_TOKEN`); nil: the
    /// admin API answers 401 to everyone.
    public var adminToken: String?
    public var citizenSecret: [UInt8] = []

    /// Citizen request bodies; admin bodies may be larger (slot uploads).
    public var citizenBodyBytesMax = 16 * 1024
    public var adminBodyBytesMax = 4 * 1024 * 1024
    public var redisCommandTimeoutMillis = 1_000
    /// Replicas that must confirm a reservation's write (`WAIT`) before its
    /// 201 is sent: 0, or 1 with `--durability replicated`.
    public var replicaAcksRequired = 0
    /// How long a `WAIT` for replicas may take; past it the reservations it
    /// covers are answered 503 (made, but not known to be replicated). At
    /// most half the command timeout: the loop's commands queue behind it.
    public var replicaWaitMillis = 250

    /// `replicaWaitMillis` as applied: at least 1, at most half the command timeout.
    var replicaWaitMillisInForce: Int { max(1, min(replicaWaitMillis, redisCommandTimeoutMillis / 2)) }
    /// How often each loop refreshes its read snapshot from Redis.
    public var snapshotRefreshMillis = 250
    /// Reads keep answering from a snapshot this old while Redis is away.
    public var snapshotStaleMillisMax = 5_000
    public var idempotencyTTLSeconds = 24 * 3600
    /// Entries a campaign's stream may hold that SQLite has not got; at the
    /// bound new reservations and changes get 503 (nothing is dropped).
    public var streamEntriesMax = 1_000_000
    public var persistBatchRowsMax = 2_000
    public var persistBlockMillis = 100
    /// How often the persister checks campaigns whose booking has ended for
    /// leaving the hot set (retire.lua).
    public var retireEveryMillis = 5_000
    /// How often the persister looks for campaigns a node that died
    /// mid-change left out of the hot set (HotSet.swift).
    public var hotSetSweepMillis = 60_000
    /// A move of places between shards this old is finished by the
    /// persister's sweeper (its node is taken to have stopped half-way).
    public var moveStaleMillis = 10_000
    /// A kill between a move's debit and its credit, armed from outside
    /// (fault schedules only; `ALLOT_FAULT_KILL_AFTER_DEBIT`).
    public var killAfterDebit: FaultTrigger?
    public var shutdownDrainMillisMax = 5_000
    /// Failed token checks an address may make: a burst, then a slow trickle.
    public var authFailurePolicy = BucketPolicy(rate: 0.2, burst: 10)!
    /// How often the admin worker reloads tokens from SQLite (revocations
    /// take effect within this).
    public var tokenRefreshMillis = 500
    /// Proxies whose `X-Forwarded-For` is believed (AllotDomain/ClientAddress.swift).
    public var trustedProxies: [AddressRange] = []
    /// The dashboard's session cookie is `Secure` (served behind TLS).
    public var secureCookies = false

    /// Connections open at once; past it new ones are answered 503.
    public var connectionsMax = 10_000
    /// Connections open at once from one peer address (trusted proxies are
    /// exempt). A household or a small NAT fits; a flood from one host does not.
    public var connectionsPerAddressMax = 128
    /// A request must arrive whole within this long of its first byte.
    public var requestDeadlineSeconds = 10

    public init() {}
}
