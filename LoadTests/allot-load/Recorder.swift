import Foundation
import Histogram

/// What happened to each request: latency histograms (HdrHistogram, µs)
/// per outcome, and per second of the run: completions by outcome and a
/// latency histogram. Shared by the load threads behind one lock (a few
/// tens of nanoseconds a request, uncontended most of the time).
final class Recorder: @unchecked Sendable {
    /// One second of the run.
    struct Second {
        var completed: [String: Int] = [:]
        var latency = Recorder.histogram()
    }

    static let latencyMaxMicros: UInt64 = 120_000_000

    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: latencyMaxMicros, numberOfSignificantValueDigits: .three)
    }

    private let lock = NSLock()
    private let startMicros: Int64
    private var byOutcome: [String: Histogram<UInt64>] = [:]
    private var all = Recorder.histogram()
    private(set) var seconds: [Second] = []

    init(startMicros: Int64) { self.startMicros = startMicros }

    /// `outcome` is "201", "409 slot_full", "0 transport"…
    func record(outcome: String, latencyMicros: Int64, atMicros: Int64) {
        let value = UInt64(max(1, min(latencyMicros, Int64(Self.latencyMaxMicros))))
        let second = Int(max(0, atMicros - startMicros) / 1_000_000)
        lock.lock()
        defer { lock.unlock() }
        if byOutcome[outcome] == nil { byOutcome[outcome] = Self.histogram() }
        _ = byOutcome[outcome]!.record(value)
        _ = all.record(value)
        while seconds.count <= second { seconds.append(Second()) }
        seconds[second].completed[outcome, default: 0] += 1
        _ = seconds[second].latency.record(value)
    }

    func snapshot() -> (byOutcome: [String: Histogram<UInt64>], all: Histogram<UInt64>, seconds: [Second]) {
        lock.lock()
        defer { lock.unlock() }
        return (byOutcome, all, seconds)
    }

    /// For the progress line: the last complete second's rate and p99.
    func lastSecond(before nowMicros: Int64) -> (rate: Int, p99Micros: UInt64, total: [String: Int]) {
        lock.lock()
        defer { lock.unlock() }
        let index = Int((nowMicros - startMicros) / 1_000_000) - 1
        let total = byOutcome.mapValues { Int($0.totalCount) }
        guard index >= 0, index < seconds.count else { return (0, 0, total) }
        let second = seconds[index]
        return (second.completed.values.reduce(0, +), second.latency.valueAtPercentile(99), total)
    }
}
