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
    private let finished = DispatchSemaphore(value: 0)

    init(databasePath: String, redisHost: String, redisPort: Int, logger: Logger) {
        self.databasePath = databasePath
        self.redisHost = redisHost
        self.redisPort = redisPort
        self.logger = logger
    }

    func start() throws {
        let store = AdminStore(database: try Schema.open(path: databasePath),
                               redis: RedisSyncClient(host: redisHost, port: redisPort), logger: logger)
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
        while true {
            wakeUp.wait()
            guard let item = items.withLock({ $0.removeFirst() }) else { break }
            item.reply(item.job(store))
        }
        store.close()
        finished.signal()
    }
}

/// Hands a non-Sendable value to the one thread that will own it.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
