import Synchronization

// Metrics the loops record on every request, kept per loop: each loop writes
// only its own cells, with a relaxed load and store (no lock, no locked
// instruction; the cells are made on their loop's thread, in glibc's arena
// for that thread, so two loops' cells rarely share a cache line), and
// `/metrics` sums every loop's cells when it renders. A shared Prometheus
// histogram would take its lock twice per reservation on every loop.

/// A count one loop writes and any thread reads.
final class LoopCount: Sendable {
    private let value = Atomic<Int>(0)

    /// Only the owning loop adds: a load and a store suffice, as no other
    /// thread writes.
    func add(_ amount: Int) { value.store(value.load(ordering: .relaxed) &+ amount, ordering: .relaxed) }

    var current: Int { value.load(ordering: .relaxed) }
}

/// A latency histogram one loop writes: a count per bucket (not
/// cumulative; `/metrics` makes them so), the count and the sum.
final class LoopHistogram: Sendable {
    /// Request and Redis latencies live between 0.1 ms and seconds.
    static let boundsMicros: [Int64] = [250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
                                        1_000_000, 5_000_000]
    fileprivate let buckets = LoopHistogram.boundsMicros.map { _ in LoopCount() }
    fileprivate let count = LoopCount()
    fileprivate let sumMicros = LoopCount()

    func record(micros: Int64) {
        let micros = max(0, micros)
        if let index = Self.boundsMicros.firstIndex(where: { micros <= $0 }) { buckets[index].add(1) }
        count.add(1)
        sumMicros.add(Int(clamping: micros))
    }
}

/// One metric family (a name, its labels' names) whose every series has a
/// cell on each loop that recorded it. A loop asks for its cell once per
/// label set (under the family's lock) and keeps it.
final class LoopFamily<Cell: AnyObject & Sendable>: Sendable {
    let name: String
    private let labelNames: [String]
    private let make: @Sendable () -> Cell
    /// Rendered label set → every loop's cell for it, in label-set order of first use.
    private let series = Mutex<[(labels: String, cells: [Cell])]>([])

    init(_ name: String, labels: [String], make: @escaping @Sendable () -> Cell) {
        self.name = name
        labelNames = labels
        self.make = make
    }

    /// A new cell for the calling loop, for these label values (in the
    /// order of the family's label names).
    func cell(_ values: [String]) -> Cell {
        precondition(values.count == labelNames.count)
        let labels = zip(labelNames, values).map { "\($0)=\"\(Self.escaped($1))\"" }.joined(separator: ",")
        let cell = make()
        series.withLock { series in
            if let index = series.firstIndex(where: { $0.labels == labels }) {
                series[index].cells.append(cell)
            } else {
                series.append((labels, [cell]))
            }
        }
        return cell
    }

    /// Each label set with every loop's cells, for rendering.
    fileprivate var snapshot: [(labels: String, cells: [Cell])] { series.withLock { $0 } }

    private static func escaped(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

// MARK: rendering (Prometheus text exposition, as swift-prometheus writes it)

extension LoopFamily where Cell == LoopCount {
    func render(into buffer: inout [UInt8]) {
        let series = snapshot
        guard !series.isEmpty else { return }
        buffer.append(contentsOf: "# TYPE \(name) counter\n".utf8)
        for (labels, cells) in series {
            buffer.append(contentsOf: "\(name){\(labels)} \(cells.reduce(0) { $0 + $1.current })\n".utf8)
        }
    }
}

extension LoopFamily where Cell == LoopHistogram {
    /// Counts per bucket (of `LoopHistogram.boundsMicros`, not cumulative)
    /// summed over every series whose labels contain one of `labelsParts`:
    /// the dashboard's latency percentiles.
    func bucketCounts(labelsContainingAnyOf labelsParts: [String]) -> [Int] {
        var counts = LoopHistogram.boundsMicros.map { _ in 0 }
        for (labels, cells) in snapshot where labelsParts.contains(where: labels.contains) {
            for index in counts.indices { counts[index] += cells.reduce(0) { $0 + $1.buckets[index].current } }
        }
        return counts
    }

    /// Seconds in plain decimals, to the microsecond (never `5e-05`).
    static func seconds(micros: Int) -> String {
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    func render(into buffer: inout [UInt8]) {
        let series = snapshot
        guard !series.isEmpty else { return }
        buffer.append(contentsOf: "# TYPE \(name) histogram\n".utf8)
        for (labels, cells) in series {
            var cumulative = 0
            for (index, bound) in LoopHistogram.boundsMicros.enumerated() {
                cumulative += cells.reduce(0) { $0 + $1.buckets[index].current }
                buffer.append(contentsOf: "\(name)_bucket{\(labels),le=\"\(Double(bound) / 1e6)\"} \(cumulative)\n".utf8)
            }
            // A loop may record between the reads: +Inf is never below a bucket.
            let count = max(cumulative, cells.reduce(0) { $0 + $1.count.current })
            let sumMicros = cells.reduce(0) { $0 + $1.sumMicros.current }
            buffer.append(contentsOf: "\(name)_bucket{\(labels),le=\"+Inf\"} \(count)\n".utf8)
            buffer.append(contentsOf: "\(name)_sum{\(labels)} \(Self.seconds(micros: sumMicros))\n".utf8)
            buffer.append(contentsOf: "\(name)_count{\(labels)} \(count)\n".utf8)
        }
    }
}
