import EventLoops
import RedisClient
import SQLiteStore

/// SQLite has one writer (DESIGN.md): the process holding this lease in
/// Redis. Several nodes may point at the same database file; one writes and
/// the others stand by, taking over once its lease runs out. Each taking
/// draws a fencing number that every write transaction checks against the
/// database's own (`claim`): a holder paused past its lease cannot write
/// after its successor has, whatever it believes.
final class WriterLease {
    private let redis: any RedisSyncRouting
    /// This process: its node id and a random instance (two processes
    /// given the same node id still never share the lease).
    let holder: String
    let lifeMillis: Int
    private(set) var fence: Int64?
    private var renewedAtMicros: Int64 = 0

    init(redis: any RedisSyncRouting, nodeID: String, lifeMillis: Int) {
        self.redis = redis
        holder = nodeID + "/" + String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.lifeMillis = lifeMillis
    }

    /// Takes or renews the lease when a third of its life has passed; the
    /// fence while held, nil while another holds it. A failure to reach
    /// Redis keeps a lease still within its life (the fence guards the
    /// rest) and drops one past it.
    ///
    /// `floor`: the last fence SQLite has seen (`storedFence`); a new one
    /// is drawn above it, so a Redis that lost its counter cannot hand out
    /// a fence every write would refuse.
    func ensure(floor: @autoclosure () throws -> Int64 = 0, nowMicros: Int64 = monotonicMicros()) -> Int64? {
        let age = nowMicros - renewedAtMicros
        if fence != nil, age < Int64(lifeMillis) * 1_000 / 3 { return fence }
        do {
            let known = fence == nil ? try floor() : 0
            let reply = try redis.run(Scripts.lease, slot: GlobalKeys.writerSlot, keys: [GlobalKeys.writerLease, GlobalKeys.writerFence],
                                      arguments: [holder, String(lifeMillis), String(known)])
            guard let value = reply.integer else { throw RedisError(reply.errorMessage ?? "lease: not a number") }
            fence = value > 0 ? value : nil
            if value > 0 { renewedAtMicros = nowMicros }
        } catch {
            if age >= Int64(lifeMillis) * 1_000 { fence = nil }
        }
        return fence
    }

    /// Lets the lease go (a clean stop): a standby takes over at once.
    func release() {
        guard fence != nil else { return }
        _ = try? redis.run(Scripts.lease, slot: GlobalKeys.writerSlot, keys: [GlobalKeys.writerLease, GlobalKeys.writerFence],
                           arguments: [holder, "0", "0"])
        fence = nil
    }

    /// The last fence a write transaction recorded (0: none yet).
    static func storedFence(_ database: SQLiteDatabase) throws -> Int64 {
        try database.statement("SELECT fence FROM writer_fence WHERE only = 1").rows { $0.int(0) }.first ?? 0
    }

    /// In a write transaction: records `fence` as the database's, or throws
    /// `FencedOut` if a later holder has written (this one lost the lease).
    static func claim(_ fence: Int64, in database: SQLiteDatabase) throws {
        try database.statement("""
            INSERT INTO writer_fence (only, fence) VALUES (1, ?)
            ON CONFLICT (only) DO UPDATE SET fence = excluded.fence WHERE excluded.fence >= writer_fence.fence
            """).run([.integer(fence)])
        guard database.changes == 1 else { throw FencedOut(fence: fence) }
    }

    struct FencedOut: Error, CustomStringConvertible {
        let fence: Int64
        var description: String { "the writer lease (fence \(fence)) was taken over: this process no longer writes SQLite" }
    }
}
