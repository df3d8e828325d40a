import AllotDomain
import EventHTTP
import EventLoops
import Logging
import RedisClient

/// What one event loop owns: its Redis connection, its read snapshot, and
/// the handlers of its requests, each owning what it touches. Made and
/// touched on its loop thread only.
final class LoopContext {
    let loop: EventLoop
    let redis: any RedisRouting
    let catalog: Catalog
    let shared: SharedServices
    let dispatcher: Dispatcher
    /// This loop's own cells of the per-request metrics.
    let metrics: LoopRequestMetrics
    private let desk: ReservationDesk
    /// This loop's HTTP server's open connections (set once it exists).
    var openConnections: () -> Int = { 0 }
    private var refreshTimer: LoopTimer?
    /// The first loop of each node ends holds past their expiry.
    private var holdSweepTimer: LoopTimer?

    init(loop: EventLoop, shared: SharedServices) {
        self.loop = loop
        self.shared = shared
        redis = shared.config.redis.loopClient(on: loop, commandTimeoutMillis: shared.config.redisCommandTimeoutMillis)
        catalog = Catalog(loop: loop, redis: redis)
        let finder = CampaignFinder(catalog: catalog, redis: redis, staleMillisMax: shared.config.snapshotStaleMillisMax)
        let reads = CitizenReads(catalog: catalog, finder: finder, refreshMillis: shared.config.snapshotRefreshMillis)
        metrics = LoopRequestMetrics(shared.metrics)
        desk = ReservationDesk(loop: loop, redis: redis, reads: reads, shared: shared, metrics: metrics)
        dispatcher = Dispatcher(loop: loop, shared: shared, redis: redis, reads: reads, desk: desk,
                                lookup: ReservationLookup(loop: loop, redis: redis, finder: finder, shared: shared,
                                                          replication: desk.replication),
                                operators: OperatorRoutes(loop: loop, shared: shared))
    }

    /// Set on shutdown: new requests are refused so in-flight ones can end.
    var draining: Bool {
        get { dispatcher.draining }
        set { dispatcher.draining = newValue }
    }

    func handle(_ exchange: HTTPExchange) { dispatcher.handle(exchange) }

    /// On the loop thread: connect and start refreshing.
    func start() {
        loop.preconditionInLoop()
        // On a cluster: each master's connection loads the library.
        redis.onServerConnect = { [unowned self] server in
            server.loadScripts()
            self.catalog.refresh()
        }
        redis.start()
        shared.catalogs.register(catalog, loop: loop)
        refreshTimer = loop.schedule(everyMillis: shared.config.snapshotRefreshMillis) { [unowned self] in
            self.catalog.refresh()
            self.desk.flushRejections()
            self.shared.metrics.publishOpenConnections(loop: self.loop.index, self.openConnections())
        }
        if loop.index == 0 {
            let refill = desk.refill
            let sweeper = HoldSweeper(catalog: catalog, redis: redis, streamEntriesMax: shared.config.streamEntriesMax,
                                      logger: shared.logger) { view, bucket, slot in refill.refill(view, bucket: bucket, slot: slot) { _ in } }
            holdSweepTimer = loop.schedule(everyMillis: HoldSweeper.periodMillis) { sweeper.sweep() }
        }
    }

    func stop() {
        loop.preconditionInLoop()
        desk.flushRejections()
        refreshTimer?.cancel()
        holdSweepTimer?.cancel()
        redis.stop()
    }
}
