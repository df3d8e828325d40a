import Foundation
import Histogram

/// Everything a run measured and checked, as written to `report.json`.
struct RunReport: Codable {
    struct Latency: Codable {
        let count: UInt64
        let p50Millis, p90Millis, p99Millis, p999Millis, maxMillis: Double
    }

    struct SecondRow: Codable {
        let second: Int
        let completed: Int
        let byOutcome: [String: Int]
        let p50Millis, p90Millis, p99Millis, maxMillis: Double
    }

    let scenario: String
    let startedAt: String
    let machine: String
    let parameters: [String: String]
    let durationSeconds: Double
    let requests: UInt64
    let throughputPerSecond: Double
    let outcomes: [String: UInt64]
    let latency: [String: Latency]
    let seconds: [SecondRow]
    let persistLag: Latency?
    let catchUpMillis: Int?
    let counters: [String: Int]
    let checks: [Check]
    var targets: [Check]
    /// The harness's own CPU (user + system, /proc/self/stat) over the load
    /// phase, per request: how much of the machine the load generator took.
    var harnessCPUMicrosPerRequest: Double?
    var passed: Bool { checks.allSatisfy(\.passed) }

    /// report.json and report.html into `directory`.
    func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(self).write(to: URL(fileURLWithPath: directory + "/report.json"))
        try Data(HTMLReport.render(self).utf8).write(to: URL(fileURLWithPath: directory + "/report.html"))
    }

    /// Each outcome's latency, and all outcomes together under "all".
    static func latencies(byOutcome: [String: Histogram<UInt64>], all: Histogram<UInt64>) -> [String: Latency] {
        var latencies = byOutcome.mapValues { latency($0) }
        latencies["all"] = latency(all)
        return latencies
    }

    static func latency(_ histogram: Histogram<UInt64>, unitMicros: Bool = true) -> Latency {
        let scale = unitMicros ? 1000.0 : 1.0
        return Latency(count: histogram.totalCount, p50Millis: Double(histogram.valueAtPercentile(50)) / scale,
                       p90Millis: Double(histogram.valueAtPercentile(90)) / scale,
                       p99Millis: Double(histogram.valueAtPercentile(99)) / scale,
                       p999Millis: Double(histogram.valueAtPercentile(99.9)) / scale, maxMillis: Double(histogram.max) / scale)
    }

    static func rows(_ seconds: [Recorder.Second]) -> [SecondRow] {
        seconds.enumerated().map { index, second in
            SecondRow(second: index, completed: second.completed.values.reduce(0, +), byOutcome: second.completed,
                      p50Millis: Double(second.latency.valueAtPercentile(50)) / 1000,
                      p90Millis: Double(second.latency.valueAtPercentile(90)) / 1000,
                      p99Millis: Double(second.latency.valueAtPercentile(99)) / 1000,
                      maxMillis: Double(second.latency.max) / 1000)
        }
    }

    /// The table printed at the end of a run.
    var summary: String {
        var lines = ["", "allot-load \(scenario): \(requests) requests in \(String(format: "%.1f", durationSeconds)) s, "
                     + "\(Int(throughputPerSecond))/s (\(machine))", ""]
        lines.append(pad("outcome", 30) + pad("count", 10) + pad("p50 ms", 9) + pad("p90 ms", 9) + pad("p99 ms", 9)
                     + pad("p99.9 ms", 10) + "max ms")
        for (outcome, count) in outcomes.sorted(by: { $0.value > $1.value }) {
            guard let l = latency[outcome] else { continue }
            lines.append(pad(outcome, 30) + pad(String(count), 10) + pad(f(l.p50Millis), 9) + pad(f(l.p90Millis), 9)
                         + pad(f(l.p99Millis), 9) + pad(f(l.p999Millis), 10) + f(l.maxMillis))
        }
        if let all = latency["all"] {
            lines.append(pad("all", 30) + pad(String(all.count), 10) + pad(f(all.p50Millis), 9) + pad(f(all.p90Millis), 9)
                         + pad(f(all.p99Millis), 9) + pad(f(all.p999Millis), 10) + f(all.maxMillis))
        }
        if let cpu = harnessCPUMicrosPerRequest {
            lines.append("")
            lines.append("harness CPU: \(String(format: "%.1f", cpu)) µs per request (user + system, /proc/self/stat, load phase)")
        }
        if let lag = persistLag {
            lines.append("")
            lines.append("persistence lag (sampled every 250 ms): p50 \(f(lag.p50Millis)) ms, p99 \(f(lag.p99Millis)) ms, max \(f(lag.maxMillis)) ms"
                         + (catchUpMillis.map { "; caught up \($0) ms after the run" } ?? ""))
        }
        if !counters.isEmpty {
            lines.append("")
            for (name, count) in counters.sorted(by: { $0.key < $1.key }) { lines.append("  \(name): \(count)") }
        }
        lines.append("")
        for check in checks { lines.append("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
        for target in targets { lines.append("\(target.passed ? "met " : "miss") target \(target.name): \(target.detail)") }
        lines.append("")
        lines.append(passed ? "every invariant held" : "INVARIANT VIOLATED: see FAIL above")
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private func f(_ value: Double) -> String { String(format: "%.2f", value) }
}

/// A self-contained HTML page: the summary, and SVG charts drawn here
/// (no script, nothing fetched).
enum HTMLReport {
    static func render(_ report: RunReport) -> String {
        let rows = report.seconds
        let throughput = chart(title: "Completed requests per second", unit: "req/s",
                               series: [("completed", "#2b6cb0", rows.map { Double($0.completed) })])
        let latency = chart(title: "Latency per second (ms, from intended send time)", unit: "ms", series: [
            ("p50", "#38a169", rows.map(\.p50Millis)), ("p90", "#d69e2e", rows.map(\.p90Millis)),
            ("p99", "#e53e3e", rows.map(\.p99Millis)), ("max", "#718096", rows.map(\.maxMillis)),
        ])
        let outcomeNames = report.outcomes.sorted { $0.value > $1.value }.map(\.key)
        let colours = ["#2b6cb0", "#e53e3e", "#d69e2e", "#38a169", "#805ad5", "#dd6b20", "#319795", "#718096"]
        let outcomesOverTime = chart(title: "Outcomes per second", unit: "req/s", series: outcomeNames.prefix(8).enumerated().map {
            index, name in (name, colours[index % colours.count], rows.map { Double($0.byOutcome[name] ?? 0) })
        })
        let bars = outcomeBars(report.outcomes, colours: colours)
        let checks = (report.checks.map { ($0, "invariant") } + report.targets.map { ($0, "target") }).map { check, kind in
            "<tr class=\"\(check.passed ? "ok" : "fail")\"><td>\(check.passed ? "✔" : "✘")</td><td>\(kind)</td><td>\(escape(check.name))</td><td>\(escape(check.detail))</td></tr>"
        }.joined(separator: "\n")
        let parameters = report.parameters.sorted { $0.key < $1.key }
            .map { "<tr><td>\(escape($0.key))</td><td>\(escape($0.value))</td></tr>" }.joined()
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>allot-load \(escape(report.scenario)) report</title>
            <style>
            body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #1a202c; }
            h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
            table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #e2e8f0; }
            tr.ok td:first-child { color: #2f855a; } tr.fail td:first-child, tr.fail { color: #c53030; font-weight: 600; }
            pre { background: #f7fafc; padding: 1em; overflow-x: auto; } svg { display: block; margin: 1em 0; }
            </style></head><body>
            <h1>allot-load: \(escape(report.scenario)) — \(report.passed ? "every invariant held" : "INVARIANT VIOLATED")</h1>
            <p>\(report.requests) requests in \(String(format: "%.1f", report.durationSeconds)) s (\(Int(report.throughputPerSecond))/s), started \(escape(report.startedAt)) on \(escape(report.machine)).</p>
            <h2>Checks</h2><table>\(checks)</table>
            <h2>Throughput</h2>\(throughput)
            <h2>Latency</h2>\(latency)
            <h2>Outcomes</h2>\(bars)\(outcomesOverTime)
            <h2>Summary</h2><pre>\(escape(report.summary))</pre>
            <h2>Parameters</h2><table>\(parameters)</table>
            </body></html>
            """
    }

    /// A line chart of one or more series over the run's seconds.
    static func chart(title: String, unit: String, series: [(String, String, [Double])]) -> String {
        let width = 960.0, height = 260.0, left = 60.0, bottom = 34.0, top = 24.0, right = 190.0
        let count = max(2, series.map(\.2.count).max() ?? 2)
        let peak = max(1e-9, series.flatMap(\.2).max() ?? 1)
        let ceiling = niceCeiling(peak)
        func x(_ index: Int) -> Double { left + (width - left - right) * Double(index) / Double(count - 1) }
        func y(_ value: Double) -> Double { top + (height - top - bottom) * (1 - value / ceiling) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<text x=\"\(left)\" y=\"14\" font-size=\"13\" font-weight=\"600\">\(escape(title))</text>"
        for step in 0...4 {
            let value = ceiling * Double(step) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#e2e8f0\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(value) + 4)\" font-size=\"11\" text-anchor=\"end\">\(label(value))</text>"
        }
        let tick = max(1, count / 10)
        for index in stride(from: 0, to: count, by: tick) {
            svg += "<text x=\"\(x(index))\" y=\"\(height - 10)\" font-size=\"11\" text-anchor=\"middle\">\(index)s</text>"
        }
        for (offset, (name, colour, values)) in series.enumerated() where !values.isEmpty {
            let points = values.enumerated().map { "\(String(format: "%.1f", x($0.offset))),\(String(format: "%.1f", y($0.element)))" }
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\" points=\"\(points.joined(separator: " "))\"/>"
            let legendY = top + 14 * Double(offset)
            svg += "<rect x=\"\(width - right + 10)\" y=\"\(legendY)\" width=\"10\" height=\"10\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(width - right + 24)\" y=\"\(legendY + 9)\" font-size=\"11\">\(escape(name))</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 1)\" font-size=\"10\" fill=\"#718096\">\(escape(unit)) by second of the run</text>"
        return svg + "</svg>"
    }

    static func outcomeBars(_ outcomes: [String: UInt64], colours: [String]) -> String {
        let sorted = outcomes.sorted { $0.value > $1.value }
        let peak = Double(sorted.first?.value ?? 1)
        let rowHeight = 22.0, width = 900.0, labelWidth = 220.0
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(rowHeight * Double(sorted.count) + 10))\" role=\"img\" aria-label=\"outcomes\">"
        for (index, (name, count)) in sorted.enumerated() {
            let barWidth = max(1, (width - labelWidth - 120) * Double(count) / peak)
            let y = Double(index) * rowHeight + 4
            svg += "<text x=\"0\" y=\"\(y + 14)\" font-size=\"12\">\(escape(name))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(barWidth)\" height=\"16\" fill=\"\(colours[index % colours.count])\"/>"
            svg += "<text x=\"\(labelWidth + barWidth + 6)\" y=\"\(y + 13)\" font-size=\"12\">\(count)</text>"
        }
        return svg + "</svg>"
    }

    static func niceCeiling(_ value: Double) -> Double {
        let magnitude = pow(10, floor(log10(value)))
        for step in [1.0, 2, 2.5, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func label(_ value: Double) -> String {
        value >= 1000 ? String(format: "%.0fk", value / 1000).replacingOccurrences(of: ".0k", with: "k")
            : value >= 10 ? String(format: "%.0f", value) : String(format: "%.2g", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// This process's CPU time so far (user + system), from /proc/self/stat.
enum ProcessCPU {
    static func micros() -> Int64 {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return 0 }
        return (user + system) * 1_000_000 / Int64(sysconf(Int32(_SC_CLK_TCK)))
    }
}
