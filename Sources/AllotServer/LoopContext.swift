import AllotDomain
import EventHTTP
import Logging
import RedisClient

/// What one event loop owns: its Redis connection, its read snapshot, and
/// the counters it flushes. Touched only on its loop thread.
final class LoopContext {
    let loop: EventLoop
    let redis: RedisAsyncClient
    let catalog: Catalog
    let finder: CampaignFinder
    let shared: SharedServices
    var config: ServerConfig { shared.config }
    /// Invalid attempts per campaign since the last flush to Redis stats.
    var invalidAttempts: [String: Int] = [:]
    var random = BufferedRandom()
    /// Set on shutdown: new requests are refused so in-flight ones can end.
    var draining = false
    /// This loop's HTTP server's open connections (set once it exists).
    var openConnections: () -> Int = { 0 }
    private var refreshTimer: LoopTimer?

    init(loop: EventLoop, shared: SharedServices) {
        self.loop = loop
        self.shared = shared
        var settings = RedisAsyncClient.Settings(host: shared.config.redisHost, port: shared.config.redisPort)
        settings.commandTimeoutMillis = shared.config.redisCommandTimeoutMillis
        redis = RedisAsyncClient(loop: loop, settings: settings)
        catalog = Catalog(loop: loop, redis: redis)
        finder = CampaignFinder(catalog: catalog, redis: redis, staleMillisMax: shared.config.snapshotStaleMillisMax)
    }

    /// On the loop thread: connect and start refreshing.
    func start() {
        loop.preconditionInLoop()
        redis.onConnect = { [unowned self] client in
            client.loadScripts()
            self.catalog.refresh()
        }
        redis.start()
        shared.catalogs.register(catalog, loop: loop)
        refreshTimer = loop.schedule(everyMillis: config.snapshotRefreshMillis) { [unowned self] in
            self.catalog.refresh()
            self.flushInvalidAttempts()
            self.shared.metrics.publishOpenConnections(loop: self.loop.index, self.openConnections())
        }
    }

    func stop() {
        loop.preconditionInLoop()
        flushInvalidAttempts()
        refreshTimer?.cancel()
        redis.stop()
    }

    func countInvalid(_ campaign: String) {
        invalidAttempts[campaign, default: 0] += 1
    }

    private func flushInvalidAttempts() {
        guard !invalidAttempts.isEmpty, redis.isConnected else { return }
        for (campaign, count) in invalidAttempts {
            let keys = CampaignKeys(campaign)
            redis.send(["HINCRBY", keys.stats, "rej_invalid", String(count)]) { _ in }
        }
        invalidAttempts.removeAll(keepingCapacity: true)
    }

    /// The snapshot, if it may still be shown.
    var freshCatalog: Catalog? { finder.freshCatalog }
}
