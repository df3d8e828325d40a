import CoreMetrics
import EventHTTP

import Prometheus
import Synchronization

/// What `/metrics` shows, recorded through swift-metrics into this server's
/// own Prometheus registry (not the process-wide one: tests run several
/// servers in one process). Handles are made once and kept; making one takes
/// the registry's lock, recording on it does not contend with other labels.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let outcomeCounters: [String: CoreMetrics.Counter]
    let redisRoundTrip: CoreMetrics.Timer
    let persistBatchRows: CoreMetrics.Recorder
    let persistLagMillis: CoreMetrics.Gauge
    let persistedRows: CoreMetrics.Counter
    let openConnections: CoreMetrics.Gauge
    let eventLoops: CoreMetrics.Gauge
    /// Connections turned away or cut off, by why (`ConnectionEnd`).
    let connectionEnds: [String: CoreMetrics.Counter]
    static let connectionEndReasons = ["refused_server_full", "refused_address_full", "closed_unanswered",
                                       "request_deadline_missed"]

    /// Reservation outcomes: 201, each rejection code, and 503.
    static let outcomes = ["confirmed", "slot_full", "citizen_limit_reached", "rate_limited", "campaign_not_open",
                           "invalid", "not_found", "idempotency_conflict", "idempotent_replay", "unavailable"]

    /// Each loop's open connections, as it last published them.
    private let connectionsPerLoop: [PublishedCount]

    private final class PublishedCount: Sendable {
        let value = Atomic<Int>(0)
    }

    init(loops: Int) {
        connectionsPerLoop = (0..<loops).map { _ in PublishedCount() }
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request and Redis latencies live between 0.1 ms and seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(1000), .milliseconds(5000),
        ]
        factory.valueHistogramBuckets["allot_persist_batch_rows"] = [1, 10, 50, 100, 250, 500, 1000, 2000, 5000]
        self.factory = factory
        outcomeCounters = Dictionary(uniqueKeysWithValues: Self.outcomes.map {
            ($0, CoreMetrics.Counter(label: "allot_reservation_outcomes_total", dimensions: [("outcome", $0)], factory: factory))
        })
        redisRoundTrip = CoreMetrics.Timer(label: "allot_redis_roundtrip_seconds", dimensions: [("command", "reserve")], factory: factory)
        persistBatchRows = CoreMetrics.Recorder(label: "allot_persist_batch_rows", dimensions: [], aggregate: true, factory: factory)
        persistLagMillis = CoreMetrics.Gauge(label: "allot_persist_lag_milliseconds", dimensions: [], factory: factory)
        persistedRows = CoreMetrics.Counter(label: "allot_persisted_events_total", dimensions: [], factory: factory)
        openConnections = CoreMetrics.Gauge(label: "allot_open_connections", dimensions: [], factory: factory)
        eventLoops = CoreMetrics.Gauge(label: "allot_event_loops", dimensions: [], factory: factory)
        connectionEnds = Dictionary(uniqueKeysWithValues: Self.connectionEndReasons.map {
            ($0, CoreMetrics.Counter(label: "allot_connections_ended_total", dimensions: [("reason", $0)], factory: factory))
        })
    }

    func requestCounter(route: String, status: Int) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: "allot_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                factory: factory)
    }

    func requestTimer(route: String) -> CoreMetrics.Timer {
        CoreMetrics.Timer(label: "allot_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
    }

    func reservationOutcome(_ outcome: String) {
        outcomeCounters[outcome]?.increment()
    }

    func publishOpenConnections(loop: Int, _ count: Int) {
        connectionsPerLoop[loop].value.store(count, ordering: .relaxed)
    }

    /// Prometheus text exposition of everything above.
    func render() -> [UInt8] {
        openConnections.record(connectionsPerLoop.reduce(0) { $0 + $1.value.load(ordering: .relaxed) })
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

/// One loop's handles for request metrics, so that recording an answer
/// takes no lock but the metric's own (the registry hands every loop the
/// same metric for the same labels).
final class LoopRequestMetrics {
    private struct Key: Hashable {
        let route: String
        let status: Int
    }

    private let metrics: ServerMetrics
    private var counters: [Key: CoreMetrics.Counter] = [:]
    private var timers: [String: CoreMetrics.Timer] = [:]

    init(_ metrics: ServerMetrics) { self.metrics = metrics }

    func connectionEnded(_ end: HTTPServer.ConnectionEnd) {
        let reason: String
        switch end {
        case .refused(.serverFull): reason = "refused_server_full"
        case .refused(.addressFull): reason = "refused_address_full"
        case .closedUnanswered: reason = "closed_unanswered"
        case .deadlineMissed: reason = "request_deadline_missed"
        }
        metrics.connectionEnds[reason]?.increment()
    }

    func responded(route: String, status: Int, elapsedMicros: Int64) {
        let key = Key(route: route, status: status)
        if let counter = counters[key] {
            counter.increment()
        } else {
            let counter = metrics.requestCounter(route: route, status: status)
            counters[key] = counter
            counter.increment()
        }
        if let timer = timers[route] {
            timer.recordMicroseconds(elapsedMicros)
        } else {
            let timer = metrics.requestTimer(route: route)
            timers[route] = timer
            timer.recordMicroseconds(elapsedMicros)
        }
    }
}
