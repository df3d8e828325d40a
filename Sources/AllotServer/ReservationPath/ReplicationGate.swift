import EventLoops
import RedisClient

/// `--durability replicated`: a 201 waits until Redis confirms that its
/// write reached a replica. One `WAIT` per loop turn covers every
/// reservation answered by Redis before it: `WAIT` counts the writes of its
/// own connection, the loop's, made before it. While one `WAIT` is out,
/// the next turn's reservations gather for the next.
final class ReplicationGate {
    private let loop: EventLoop
    private let redis: any RedisRouting
    private let acksRequired: Int
    private let waitMillis: Int
    /// Answers held until the next `WAIT` says whether their writes reached
    /// a replica (true) or not in time (false).
    private var held: [(Bool) -> Void] = []
    private var waiting = false
    private var flushScheduled = false

    init(loop: EventLoop, redis: any RedisRouting, acksRequired: Int, waitMillis: Int) {
        self.loop = loop
        self.redis = redis
        self.acksRequired = acksRequired
        self.waitMillis = waitMillis
    }

    var isActive: Bool { acksRequired > 0 }

    /// Holds one answer; `release` runs once, on the loop.
    func hold(_ release: @escaping (Bool) -> Void) {
        held.append(release)
        scheduleFlush()
    }

    /// After the turn's other events: a timer of no delay runs in the
    /// loop's next pass, once the replies read in this one are handled.
    private func scheduleFlush() {
        guard !flushScheduled, !waiting else { return }
        flushScheduled = true
        loop.schedule(afterMillis: 0) { [weak self] in
            self?.flushScheduled = false
            self?.flush()
        }
    }

    private func flush() {
        guard !held.isEmpty, !waiting else { return }
        let batch = held
        held.removeAll(keepingCapacity: true)
        waiting = true
        // (One Redis: the slot is not used. A cluster will need one WAIT
        // per master its reservations went to.)
        redis.send(["WAIT", String(acksRequired), String(waitMillis)], slot: 0) { [weak self] result in
            let confirmed = (try? result.get().integer).flatMap { $0 } ?? 0
            for release in batch { release(confirmed >= Int64(self?.acksRequired ?? 1)) }
            self?.waiting = false
            if self?.held.isEmpty == false { self?.scheduleFlush() }
        }
    }
}
