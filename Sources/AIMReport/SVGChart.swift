import Foundation

/// Small self-contained SVG charts (no scripts, no external fonts): stacked bars, a scatter
/// plot and line series. Every chart is a complete file that opens in a browser.
public enum SVGChart {
    public struct Series {
        public let name: String
        public let values: [Double]
        public init(_ name: String, _ values: [Double]) { self.name = name; self.values = values }
    }
    public struct Point {
        public let x: Double, y: Double, label: String, series: Int, hollow: Bool
        public init(x: Double, y: Double, label: String, series: Int, hollow: Bool = false) {
            self.x = x; self.y = y; self.label = label; self.series = series; self.hollow = hollow
        }
    }

    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac"]
    static let width = 880.0, height = 460.0
    static let left = 80.0, right = 270.0, top = 50.0, bottom = 120.0
    static var plotW: Double { width - left - right }
    static var plotH: Double { height - top - bottom }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A "nice" step (1, 2, 5 × 10^k) giving about `ticks` intervals up to `maxValue`. No 2.5:
    /// its ticks need one digit more than the step's own (12.5 % under a `%.0f%%` axis read 12 %).
    static func niceStep(_ maxValue: Double, ticks: Int = 5) -> Double {
        guard maxValue > 0, maxValue.isFinite else { return 1 }
        let raw = maxValue / Double(ticks), mag = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 5, 10] where m * mag >= raw { return m * mag }
        return 10 * mag
    }

    /// The nice step after `step` (1 → 2 → 5 → 10 × 10^k).
    static func coarserStep(_ step: Double) -> Double {
        let mag = pow(10, floor(log10(step) + 1e-9)), m = (step / mag).rounded()
        return (m < 2 ? 2 : m < 5 ? 5 : 10) * mag
    }

    static func header(_ title: String, _ subtitle: String?) -> String {
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(esc(title))</text>\n"
        if let subtitle { s += "<text x=\"\(f(width / 2))\" y=\"40\" text-anchor=\"middle\" fill=\"#555\">\(esc(subtitle))</text>\n" }
        return s
    }

    static func yAxis(max yMax: Double, label: String, format: (Double) -> String) -> (String, Double) {
        // A step finer than `format` shows would give two ticks one label (a loss near 0.01 under
        // `%.2f`: 0.00 0.00 0.01 0.01): coarser steps until every tick's label differs.
        var step = niceStep(yMax)
        func ticks(_ step: Double) -> [Double] {
            let top = max(step, ceil(yMax / step) * step)
            return (0...Int((top / step).rounded())).map { Double($0) * step }
        }
        for _ in 0..<12 where Set(ticks(step).map(format)).count < ticks(step).count { step = coarserStep(step) }
        let top = max(step, ceil(yMax / step) * step)
        var s = ""
        var v = 0.0
        while v <= top + step * 1e-9 {
            let y = Self.top + plotH * (1 - v / top)
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(esc(format(v)))</text>\n"
            v += step
        }
        s += "<line x1=\"\(f(left))\" y1=\"\(f(Self.top))\" x2=\"\(f(left))\" y2=\"\(f(Self.top + plotH))\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(Self.top + plotH))\" x2=\"\(f(left + plotW))\" y2=\"\(f(Self.top + plotH))\" stroke=\"#333\"/>\n"
        s += "<text transform=\"translate(18 \(f(Self.top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(label))</text>\n"
        return (s, top)
    }

    static func legend(_ names: [String], marker: (Int) -> String) -> String {
        var s = ""
        for (i, n) in names.enumerated() {
            let y = top + 8 + Double(i) * 20
            s += "<g transform=\"translate(\(f(left + plotW + 20)) \(f(y)))\">\(marker(i))"
            s += "<text x=\"18\" y=\"10\">\(esc(n))</text></g>\n"
        }
        return s
    }

    /// Category label under the x axis, rotated so long config names fit.
    static func xLabel(_ text: String, at x: Double) -> String {
        // The middle goes: a sweep's rows differ at the end ("… [model.num_frames=16]").
        let short = text.count > 34 ? String(text.prefix(14)) + "…" + String(text.suffix(19)) : text
        return "<text transform=\"translate(\(f(x)) \(f(top + plotH + 14))) rotate(25)\" text-anchor=\"start\">\(esc(short))</text>\n"
    }

    /// One bar per category, each stacked from `series` (all values ≥ 0); `totals` adds a
    /// marker line per bar (e.g. measured RSS growth over the accounted stack).
    public static func stackedBars(title: String, subtitle: String? = nil, categories: [String], series: [Series],
                                   yLabel: String, format: (Double) -> String,
                                   markers: (name: String, values: [Double])? = nil) -> String {
        let sums = categories.indices.map { i in series.reduce(0) { $0 + max(0, $1.values[i]) } }
        let yMax = max(sums.max() ?? 1, markers?.values.max() ?? 0)
        var s = header(title, subtitle)
        let (axis, top) = yAxis(max: yMax, label: yLabel, format: format)
        s += axis
        let slot = plotW / Double(max(1, categories.count)), barW = min(90, slot * 0.6)
        for (i, c) in categories.enumerated() {
            let x = left + slot * (Double(i) + 0.5)
            var acc = 0.0
            for (k, se) in series.enumerated() {
                let v = max(0, se.values[i])
                guard v > 0 else { continue }
                let y0 = Self.top + plotH * (1 - (acc + v) / top), h = plotH * v / top
                s += "<rect x=\"\(f(x - barW / 2))\" y=\"\(f(y0))\" width=\"\(f(barW))\" height=\"\(f(h))\" fill=\"\(palette[k % palette.count])\"><title>\(esc(c)): \(esc(se.name)) \(esc(format(v)))</title></rect>\n"
                acc += v
            }
            s += "<text x=\"\(f(x))\" y=\"\(f(Self.top + plotH * (1 - acc / top) - 4))\" text-anchor=\"middle\" font-size=\"11\">\(esc(format(acc)))</text>\n"
            if let markers {
                let y = Self.top + plotH * (1 - markers.values[i] / top)
                s += "<line x1=\"\(f(x - barW / 2 - 6))\" y1=\"\(f(y))\" x2=\"\(f(x + barW / 2 + 6))\" y2=\"\(f(y))\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"5 3\"><title>\(esc(markers.name)) \(esc(format(markers.values[i])))</title></line>\n"
            }
            s += xLabel(c, at: x - barW / 2)
        }
        var names = series.map(\.name)
        if let markers { names.append(markers.name) }
        s += legend(names) { i in
            i < series.count ? "<rect width=\"12\" height=\"12\" fill=\"\(palette[i % palette.count])\"/>"
                : "<line x1=\"0\" y1=\"6\" x2=\"14\" y2=\"6\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>"
        }
        return s + "</svg>\n"
    }

    /// Points with labels; x on a log scale when `logX`. Series names index `seriesNames`.
    public static func scatter(title: String, subtitle: String? = nil, points: [Point], seriesNames: [String],
                               xLabel xName: String, yLabel: String, logX: Bool) -> String {
        var s = header(title, subtitle)
        let ys = points.map(\.y), yLo = floor(((ys.min() ?? 0) - 5) / 10) * 10, yHi = ceil(((ys.max() ?? 100) + 5) / 10) * 10
        let xs = points.map(\.x).filter { !logX || $0 > 0 }
        let xLo = logX ? pow(10, floor(log10(xs.min() ?? 0.1))) : 0
        let xHi = logX ? pow(10, ceil(log10(xs.max() ?? 100))) : niceStep(xs.max() ?? 1) * 6
        func px(_ x: Double) -> Double {
            logX ? left + plotW * (log10(max(x, xLo)) - log10(xLo)) / (log10(xHi) - log10(xLo)) : left + plotW * x / xHi
        }
        func py(_ y: Double) -> Double { top + plotH * (1 - (y - yLo) / max(1e-9, yHi - yLo)) }
        var v = yLo
        while v <= yHi + 1e-9 {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(v)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(v)))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(v) + 4))\" text-anchor=\"end\">\(Int(v))</text>\n"
            v += 10
        }
        if logX {
            var d = xLo
            while d <= xHi * 1.0001 {
                s += "<line x1=\"\(f(px(d)))\" y1=\"\(f(top))\" x2=\"\(f(px(d)))\" y2=\"\(f(top + plotH))\" stroke=\"#e5e5e5\"/>\n"
                s += "<text x=\"\(f(px(d)))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(d >= 1 ? String(Int(d)) : String(format: "%g", d))</text>\n"
                d *= 10
            }
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(top + plotH + 40))\" text-anchor=\"middle\">\(esc(xName))</text>\n"
        s += "<text transform=\"translate(18 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>\n"
        // Context (hollow) points first, measured (filled) on top; labels placed greedily and a
        // hollow point's label dropped when it would overlap one already placed.
        var boxes: [(Double, Double, Double)] = []   // x, baseline y, width
        func overlaps(_ x: Double, _ y: Double, _ w: Double) -> Bool {
            boxes.contains { abs($0.1 - y) < 11 && x < $0.0 + $0.2 && $0.0 < x + w }
        }
        for p in points.sorted(by: { $0.hollow && !$1.hollow }) {
            let c = palette[p.series % palette.count], x = px(p.x), y = py(p.y)
            s += p.hollow ? "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"5\" fill=\"white\" stroke=\"\(c)\" stroke-width=\"2\"><title>\(esc(p.label))</title></circle>\n"
                : "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"6\" fill=\"\(c)\"><title>\(esc(p.label))</title></circle>\n"
        }
        for p in points.sorted(by: { !$0.hollow && $1.hollow }) {
            let x = px(p.x) + 8, w = 5.6 * Double(p.label.count)
            guard let y = [py(p.y) - 6, py(p.y) + 14, py(p.y) - 18].first(where: { !overlaps(x, $0, w) }) ?? (p.hollow ? nil : py(p.y) - 6) else { continue }
            boxes.append((x, y, w))
            s += "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"10\" fill=\"\(p.hollow ? "#777" : "#000")\"\(p.hollow ? "" : " font-weight=\"bold\"")>\(esc(p.label))</text>\n"
        }
        s += legend(seriesNames) { i in "<circle cx=\"6\" cy=\"6\" r=\"6\" fill=\"\(palette[i % palette.count])\"/>" }
        return s + "</svg>\n"
    }

    /// Line series over categorical x values (e.g. a swept variable), all on one y axis.
    public static func lines(title: String, subtitle: String? = nil, xValues: [String], series: [Series],
                             xLabel xName: String, yLabel: String, format: (Double) -> String) -> String {
        var s = header(title, subtitle)
        let yMax = series.flatMap(\.values).filter(\.isFinite).max() ?? 1
        let (axis, top) = yAxis(max: yMax, label: yLabel, format: format)
        s += axis
        let slot = plotW / Double(max(1, xValues.count))
        func px(_ i: Int) -> Double { left + slot * (Double(i) + 0.5) }
        for (i, x) in xValues.enumerated() {
            s += "<text x=\"\(f(px(i)))\" y=\"\(f(Self.top + plotH + 16))\" text-anchor=\"middle\">\(esc(x))</text>\n"
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(Self.top + plotH + 40))\" text-anchor=\"middle\">\(esc(xName))</text>\n"
        for (k, se) in series.enumerated() {
            let c = palette[k % palette.count]
            let pts = se.values.enumerated().filter { $0.element.isFinite }.map { (px($0.offset), Self.top + plotH * (1 - $0.element / top)) }
            if pts.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\"/>\n"
            }
            for p in pts { s += "<circle cx=\"\(f(p.0))\" cy=\"\(f(p.1))\" r=\"4\" fill=\"\(c)\"/>\n" }
        }
        s += legend(series.map(\.name)) { i in "<rect y=\"4\" width=\"14\" height=\"4\" fill=\"\(palette[i % palette.count])\"/>" }
        return s + "</svg>\n"
    }
}
