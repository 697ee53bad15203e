import Foundation

/// Draws a run as SVG: latency by percentile (log scale, as HdrHistogram plots do) and throughput over
/// the run, each axis labelled with its unit.
public enum BenchPlot {
    public static func svg(_ report: BenchReport) -> String {
        let width = 1000.0, height = 420.0, panel = 440.0, top = 50.0, plotHeight = 300.0
        let bottom = top + plotHeight
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="20" y="24" font-size="15" font-weight="bold">learnstore bench: \(escape(report.configuration.mix.map { $0.0.rawValue }.joined(separator: "+"))), \(report.configuration.connections) connections, \(report.configuration.rate.map { "rate \(Int($0))/s" } ?? "pipeline \(report.configuration.pipeline)"): \(Int(report.throughput)) ops/s</text>

        """
        // Left: latency by percentile. x = log10(1 / (1 - p)).
        let latencyLeft = 80.0
        let series = report.operations.count > 1 ? [report.all!] + report.operations : report.operations
        let maxLatency = max(0.001, series.flatMap { $0.distribution.map { Double($0.1) / 1e6 } }.max() ?? 1)
        let xMax = 5.0
        func x(_ percentile: Double) -> Double { latencyLeft + min(xMax, log10(1 / max(1e-5, 1 - percentile / 100))) / xMax * (panel - latencyLeft) }
        func y(_ ms: Double) -> Double { bottom - ms / maxLatency * plotHeight }
        out += axes(x0: latencyLeft, x1: panel, y0: top, y1: bottom, xLabel: "percentile (log scale)", yLabel: "latency (ms)")
        for (tick, name) in [(0.0, "0%"), (90, "90%"), (99, "99%"), (99.9, "99.9%"), (99.99, "99.99%"), (99.999, "99.999%")] {
            out += "<text x=\"\(x(tick))\" y=\"\(bottom + 16)\" text-anchor=\"middle\">\(name)</text>\n"
        }
        for fraction in [0.0, 0.25, 0.5, 0.75, 1.0] {
            out += "<text x=\"\(latencyLeft - 5)\" y=\"\(y(maxLatency * fraction) + 4)\" text-anchor=\"end\">\(String(format: "%.2f", maxLatency * fraction))</text>\n"
        }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        for (index, operation) in series.enumerated() {
            let points = operation.distribution.map { "\(x($0.0)),\(y(Double($0.1) / 1e6))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            out += "<text x=\"\(latencyLeft + 10)\" y=\"\(top + 14 + Double(index) * 15)\" fill=\"\(colors[index % colors.count])\">\(escape(operation.name))</text>\n"
        }
        // Right: throughput over the run, one step per interval at the rate over its actual length.
        let left = panel + 100, right = width - 20
        let timeline = ThroughputTimeline(counts: report.perSecond, runSeconds: report.seconds > 0 ? report.seconds : nil)
        let maxRate = max(1, timeline.maxOpsPerSecond)
        let runSeconds = max(timeline.seconds, 1e-9)
        func t(_ seconds: Double) -> Double { left + seconds / runSeconds * (right - left) }
        func r(_ rate: Double) -> Double { bottom - rate / maxRate * plotHeight }
        out += axes(x0: left, x1: right, y0: top, y1: bottom, xLabel: "time (s)", yLabel: "throughput (ops/s)")
        if !timeline.intervals.isEmpty {
            let points = timeline.intervals.map { "\(t($0.start)),\(r($0.opsPerSecond)) \(t($0.end)),\(r($0.opsPerSecond))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for tick in timeTicks(upTo: timeline.seconds) {
                out += "<text x=\"\(t(tick))\" y=\"\(bottom + 16)\" text-anchor=\"middle\">\(String(format: "%g", tick))</text>\n"
            }
        }
        for fraction in [0.0, 0.5, 1.0] {
            out += "<text x=\"\(left - 5)\" y=\"\(r(maxRate * fraction) + 4)\" text-anchor=\"end\">\(Int(maxRate * fraction))</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    /// Round tick values from 0 to at most `seconds`, at most about six of them.
    static func timeTicks(upTo seconds: Double) -> [Double] {
        guard seconds > 0 else { return [0] }
        let step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].first { seconds / $0 <= 6 } ?? 3600
        return (0...Int((seconds / step).rounded(.down))).map { Double($0) * step }
    }

    static func axes(x0: Double, x1: Double, y0: Double, y1: Double, xLabel: String, yLabel: String) -> String {
        let yLabelX = x0 - 65, yLabelY = (y0 + y1) / 2
        return """
        <line x1="\(x0)" y1="\(y1)" x2="\(x1)" y2="\(y1)" stroke="black"/>
        <line x1="\(x0)" y1="\(y0)" x2="\(x0)" y2="\(y1)" stroke="black"/>
        <text x="\((x0 + x1) / 2)" y="\(y1 + 36)" text-anchor="middle" font-weight="bold">\(escape(xLabel))</text>
        <text x="\(yLabelX)" y="\(yLabelY)" transform="rotate(-90 \(yLabelX) \(yLabelY))" text-anchor="middle" font-weight="bold">\(escape(yLabel))</text>

        """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
