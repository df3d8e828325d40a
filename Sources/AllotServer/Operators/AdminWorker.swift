import EventHTTP
import EventLoops
import Foundation
import Logging
import RedisClient
import SQLiteStore
import Synchronization

/// The thread that may block: operators' requests need SQLite (first) and
/// then Redis, and neither may run on a loop. Jobs come through a bounded
/// queue; each answer goes back to the loop that asked.
final class AdminWorker: Sendable {
    static let queuedJobsMax = 1_024

    typealias Job = @Sendable (AdminStore) -> Answer
    typealias ThrowingJob = @Sendable (AdminStore) throws -> Answer
    private enum Work: Sendable {
        case job(Job)
        case reloadTokens
    }

    private struct Item: Sendable {
        let work: Work
        let reply: @Sendable (Answer) -> Void
    }

    /// What the worker thread works with: SQLite and Redis (a full node),
    /// or Redis alone (a front node: tokens only, no operator request).
    private enum Backing {
        case full(AdminStore)
        case front(any RedisSyncRouting)
    }

    private let items = Mutex<[Item?]>([])
    private let wakeUp = DispatchSemaphore(value: 0)
    /// Nil on a front node.
    private let databasePath: String?
    private let redis: RedisDeployment
    private let logger: Logger
    private let tokens: TokenDirectory
    private let tokenRefreshMillis: Int
    private let finished = DispatchSemaphore(value: 0)
    /// Whoever waits for the token reload that is queued.
    private let reloadWaiters = Mutex<[@Sendable () -> Void]>([])
    private let lastReloadMicros = Atomic<Int64>(0)
    static let tokenReloadMillisMin = 50
    /// Run once a second on a full node (the dashboard's sampler).
    private let everySecond = Mutex<(@Sendable (AdminStore) -> Void)?>(nil)

    init(databasePath: String?, redis: RedisDeployment, tokens: TokenDirectory, tokenRefreshMillis: Int,
         logger: Logger) {
        self.databasePath = databasePath
        self.redis = redis
        self.tokens = tokens
        self.tokenRefreshMillis = tokenRefreshMillis
        self.logger = logger
    }

    /// Opens SQLite (a full node) and loads the tokens before any loop serves.
    func start() throws {
        let backing: Backing
        if let databasePath {
            let store = AdminStore(database: try Schema.open(path: databasePath),
                                   redis: redis.blockingClient(timeoutMillis: 2_000), logger: logger)
            do { try store.publishMissingRoutes() } catch {
                // Redis may be away at start; the next operator change publishes the route.
                logger.warning("routes not published", metadata: ["error": "\(error)"])
            }
            backing = .full(store)
            tokens.replace(with: try TokenStore(database: store.database).activeGrants())
        } else {
            backing = .front(redis.blockingClient(timeoutMillis: 2_000))
        }
        refreshTokens(backing)
        let box = UncheckedBox(backing)
        let thread = Thread { [self] in
            nameCurrentThread("allot-admin")
            run(box.value)
        }
        thread.name = "allot-admin"
        thread.start()
    }

    /// Queues a job; false when the queue is full (the caller answers 503).
    func submit(_ job: @escaping Job, reply: @escaping @Sendable (Answer) -> Void) -> Bool {
        submit(Item(work: .job(job), reply: reply))
    }

    private func submit(_ item: Item) -> Bool {
        let accepted = items.withLock { queue -> Bool in
            guard queue.count < Self.queuedJobsMax else { return false }
            queue.append(item)
            return true
        }
        if accepted { wakeUp.signal() }
        return accepted
    }

    /// Finishes the queued jobs, then ends the thread.
    func stop() {
        items.withLock { $0.append(nil) }
        wakeUp.signal()
        finished.wait()
    }

    /// `task` runs on the worker thread about once a second, between jobs.
    func runEverySecond(_ task: @escaping @Sendable (AdminStore) -> Void) {
        everySecond.withLock { $0 = task }
    }

    private func run(_ backing: Backing) {
        var refreshedAt = monotonicMicros(), secondAt = monotonicMicros()
        while true {
            let woken = wakeUp.wait(timeout: .now() + .milliseconds(min(tokenRefreshMillis, 1_000))) == .success
            if monotonicMicros() - refreshedAt >= Int64(tokenRefreshMillis) * 1000 {
                refreshTokens(backing)
                refreshedAt = monotonicMicros()
            }
            // Due, with nothing queued behind it (an operator's request waits
            // for a sample's 200 ms at most); after 3 s due, whatever is queued,
            // so a stream of requests cannot starve the dashboard.
            let sinceSample = monotonicMicros() - secondAt
            if sinceSample >= 1_000_000, items.withLock({ $0.count <= (woken ? 1 : 0) }) || sinceSample >= 3_000_000,
               case .full(let store) = backing, let task = everySecond.withLock({ $0 }) {
                task(store)
                secondAt = monotonicMicros()
            }
            guard woken else { continue }
            guard let item = items.withLock({ $0.removeFirst() }) else { break }
            switch (item.work, backing) {
            case (.job(let job), .full(let store)): item.reply(job(store))
            case (.job, .front): item.reply(.problem(OperatorRoutes.noDatabase))
            case (.reloadTokens, _):
                reloadTokensNow(backing)
                item.reply(.json(200, []))
            }
        }
        refreshTokens(backing)
        switch backing {
        case .full(let store): store.close()
        case .front(let redis): redis.close()
        }
        finished.signal()
    }
}

extension AdminWorker {
    /// Reloads the tokens, then runs `done` on the worker thread. Requests
    /// that ask while a reload is queued share it, and reloads asked for this
    /// way run at most every `tokenReloadMillisMin`: a client sending bad
    /// tokens makes the worker reload at most that often, whatever its rate.
    /// When the queue is full, `done` runs at once, on this thread.
    func reloadTokens(done: @escaping @Sendable () -> Void) {
        let first = reloadWaiters.withLock { waiters -> Bool in
            defer { waiters.append(done) }
            return waiters.isEmpty
        }
        guard first else { return }
        let accepted = submit(Item(work: .reloadTokens, reply: { _ in }))
        guard !accepted else { return }
        let waiters = reloadWaiters.withLock { waiters in
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in waiters { waiter() }
    }

    /// On the worker thread: the reload asked for by `reloadTokens`, at
    /// most every `tokenReloadMillisMin`.
    private func reloadTokensNow(_ backing: Backing) {
        let wait = Int64(Self.tokenReloadMillisMin) * 1000 - (monotonicMicros() - lastReloadMicros.load(ordering: .relaxed))
        if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1_000_000) }
        // Taken before reading: whoever asks from now on is served by
        // the next reload, which sees any token made before it asked.
        let waiters = reloadWaiters.withLock { waiters in
            defer { waiters.removeAll() }
            return waiters
        }
        refreshTokens(backing)
        lastReloadMicros.store(monotonicMicros(), ordering: .relaxed)
        for waiter in waiters { waiter() }
    }

    /// Reloads tokens (made or revoked by `allot token` meanwhile): a full
    /// node from SQLite, writing back when each was last used and
    /// publishing them for front nodes (TokenMirror); a front node from
    /// what was published.
    private func refreshTokens(_ backing: Backing) {
        do {
            switch backing {
            case .full(let store):
                let tokenStore = TokenStore(database: store.database)
                try tokenStore.recordLastUsed(tokens.takeLastUsed())
                let grants = try tokenStore.activeGrants()
                tokens.replace(with: grants)
                try TokenMirror.publish(grants, to: store.redis)
            case .front(let redis):
                _ = tokens.takeLastUsed()  // kept by the full nodes only
                tokens.replace(with: try TokenMirror.read(from: redis))
            }
        } catch {
            logger.warning("tokens not reloaded", metadata: ["error": "\(error)"])
        }
    }
}

/// Hands a non-Sendable value to the one thread that will own it.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
