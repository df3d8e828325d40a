import EventLoops
import RedisClient

/// `--durability replicated`: a 201 waits until Redis confirms that its
/// write reached a replica. `WAIT` counts the writes of its own connection
/// made before it, so each held answer names the connection its write's
/// reply came on (on a cluster, the master that ran it), and one `WAIT` per
/// connection per loop turn covers every reservation it answered before.
/// A connection that dropped or was made again since cannot vouch for the
/// write: its answers are released unconfirmed (503; the same
/// Idempotency-Key gets the 201 later). While a connection's `WAIT` is out,
/// the next turn's answers on it gather for the next.
///
/// A connection whose `WAIT` found no replica in time (a master whose
/// replica is away, or one just promoted that has none yet) is refused
/// further reservations (`refuses`): they would be made and then answered
/// 503 after waiting, each queued behind the last `WAIT`. A probe
/// (`WAIT` with a short timeout) every `probeMillis` lets it serve again
/// once a replica confirms.
final class ReplicationGate {
    static let probeMillis = 250
    static let probeWaitMillis = 50
    private let loop: EventLoop
    private let redis: any RedisRouting
    private let acksRequired: Int
    private let waitMillis: Int
    /// Answers held until the next `WAIT` on their connection says whether
    /// their writes reached a replica (true) or not in time (false).
    private var held: [RedisConnection: [(Bool) -> Void]] = [:]
    private var waiting: Set<RedisConnection> = []
    private var flushScheduled = false
    /// Connections whose last `WAIT` found no replica: refused until a probe does.
    private var unconfirmed: Set<RedisConnection> = []

    init(loop: EventLoop, redis: any RedisRouting, acksRequired: Int, waitMillis: Int) {
        self.loop = loop
        self.redis = redis
        self.acksRequired = acksRequired
        self.waitMillis = waitMillis
    }

    var isActive: Bool { acksRequired > 0 }

    /// Whether a reservation for `slot` must be refused before it is made:
    /// its connection's replica has not been confirming.
    func refuses(slot: Int) -> Bool {
        guard isActive, !unconfirmed.isEmpty, let connection = redis.connection(forSlot: slot) else { return false }
        return unconfirmed.contains(connection)
    }

    /// Holds one answer whose write's reply came on `connection` (read in
    /// that reply's completion); `release` runs once, on the loop.
    func hold(_ connection: RedisConnection?, _ release: @escaping (Bool) -> Void) {
        guard let connection else { return release(false) }
        held[connection, default: []].append(release)
        scheduleFlush()
    }

    /// After the turn's other events: a timer of no delay runs in the
    /// loop's next pass, once the replies read in this one are handled.
    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.schedule(afterMillis: 0) { [weak self] in
            self?.flushScheduled = false
            self?.flush()
        }
    }

    private func refuse(_ connection: RedisConnection) {
        guard unconfirmed.insert(connection).inserted else { return }
        probe(connection)
    }

    /// Until a replica confirms the connection's writes, or it drops (its
    /// successor starts unrefused).
    private func probe(_ connection: RedisConnection) {
        loop.schedule(afterMillis: Self.probeMillis) { [weak self] in
            guard let self else { return }
            redis.send(["WAIT", String(acksRequired), String(Self.probeWaitMillis)], on: connection) { [weak self] result in
                guard let self else { return }
                switch result {
                case .success(let reply) where reply.errorMessage == nil && (reply.integer ?? 0) < Int64(acksRequired):
                    probe(connection)
                case .success, .failure:
                    // Confirmed, or no longer a master's connection to judge.
                    unconfirmed.remove(connection)
                }
            }
        }
    }

    private func flush() {
        for (connection, batch) in held where !waiting.contains(connection) && !batch.isEmpty {
            held[connection] = nil
            waiting.insert(connection)
            redis.send(["WAIT", String(acksRequired), String(waitMillis)], on: connection) { [weak self] result in
                let confirmed = (try? result.get().integer).flatMap { $0 } ?? 0
                for release in batch { release(confirmed >= Int64(self?.acksRequired ?? 1)) }
                guard let self else { return }
                waiting.remove(connection)
                // An error reply (WAIT on a master since demoted) is no verdict on the replicas.
                if confirmed < Int64(acksRequired), case .success(let reply) = result, reply.errorMessage == nil { refuse(connection) }
                if held[connection]?.isEmpty == false { scheduleFlush() }
            }
        }
    }
}
