import Foundation

/// Draws a run as SVG: latency by percentile (log scale, as HdrHistogram plots do) and throughput per
/// second.
public enum BenchPlot {
    public static func svg(_ report: BenchReport) -> String {
        let width = 1000.0, height = 420.0, panel = 440.0, top = 50.0, plotHeight = 300.0
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="20" y="24" font-size="15" font-weight="bold">learnstore bench: \(escape(report.configuration.mix.map { $0.0.rawValue }.joined(separator: "+"))), \(report.configuration.connections) connections, \(report.configuration.rate.map { "rate \(Int($0))/s" } ?? "pipeline \(report.configuration.pipeline)"): \(Int(report.throughput)) ops/s</text>

        """
        // Left: latency by percentile. x = log10(1 / (1 - p)).
        let series = report.operations.count > 1 ? [report.all!] + report.operations : report.operations
        let maxLatency = max(0.001, series.flatMap { $0.distribution.map { Double($0.1) / 1e6 } }.max() ?? 1)
        let xMax = 5.0
        func x(_ percentile: Double) -> Double { 60 + min(xMax, log10(1 / max(1e-5, 1 - percentile / 100))) / xMax * (panel - 60) }
        func y(_ ms: Double) -> Double { top + plotHeight - ms / maxLatency * plotHeight }
        out += axes(x0: 60, x1: panel, y0: top, y1: top + plotHeight, label: "latency (ms) by percentile")
        for (tick, name) in [(0.0, "0%"), (90, "90%"), (99, "99%"), (99.9, "99.9%"), (99.99, "99.99%"), (99.999, "99.999%")] {
            out += "<text x=\"\(x(tick))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(name)</text>\n"
        }
        for fraction in [0.0, 0.25, 0.5, 0.75, 1.0] {
            out += "<text x=\"55\" y=\"\(y(maxLatency * fraction) + 4)\" text-anchor=\"end\">\(String(format: "%.2f", maxLatency * fraction))</text>\n"
        }
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        for (index, operation) in series.enumerated() {
            let points = operation.distribution.map { "\(x($0.0)),\(y(Double($0.1) / 1e6))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            out += "<text x=\"70\" y=\"\(top + 14 + Double(index) * 15)\" fill=\"\(colors[index % colors.count])\">\(escape(operation.name))</text>\n"
        }
        // Right: throughput per second.
        let left = panel + 80, right = width - 20
        let maxRate = Double(max(1, report.perSecond.max() ?? 1))
        out += axes(x0: left, x1: right, y0: top, y1: top + plotHeight, label: "throughput (ops/s) per second")
        if !report.perSecond.isEmpty {
            let step = (right - left) / Double(max(1, report.perSecond.count - 1))
            let points = report.perSecond.enumerated().map { "\(left + Double($0.offset) * step),\(top + plotHeight - Double($0.element) / maxRate * plotHeight)" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            out += "<text x=\"\(right)\" y=\"\(top + plotHeight + 16)\" text-anchor=\"end\">\(report.perSecond.count) s</text>\n"
        }
        for fraction in [0.0, 0.5, 1.0] {
            out += "<text x=\"\(left - 5)\" y=\"\(top + plotHeight - fraction * plotHeight + 4)\" text-anchor=\"end\">\(Int(maxRate * fraction))</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    static func axes(x0: Double, x1: Double, y0: Double, y1: Double, label: String) -> String {
        """
        <line x1="\(x0)" y1="\(y1)" x2="\(x1)" y2="\(y1)" stroke="black"/>
        <line x1="\(x0)" y1="\(y0)" x2="\(x0)" y2="\(y1)" stroke="black"/>
        <text x="\((x0 + x1) / 2)" y="\(y1 + 36)" text-anchor="middle" font-weight="bold">\(label)</text>

        """
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
}
