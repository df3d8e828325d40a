import EventHTTP
import EventLoops
import Foundation
import Logging
import RedisClient
import SQLiteStore
import Synchronization

/// The hand-off from Redis to SQLite (DESIGN.md "Persistence"): reads every
/// campaign stream through the consumer group "persist", writes each batch
/// in one SQLite transaction, and only then XACKs it. Upserts make a replay
/// harmless, so a crash anywhere between XREADGROUP and XACK loses nothing:
/// the entries stay pending and are read again (our own with id 0 at start,
/// a dead consumer's by XAUTOCLAIM). The stream is trimmed only below what
/// has been acknowledged.
final class Persister: Sendable {
    struct Settings: Sendable {
        var databasePath: String
        var redis: RedisDeployment
        /// This node's consumer name in the streams' group.
        var consumer = "persister"
        /// This node (in the writer lease, WriterLease).
        var nodeID = "allot"
        /// How long the writer lease lives unrenewed: a standby takes over
        /// this long after the holder stopped.
        var writerLeaseMillis = 10_000
        var batchRowsMax = 2_000
        var blockMillis = 100
        /// Group commit: after a batch smaller than `batchRowsMax`, the next
        /// read waits until this long after the previous one began, so a
        /// surge is written in batches of hundreds (one fsync, one XACK and
        /// one audit row each), not a batch per handful of rows. Adds at
        /// most this much to the persistence lag; a 201 never waits for it.
        var batchGatherMillis = 20
        var trimEveryMillis = 1_000
        /// How often campaigns whose booking has ended are checked for
        /// leaving the hot set.
        var retireEveryMillis = 5_000
        /// How often the hot set is checked for campaigns a dead node left
        /// out of it (HotSet.swift).
        var hotSetSweepMillis = 60_000
        /// How often moves of places left half-way are looked for, and how
        /// old one must be to count as left.
        var moveSweepMillis = 2_000
        var moveStaleMillis = 10_000
        /// `--durability replicated`: the sweeper's steps wait for a replica.
        var replicaAcksRequired = 0
        var retryDelayMillis = 200
    }

    private let settings: Settings
    private let logger: Logger
    private let health: SharedHealth
    private let metrics: ServerMetrics
    private let stopping = Atomic<Bool>(false)
    /// When the final drain must give up (monotonic µs), set by `stop`.
    private let drainDeadlineMicros = Atomic<Int64>(0)
    private let finished = DispatchSemaphore(value: 0)

    init(settings: Settings, logger: Logger, health: SharedHealth, metrics: ServerMetrics) {
        self.settings = settings
        self.logger = logger
        self.health = health
        self.metrics = metrics
    }

    func start() throws {
        let database = UncheckedBox(try Schema.open(path: settings.databasePath))
        let thread = Thread { [self] in
            nameCurrentThread("allot-persister")
            let batcher = PersistBatcher(settings: settings, database: database.value,
                                         redis: settings.redis.blockingClient(timeoutMillis: settings.blockMillis + 2_000),
                                         logger: logger, health: health, metrics: metrics)
            run(batcher)
            finished.signal()
        }
        thread.name = "allot-persister"
        thread.start()
    }

    /// Drains what Redis holds for SQLite (up to `deadlineMillis`), then stops.
    func stop(deadlineMillis: Int) {
        drainDeadlineMicros.store(monotonicMicros() + Int64(deadlineMillis) * 1000, ordering: .relaxed)
        stopping.store(true, ordering: .relaxed)
        _ = finished.wait(timeout: .now() + .milliseconds(deadlineMillis + 3_000))
    }

    private func run(_ batcher: PersistBatcher) {
        while !stopping.load(ordering: .relaxed) {
            do {
                try batcher.round()
            } catch {
                // A Redis failure says nothing about SQLite; only its own do.
                if error is SQLiteError { health.sqliteWritable.store(false, ordering: .relaxed) }
                logger.warning("persister retrying", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: Double(settings.retryDelayMillis) / 1000)
            }
        }
        // Final drain: whatever is already in the streams goes to SQLite,
        // until a round that asked for new entries finds none, or the
        // deadline passes (what is left stays in Redis and is written on the
        // next start). A round that re-read only pending entries (id 0), or
        // failed, says nothing of what is left: the drain goes on.
        while monotonicMicros() < drainDeadlineMicros.load(ordering: .relaxed) {
            do {
                if try batcher.round() == 0, batcher.lastRoundReadNewEntries { break }
            } catch {
                logger.warning("persister retrying while stopping", metadata: ["error": "\(error)"])
                Thread.sleep(forTimeInterval: Double(settings.retryDelayMillis) / 1000)
            }
        }
        batcher.close()
    }
}

/// The health a persister reports to the loops' `/readyz`.
final class SharedHealth: Sendable {
    let sqliteWritable = Atomic<Bool>(false)
    /// This node holds the writer lease (else it stands by, and its
    /// readiness does not depend on SQLite).
    let holdsWriterLease = Atomic<Bool>(false)
}
