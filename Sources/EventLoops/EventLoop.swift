import CEvent
import Glibc
import Synchronization

/// One libevent `event_base` driven by one thread. State owned by a loop is
/// touched only on that loop's thread (`preconditionInLoop`); other threads
/// hand it work through `execute`, a bounded queue plus an `event_active`
/// wake-up (memcached's pattern), never by polling.
public final class EventLoop: @unchecked Sendable {
    public static let inboxItemsMax = 65_536

    public let index: Int
    let base: OpaquePointer
    private var wakeEvent: OpaquePointer?
    private let inbox = Mutex(Inbox())
    private let ownerThread = Mutex<pthread_t?>(nil)

    /// Call once per process before any loop is made: libevent's locks for
    /// cross-thread `event_active` and `event_base_loopexit`.
    public static let threadingEnabled: Bool = { evthread_use_pthreads() == 0 }()

    /// `preciseTimers`: timers through timerfd, to the tenth of a
    /// millisecond. Without it, epoll's millisecond timeouts fire up to ~5 ms
    /// late on some virtual machines (measured here: a 1 ms timer ticked 373
    /// times in 2 s, 1 743 with timerfd). The load harness paces requests
    /// with them; the server's timers are coarse on purpose.
    public init(index: Int, preciseTimers: Bool = false) {
        precondition(Self.threadingEnabled, "evthread_use_pthreads failed")
        // The epoll changelist folds the add/delete of write interest that
        // the HTTP layer and hiredis make for every reply into one epoll_ctl
        // per fd per loop iteration (it showed in the profile). Safe here:
        // no fd is dup()ed behind libevent's back.
        let config = event_config_new()
        event_config_set_flag(config, Int32(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.rawValue))
        if preciseTimers { event_config_set_flag(config, Int32(EVENT_BASE_FLAG_PRECISE_TIMER.rawValue)) }
        guard let base = event_base_new_with_config(config) else { fatalError("event_base_new failed") }
        event_config_free(config)
        self.index = index
        self.base = base
        let context = Unmanaged.passUnretained(self).toOpaque()
        wakeEvent = event_new(base, -1, 0, { _, _, context in
            Unmanaged<EventLoop>.fromOpaque(context!).takeUnretainedValue().drainInbox()
        }, context)
        precondition(wakeEvent != nil)
    }

    deinit {
        if let wakeEvent { event_free(wakeEvent) }
        event_base_free(base)
    }

    public var isInLoop: Bool {
        ownerThread.withLock { owner in owner.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    public func preconditionInLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(isInLoop, "called off its event loop", file: file, line: line)
    }

    /// Runs the loop on the calling thread until `stop`.
    public func run() {
        ownerThread.withLock { $0 = pthread_self() }
        // A persistent timer keeps the loop alive while it has no other event.
        let keepAlive = schedule(everyMillis: 3_600_000) {}
        _ = event_base_loop(base, 0)
        keepAlive.cancel()
        drainInbox()
        ownerThread.withLock { $0 = nil }
    }

    /// Ends `run` after the current callbacks; callable from any thread.
    public func stop() { _ = event_base_loopbreak(base) }

    /// Queues work for the loop thread. Returns false when the inbox is full:
    /// the caller sheds load instead of queueing without bound.
    @discardableResult
    public func execute(_ work: @escaping @Sendable () -> Void) -> Bool {
        let accepted = inbox.withLock { $0.append(work, reserved: false) }
        if accepted { event_active(wakeEvent, EV_READ, 0) }
        return accepted
    }

    /// Takes a place in the inbox now for work that will come back later
    /// from another thread (an answer from a worker): work sent through it
    /// is never refused, so no answer is lost to an inbox that filled up
    /// meanwhile. Nil when the inbox is full: shed the request now.
    public func reservePlace() -> InboxPlace? {
        inbox.withLock { $0.reserve() } ? InboxPlace(loop: self) : nil
    }

    fileprivate func executeReserved(_ work: @escaping @Sendable () -> Void) {
        let accepted = inbox.withLock { $0.append(work, reserved: true) }
        precondition(accepted, "a reserved place is always free")
        event_active(wakeEvent, EV_READ, 0)
    }

    fileprivate func releasePlace() {
        inbox.withLock { $0.release() }
    }

    private func drainInbox() {
        let items = inbox.withLock { $0.takeAll() }
        for item in items { item() }
    }

    /// A repeating timer on this loop; must be made on the loop thread (or
    /// before it runs).
    public func schedule(everyMillis: Int, _ action: @escaping () -> Void) -> LoopTimer {
        LoopTimer(loop: self, millis: everyMillis, repeating: true, action: action)
    }

    /// A one-shot timer on this loop.
    @discardableResult
    public func schedule(afterMillis: Int, _ action: @escaping () -> Void) -> LoopTimer {
        LoopTimer(loop: self, millis: afterMillis, repeating: false, action: action)
    }

    /// The raw base, for the adapters of other C libraries (hiredis).
    public var eventBase: OpaquePointer { base }
}

/// A libevent timer. The timer keeps itself alive while armed; `cancel`
/// disarms it and lets it go.
public final class LoopTimer {
    private var event: OpaquePointer?
    private let action: () -> Void
    private let repeating: Bool
    private var selfReference: Unmanaged<LoopTimer>?

    init(loop: EventLoop, millis: Int, repeating: Bool, action: @escaping () -> Void) {
        precondition(millis >= 0)
        self.action = action
        self.repeating = repeating
        let retained = Unmanaged.passRetained(self)
        selfReference = retained
        let flags = Int16(repeating ? EV_PERSIST : 0)
        event = event_new(loop.base, -1, flags, { _, _, context in
            Unmanaged<LoopTimer>.fromOpaque(context!).takeUnretainedValue().fire()
        }, retained.toOpaque())
        precondition(event != nil)
        var interval = timeval(tv_sec: millis / 1000, tv_usec: Int((millis % 1000) * 1000))
        event_add(event, &interval)
    }

    private func fire() {
        action()
        if !repeating { cancel() }
    }

    public func cancel() {
        guard let event else { return }
        event_del(event)
        event_free(event)
        self.event = nil
        selfReference?.release()
        selfReference = nil
    }
}

/// A loop's queue of work from other threads, with places held for answers
/// still to come. Holds at most `EventLoop.inboxItemsMax` items and
/// reservations together.
private struct Inbox {
    var items: [@Sendable () -> Void] = []
    var reserved = 0

    mutating func append(_ work: @escaping @Sendable () -> Void, reserved fromReservation: Bool) -> Bool {
        if fromReservation {
            precondition(reserved > 0)
            reserved -= 1
        } else {
            guard items.count + reserved < EventLoop.inboxItemsMax else { return false }
        }
        items.append(work)
        return true
    }

    mutating func reserve() -> Bool {
        guard items.count + reserved < EventLoop.inboxItemsMax else { return false }
        reserved += 1
        return true
    }

    mutating func release() {
        precondition(reserved > 0)
        reserved -= 1
    }

    mutating func takeAll() -> [@Sendable () -> Void] {
        defer { items.removeAll(keepingCapacity: true) }
        return items
    }
}

/// One place held in a loop's inbox (`EventLoop.reservePlace`): `execute`
/// sends work through it once, from any thread; dropped unused, it frees
/// the place.
public final class InboxPlace: Sendable {
    private let loop: EventLoop
    private let used = Atomic<Bool>(false)

    fileprivate init(loop: EventLoop) { self.loop = loop }

    public var eventLoop: EventLoop { loop }

    /// Runs `work` on the loop. A second call is a programming error and
    /// does nothing.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        guard !used.exchange(true, ordering: .acquiringAndReleasing) else {
            assertionFailure("an inbox place is used once")
            return
        }
        loop.executeReserved(work)
    }

    deinit {
        if !used.load(ordering: .acquiring) { loop.releasePlace() }
    }
}
