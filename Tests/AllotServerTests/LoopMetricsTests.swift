@testable import AllotServer
import Foundation
import Testing

/// Per-loop metric cells: each thread writes its own, `/metrics` sums them.
@Suite struct LoopMetricsTests {
    private func text(_ render: (inout [UInt8]) -> Void) -> String {
        var buffer: [UInt8] = []
        render(&buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    @Test func threadsRecordingAtOnceAreSummedExactly() async {
        let counts = LoopFamily<LoopCount>("t_total", labels: ["route"]) { LoopCount() }
        let latencies = LoopFamily<LoopHistogram>("t_seconds", labels: ["route"]) { LoopHistogram() }
        let threads = 4, perThread = 200_000
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<threads {
                group.addTask {
                    // Each "loop" takes its own cells, as LoopRequestMetrics does.
                    let count = counts.cell(["reserve"]), latency = latencies.cell(["reserve"])
                    for index in 0..<perThread {
                        count.add(1)
                        latency.record(micros: Int64(index % 3 == 0 ? 300 : 3_000))
                    }
                }
            }
        }
        let total = threads * perThread, fast = threads * ((perThread + 2) / 3)
        #expect(text(counts.render) == "# TYPE t_total counter\nt_total{route=\"reserve\"} \(total)\n")
        let histogram = text(latencies.render)
        #expect(histogram.contains("t_seconds_bucket{route=\"reserve\",le=\"0.00025\"} 0\n"))
        #expect(histogram.contains("t_seconds_bucket{route=\"reserve\",le=\"0.0005\"} \(fast)\n"))
        #expect(histogram.contains("t_seconds_bucket{route=\"reserve\",le=\"0.005\"} \(total)\n"))
        #expect(histogram.contains("t_seconds_bucket{route=\"reserve\",le=\"+Inf\"} \(total)\n"))
        #expect(histogram.contains("t_seconds_count{route=\"reserve\"} \(total)\n"))
        let sumMicros = fast * 300 + (total - fast) * 3_000
        #expect(histogram.contains("t_seconds_sum{route=\"reserve\"} \(sumMicros / 1_000_000).\(String(sumMicros % 1_000_000).leftPadded(6))\n"))
        #expect(LoopFamily<LoopHistogram>.seconds(micros: 50) == "0.000050")
        #expect(LoopFamily<LoopHistogram>.seconds(micros: 12_000_001) == "12.000001")
    }

    @Test func labelValuesAreEscapedAndSeriesKeptApart() {
        let counts = LoopFamily<LoopCount>("t_total", labels: ["route", "status"]) { LoopCount() }
        counts.cell(["a\"b\\c\nd", "201"]).add(2)
        counts.cell(["x", "201"]).add(1)
        counts.cell(["x", "201"]).add(4)
        #expect(text(counts.render) == """
            # TYPE t_total counter
            t_total{route="a\\"b\\\\c\\nd",status="201"} 2
            t_total{route="x",status="201"} 5

            """)
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
