import EventHTTP
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
    private struct Item: Sendable {
        let job: Job
        let reply: @Sendable (Answer) -> Void
    }

    private let items = Mutex<[Item?]>([])
    private let wakeUp = DispatchSemaphore(value: 0)
    private let databasePath: String
    private let redisHost: String
    private let redisPort: Int
    private let logger: Logger
    private let tokens: TokenDirectory
    private let tokenRefreshMillis: Int
    private let finished = DispatchSemaphore(value: 0)

    init(databasePath: String, redisHost: String, redisPort: Int, tokens: TokenDirectory, tokenRefreshMillis: Int,
         logger: Logger) {
        self.databasePath = databasePath
        self.redisHost = redisHost
        self.redisPort = redisPort
        self.tokens = tokens
        self.tokenRefreshMillis = tokenRefreshMillis
        self.logger = logger
    }

    /// Opens SQLite and loads the tokens before any loop serves.
    func start() throws {
        let store = AdminStore(database: try Schema.open(path: databasePath),
                               redis: RedisSyncClient(host: redisHost, port: redisPort), logger: logger)
        tokens.replace(with: try TokenStore(database: store.database).activeGrants())
        do { try store.publishMissingRoutes() } catch {
            // Redis may be away at start; the next operator change publishes the route.
            logger.warning("routes not published", metadata: ["error": "\(error)"])
        }
        let box = UncheckedBox(store)
        let thread = Thread { [self] in run(box.value) }
        thread.name = "allot-admin"
        thread.start()
    }

    /// Queues a job; false when the queue is full (the caller answers 503).
    func submit(_ job: @escaping Job, reply: @escaping @Sendable (Answer) -> Void) -> Bool {
        let accepted = items.withLock { queue -> Bool in
            guard queue.count < Self.queuedJobsMax else { return false }
            queue.append(Item(job: job, reply: reply))
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

    private func run(_ store: AdminStore) {
        var refreshedAt = monotonicMicros()
        while true {
            let woken = wakeUp.wait(timeout: .now() + .milliseconds(tokenRefreshMillis)) == .success
            if monotonicMicros() - refreshedAt >= Int64(tokenRefreshMillis) * 1000 {
                refreshTokens(store)
                refreshedAt = monotonicMicros()
            }
            guard woken else { continue }
            guard let item = items.withLock({ $0.removeFirst() }) else { break }
            item.reply(item.job(store))
        }
        refreshTokens(store)
        store.close()
        finished.signal()
    }
}

extension AdminWorker {
    /// Queues a reload of the tokens; `done` runs on the worker thread once
    /// it is finished. False when the queue is full.
    func reloadTokens(done: @escaping @Sendable () -> Void) -> Bool {
        submit({ [self] store in
            refreshTokens(store)
            return .json(200, [])
        }, reply: { _ in done() })
    }

    /// Reloads tokens (made or revoked by `allot token` meanwhile) and
    /// writes back when each was last used.
    private func refreshTokens(_ store: AdminStore) {
        let tokenStore = TokenStore(database: store.database)
        do {
            try tokenStore.recordLastUsed(tokens.takeLastUsed())
            tokens.replace(with: try tokenStore.activeGrants())
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
