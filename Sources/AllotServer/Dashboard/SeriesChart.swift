import Foundation

/// The dashboard's chart, drawn on the server as SVG (no script): lines
/// of per-second values over the last minutes. Each line has a colour and
/// a dash pattern of its own, so none is told apart by colour alone, and
/// the SVG carries a title and a description for screen readers. Pure.
enum SeriesChart {
    struct Line {
        let name: String
        let color: String
        /// SVG `stroke-dasharray`; nil: solid.
        let dash: String?
        let points: [(atMillis: Int64, value: Double)]
    }

    static let width = 640.0, height = 240.0
    private static let left = 52.0, right = 12.0, top = 12.0, bottom = 28.0

    /// `lines` from `nowMillis - spanMillis` to `nowMillis`, the y axis from 0
    /// to a round number at or above the largest value.
    static func svg(_ lines: [Line], spanMillis: Int64, nowMillis: Int64, title: String, description: String) -> String {
        let largest = lines.flatMap { $0.points.map(\.value) }.filter(\.isFinite).max() ?? 0
        let yMax = roundUp(max(largest, 1))
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ millis: Int64) -> Double { left + plotWidth * Double(millis - (nowMillis - spanMillis)) / Double(spanMillis) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (value.isFinite ? min(max(value, 0), yMax) : 0) / yMax) }
        var svg = ##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \##(format(width)) \##(format(height))" role="img" "##
            + #"aria-labelledby="chart-title chart-description" class="chart">"#
        svg += ##"<title id="chart-title">\##(escaped(title))</title><desc id="chart-description">\##(escaped(description))</desc>"##
        for fraction in [0.0, 0.5, 1.0] {
            let value = yMax * fraction
            svg += ##"<line x1="\##(format(left))" x2="\##(format(width - right))" y1="\##(format(y(value)))" y2="\##(format(y(value)))" stroke="#b1b4b6" stroke-width="1"/>"##
            svg += ##"<text x="\##(format(left - 6))" y="\##(format(y(value) + 4))" text-anchor="end" font-size="12" fill="#0b0c0c">\##(label(value))</text>"##
        }
        let minutes = spanMillis / 60_000
        svg += ##"<text x="\##(format(left))" y="\##(format(height - 8))" font-size="12" fill="#0b0c0c">−\##(minutes) min</text>"##
        svg += ##"<text x="\##(format(width - right))" y="\##(format(height - 8))" text-anchor="end" font-size="12" fill="#0b0c0c">now</text>"##
        for line in lines where !line.points.isEmpty {
            let points = line.points.filter { $0.atMillis >= nowMillis - spanMillis }
                .map { "\(format(x($0.atMillis))),\(format(y($0.value)))" }.joined(separator: " ")
            let dash = line.dash.map { ##" stroke-dasharray="\##(escaped($0))""## } ?? ""
            svg += ##"<polyline fill="none" stroke="\##(escaped(line.color))" stroke-width="2"\##(dash) points="\##(points)"><title>\##(escaped(line.name))</title></polyline>"##
        }
        return svg + "</svg>"
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`.
    static func roundUp(_ value: Double) -> Double {
        guard value.isFinite, value > 0 else { return 1 }
        var power = 1.0
        while power * 10 <= value { power *= 10 }
        while power > value { power /= 10 }
        for step in [1.0, 2.0, 5.0, 10.0] where step * power >= value { return step * power }
        return 10 * power
    }

    private static func label(_ value: Double) -> String { format(value) }

    /// Two decimals at most, no trailing zeros, no exponent.
    static func format(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
