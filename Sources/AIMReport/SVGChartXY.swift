import Foundation

extension SVGChart {
    /// A line over numeric x values (a training curve: value against step).
    public struct XYSeries {
        public let name: String
        public let points: [(x: Double, y: Double)]
        public init(_ name: String, _ points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    /// Line series on numeric axes from 0: one `<polyline>` per series that has points (with
    /// markers when there are few, so a single point still shows), a legend naming every series.
    /// `yMax` fixes the top of the y axis (probabilities: 1); nil takes the data's maximum.
    public static func xyLines(title: String, subtitle: String? = nil, series: [XYSeries], xLabel xName: String, yLabel: String,
                               yMax fixedYMax: Double? = nil, format: (Double) -> String) -> String {
        var s = header(title, subtitle)
        let finite = series.map { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        let yMax = fixedYMax ?? finite.flatMap { $0.map(\.y) }.max() ?? 1
        let (axis, top) = yAxis(max: yMax, label: yLabel, format: format)
        s += axis
        let xMax = max(1, finite.flatMap { $0.map(\.x) }.max() ?? 1)
        let xStep = niceStep(xMax, ticks: 8), xTop = max(xStep, ceil(xMax / xStep) * xStep)
        func px(_ x: Double) -> Double { left + plotW * x / xTop }
        func py(_ y: Double) -> Double { Self.top + plotH * (1 - y / top) }
        var x = 0.0
        while x <= xTop + xStep * 1e-9 {
            s += "<line x1=\"\(f(px(x)))\" y1=\"\(f(Self.top + plotH))\" x2=\"\(f(px(x)))\" y2=\"\(f(Self.top + plotH + 4))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(f(px(x)))\" y=\"\(f(Self.top + plotH + 18))\" text-anchor=\"middle\">\(esc(x == x.rounded() ? String(Int(x)) : String(format: "%g", x)))</text>\n"
            x += xStep
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(Self.top + plotH + 40))\" text-anchor=\"middle\">\(esc(xName))</text>\n"
        for (k, pts) in finite.enumerated() where !pts.isEmpty {
            let c = palette[k % palette.count]
            let coords = pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            // Each later series a little thinner, so equal curves (one schedule, two runs) all show.
            let width = max(1.2, 3.5 - 0.8 * Double(k))
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"\(f(width))\" stroke-linejoin=\"round\" points=\"\(coords)\"><title>\(esc(series[k].name))</title></polyline>\n"
            if pts.count <= 40 {
                for p in pts { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(c)\"/>\n" }
            }
        }
        // 34 characters fit right of the plot, the note included (a long name with it ran past the edge).
        let names = series.indices.map { k -> String in
            let note = finite[k].isEmpty ? " (no data)" : "", room = 34 - note.count
            let n = series[k].name.count > room ? "…" + String(series[k].name.suffix(room - 1)) : series[k].name
            return n + note
        }
        s += legend(names) { i in "<rect y=\"4\" width=\"14\" height=\"4\" fill=\"\(palette[i % palette.count])\"/>" }
        return s + "</svg>\n"
    }
}
