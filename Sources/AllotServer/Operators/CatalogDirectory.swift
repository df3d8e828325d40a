import EventHTTP
import EventLoops
import Synchronization

/// Every loop's snapshot, reachable from any thread. An operator's change is
/// answered only once each loop has refreshed after it, so a campaign just
/// opened never answers "no such campaign" on a loop that has not looked yet.
final class CatalogDirectory: Sendable {
    private let catalogs = Mutex<[LoopBound<Catalog>]>([])

    /// On the catalog's loop, when the loop starts.
    func register(_ catalog: Catalog, loop: EventLoop) {
        let bound = LoopBound(catalog, loop: loop)
        catalogs.withLock { $0.append(bound) }
    }

    /// Asks every loop for a refresh that starts after this call, and runs
    /// `done` (on some loop) once all have ended, whether they reached Redis
    /// or not: a loop that could not refresh is serving 503s for reservations
    /// anyway, and its next refresh shows the change.
    func refreshEverywhere(then done: @escaping @Sendable () -> Void) {
        let all = catalogs.withLock { $0 }
        let countdown = Countdown(all.count, then: done)
        for catalog in all {
            let sent = catalog.loop.execute { catalog.wrapped.refresh { _ in countdown.tick() } }
            if !sent { countdown.tick() }
        }
    }
}

/// Runs `then` when `tick` has been called `count` times (at once for 0).
final class Countdown: Sendable {
    private let remaining: Atomic<Int>
    private let then: @Sendable () -> Void

    init(_ count: Int, then: @escaping @Sendable () -> Void) {
        remaining = Atomic(count)
        self.then = then
        if count == 0 { then() }
    }

    func tick() {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { then() }
    }
}
