import Foundation

/// Line and bar charts as inline SVG, for the evaluation report: no script, no network, nothing
/// to install to look at them.
struct SVGChart {
    struct Series {
        var name: String
        var color: String
        var points: [[Double]]
        var dashed = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var x: ClosedRange<Double>
    var y: ClosedRange<Double>
    var width = 420.0
    var height = 320.0
    /// The chance line from (0, 0) to (1, 1) (ROC curves).
    var diagonal = false
    /// The legend in the lower right corner instead of the upper right (where ROC curves run).
    var legendBelow = false
    /// How x ticks are written (default: two decimals).
    var xTick: (Double) -> String = { String(format: "%.2f", $0) }

    private let left = 56.0
    private let right = 12.0
    private let top = 28.0
    private let bottom = 44.0

    init(title: String, xLabel: String, yLabel: String, x: ClosedRange<Double>, y: ClosedRange<Double>) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.x = x.lowerBound < x.upperBound ? x : x.lowerBound...(x.lowerBound + 1)
        self.y = y.lowerBound < y.upperBound ? y : y.lowerBound...(y.lowerBound + 1)
    }

    private func px(_ v: Double) -> Double {
        left + (v - x.lowerBound) / (x.upperBound - x.lowerBound) * (width - left - right)
    }

    private func py(_ v: Double) -> Double {
        height - bottom - (v - y.lowerBound) / (y.upperBound - y.lowerBound) * (height - top - bottom)
    }

    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// The frame: title, axes, ticks, labels and a legend for `legend`.
    private func frame(_ legend: [(String, String)], body: String) -> String {
        var s =
            #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(width))" height="\#(Int(height))" class="chart">"#
        s += #"<text x="\#(Self.f(width / 2))" y="16" text-anchor="middle" class="title">\#(HTML.escape(title))</text>"#
        s +=
            #"<rect x="\#(Self.f(left))" y="\#(Self.f(top))" width="\#(Self.f(width - left - right))" height="\#(Self.f(height - top - bottom))" fill="none" stroke="gray"/>"#
        for k in 0...4 {
            let xv = x.lowerBound + Double(k) / 4 * (x.upperBound - x.lowerBound)
            let yv = y.lowerBound + Double(k) / 4 * (y.upperBound - y.lowerBound)
            s +=
                #"<text x="\#(Self.f(px(xv)))" y="\#(Self.f(height - bottom + 14))" text-anchor="middle">\#(HTML.escape(xTick(xv)))</text>"#
            s +=
                #"<text x="\#(Self.f(left - 4))" y="\#(Self.f(py(yv) + 4))" text-anchor="end">\#(String(format: "%.3g", yv))</text>"#
            if k > 0 && k < 4 {
                s +=
                    #"<line x1="\#(Self.f(left))" x2="\#(Self.f(width - right))" y1="\#(Self.f(py(yv)))" y2="\#(Self.f(py(yv)))" stroke="whitesmoke"/>"#
            }
        }
        s +=
            #"<text x="\#(Self.f((left + width - right) / 2))" y="\#(Self.f(height - 6))" text-anchor="middle">\#(HTML.escape(xLabel))</text>"#
        s +=
            #"<text transform="translate(12,\#(Self.f((top + height - bottom) / 2))) rotate(-90)" text-anchor="middle">\#(HTML.escape(yLabel))</text>"#
        s += body
        for (k, (name, color)) in legend.enumerated() {
            let ly = legendBelow ? height - bottom - 8 - Double(legend.count - 1 - k) * 16 : top + 14 + Double(k) * 16
            s +=
                #"<rect x="\#(Self.f(width - right - 150))" y="\#(Self.f(ly - 9))" width="10" height="10" fill="\#(color)"/>"#
            s += #"<text x="\#(Self.f(width - right - 136))" y="\#(Self.f(ly))">\#(HTML.escape(name))</text>"#
        }
        return s + "</svg>"
    }

    /// Polylines, one per series.
    func lines(_ series: [Series]) -> String {
        var body = ""
        if diagonal {
            body +=
                #"<line x1="\#(Self.f(px(0)))" y1="\#(Self.f(py(0)))" x2="\#(Self.f(px(1)))" y2="\#(Self.f(py(1)))" stroke="silver" stroke-dasharray="4 4"/>"#
        }
        for s in series where !s.points.isEmpty {
            let points = s.points.map { "\(Self.f(px($0[0]))),\(Self.f(py($0[1])))" }.joined(separator: " ")
            body +=
                #"<polyline class="series" data-name="\#(HTML.escape(s.name))" points="\#(points)" fill="none" stroke="\#(s.color)" stroke-width="2.5"\#(s.dashed ? #" stroke-dasharray="6 3""# : "")/>"#
        }
        return frame(series.map { ($0.name, $0.color) }, body: body)
    }

    /// Bars over equal bins of x: each series' values side by side in a bin.
    func bars(_ series: [(name: String, color: String, values: [Double])]) -> String {
        var body = ""
        let bins = series.map(\.values.count).max() ?? 0
        guard bins > 0 else { return frame([], body: "") }
        let binWidth = (px(x.upperBound) - px(x.lowerBound)) / Double(bins)
        let barWidth = binWidth / Double(series.count)
        for (k, s) in series.enumerated() {
            for (b, v) in s.values.enumerated() where v > 0 {
                let x0 = px(x.lowerBound) + Double(b) * binWidth + Double(k) * barWidth
                let y0 = py(min(v, y.upperBound))
                body +=
                    #"<rect x="\#(Self.f(x0))" y="\#(Self.f(y0))" width="\#(Self.f(max(barWidth - 0.5, 0.5)))" height="\#(Self.f(py(y.lowerBound) - y0))" fill="\#(s.color)"/>"#
            }
        }
        return frame(series.map { ($0.name, $0.color) }, body: body)
    }
}

/// HTML text escaping.
enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
