import Foundation

extension SVGChart {
    /// A line series over a numeric x axis (seconds of video, training steps).
    public struct XYSeries {
        public let name: String
        public let points: [(x: Double, y: Double)]
        public init(_ name: String, _ points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    /// Lines over a numeric x axis from `xRange`, y from 0 to `yMax` (nil: the data's maximum).
    /// Points that are not finite break nothing: they are left out.
    public static func xyLines(title: String, subtitle: String? = nil, series: [XYSeries], xRange: ClosedRange<Double>,
                               xLabel xName: String, yLabel: String, yMax: Double? = nil,
                               xFormat: (Double) -> String = { String(format: "%g", $0) },
                               yFormat: (Double) -> String = { String(format: "%g", $0) }) -> String {
        var s = header(title, subtitle)
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let (axis, yTop) = yAxis(max: yMax ?? max(finite.map(\.y).max() ?? 1, 1e-12), label: yLabel, format: yFormat)
        s += axis
        let x0 = xRange.lowerBound, span = max(xRange.upperBound - x0, 1e-12)
        func px(_ x: Double) -> Double { left + plotW * (x - x0) / span }
        func py(_ y: Double) -> Double { top + plotH * (1 - y / yTop) }
        let step = niceStep(span, ticks: 6)
        var v = (x0 / step).rounded(.up) * step
        while v <= xRange.upperBound + step * 1e-9 {
            s += "<line x1=\"\(f(px(v)))\" y1=\"\(f(top + plotH))\" x2=\"\(f(px(v)))\" y2=\"\(f(top + plotH + 4))\" stroke=\"#333\"/>\n"
            s += "<text x=\"\(f(px(v)))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(esc(xFormat(v)))</text>\n"
            v += step
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(top + plotH + 40))\" text-anchor=\"middle\">\(esc(xName))</text>\n"
        for (k, se) in series.enumerated() {
            let c = palette[k % palette.count]
            let pts = se.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (px($0.x), py($0.y)) }
            if pts.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"><title>\(esc(se.name))</title></polyline>\n"
            }
            if pts.count <= 60 { for p in pts { s += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"3\" fill=\"\(c)\"/>\n" } }
        }
        s += legend(series.map(\.name)) { i in "<rect y=\"4\" width=\"14\" height=\"4\" fill=\"\(palette[i % palette.count])\"/>" }
        return s + "</svg>\n"
    }
}
