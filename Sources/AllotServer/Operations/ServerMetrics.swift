import CoreMetrics
import EventHTTP

import Prometheus
import Synchronization

/// What `/metrics` shows. What the loops record on every request is kept
/// per loop (LoopMetrics.swift) and summed when rendered; the rest goes
/// through swift-metrics into this server's own Prometheus registry (not the
/// process-wide one: tests run several servers in one process). Handles are
/// made once and kept.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    let requests = LoopFamily<LoopCount>("allot_http_requests_total", labels: ["route", "status"]) { LoopCount() }
    let requestDurations = LoopFamily<LoopHistogram>("allot_http_request_duration_seconds", labels: ["route"]) { LoopHistogram() }
    let redisRoundTrips = LoopFamily<LoopHistogram>("allot_redis_roundtrip_seconds", labels: ["command"]) { LoopHistogram() }
    let reservationOutcomes = LoopFamily<LoopCount>("allot_reservation_outcomes_total", labels: ["outcome"]) { LoopCount() }
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
    static let outcomes = ["confirmed", "held", "hold_pending", "slot_full", "citizen_limit_reached", "rate_limited", "campaign_not_open",
                           "not_eligible", "invalid", "not_found", "idempotency_conflict", "idempotent_replay", "unavailable"]

    /// Each loop's open connections, as it last published them.
    private let connectionsPerLoop: [PublishedCount]

    private final class PublishedCount: Sendable {
        let value = Atomic<Int>(0)
    }

    init(loops: Int) {
        connectionsPerLoop = (0..<loops).map { _ in PublishedCount() }
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["allot_persist_batch_rows"] = [1, 10, 50, 100, 250, 500, 1000, 2000, 5000]
        self.factory = factory
        persistBatchRows = CoreMetrics.Recorder(label: "allot_persist_batch_rows", dimensions: [], aggregate: true, factory: factory)
        persistLagMillis = CoreMetrics.Gauge(label: "allot_persist_lag_milliseconds", dimensions: [], factory: factory)
        persistedRows = CoreMetrics.Counter(label: "allot_persisted_events_total", dimensions: [], factory: factory)
        openConnections = CoreMetrics.Gauge(label: "allot_open_connections", dimensions: [], factory: factory)
        eventLoops = CoreMetrics.Gauge(label: "allot_event_loops", dimensions: [], factory: factory)
        connectionEnds = Dictionary(uniqueKeysWithValues: Self.connectionEndReasons.map {
            ($0, CoreMetrics.Counter(label: "allot_connections_ended_total", dimensions: [("reason", $0)], factory: factory))
        })
    }

    func publishOpenConnections(loop: Int, _ count: Int) {
        connectionsPerLoop[loop].value.store(count, ordering: .relaxed)
    }

    /// Open connections on every loop, as they last published them.
    var openConnectionCount: Int { connectionsPerLoop.reduce(0) { $0 + $1.value.load(ordering: .relaxed) } }

    /// Prometheus text exposition of everything above.
    func render() -> [UInt8] {
        openConnections.record(openConnectionCount)
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        requests.render(into: &buffer)
        requestDurations.render(into: &buffer)
        redisRoundTrips.render(into: &buffer)
        reservationOutcomes.render(into: &buffer)
        return buffer
    }
}

/// One loop's own cells of the per-request metrics (LoopMetrics.swift):
/// recording takes no lock. Touched only on its loop.
final class LoopRequestMetrics {
    private struct Key: Hashable {
        let route: String
        let status: Int
    }

    private let metrics: ServerMetrics
    private var counters: [Key: LoopCount] = [:]
    private var timers: [String: LoopHistogram] = [:]
    private let outcomes: [String: LoopCount]
    private let reserveRoundTrips: LoopHistogram

    init(_ metrics: ServerMetrics) {
        self.metrics = metrics
        // Every outcome is shown from the start, at 0.
        outcomes = Dictionary(uniqueKeysWithValues: ServerMetrics.outcomes.map { ($0, metrics.reservationOutcomes.cell([$0])) })
        reserveRoundTrips = metrics.redisRoundTrips.cell(["reserve"])
    }

    func reservationOutcome(_ outcome: String) {
        outcomes[outcome]?.add(1)
    }

    func reserveRoundTrip(micros: Int64) {
        reserveRoundTrips.record(micros: micros)
    }

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
            counter.add(1)
        } else {
            let counter = metrics.requests.cell([route, String(status)])
            counters[key] = counter
            counter.add(1)
        }
        if let timer = timers[route] {
            timer.record(micros: elapsedMicros)
        } else {
            let timer = metrics.requestDurations.cell([route])
            timers[route] = timer
            timer.record(micros: elapsedMicros)
        }
    }
}
