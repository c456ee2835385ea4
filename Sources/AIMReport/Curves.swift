import AIMTensor
import Foundation

/// Training curves of one or more runs from their `metrics.jsonl`: loss, learning rate,
/// throughput and validation top-1 against the optimizer step, one SVG each, runs overlaid and
/// named by work dir (`aim-report curves WORK_DIR… --out DIR`).
public enum Curves {
    /// One `metrics.jsonl` record: its mode (train, val), step, and numeric fields (test records are not drawn).
    public struct Record {
        public let mode: String
        public let step: Int
        public let values: [String: Double]
    }

    /// One chart: the file it goes to, and which field of which records it draws.
    public struct Chart {
        public let file: String, title: String, mode: String, key: String, yLabel: String
        public let format: (Double) -> String
    }

    public static let charts: [Chart] = [
        Chart(file: "loss.svg", title: "Training loss", mode: "train", key: "loss", yLabel: "cross-entropy loss",
              format: { String(format: "%.2f", $0) }),
        Chart(file: "lr.svg", title: "Learning rate", mode: "train", key: "lr", yLabel: "learning rate",
              format: { $0 == 0 ? "0" : String(format: "%.1e", $0) }),
        Chart(file: "throughput.svg", title: "Throughput", mode: "train", key: "clips_per_s", yLabel: "videos/s (global batch ÷ step time)",
              format: { String(format: "%g", $0) }),
        Chart(file: "val_top1.svg", title: "Validation top-1", mode: "val", key: "top1", yLabel: "top-1 accuracy",
              format: { String(format: "%.0f%%", 100 * $0) }),
    ]

    /// A metrics file that cannot be drawn: missing, unreadable, empty, or a bad line (1-based).
    public struct ReadError: Error, CustomStringConvertible {
        public let path: String
        public let line: Int?
        public let reason: String
        public var description: String { "\(path)\(line.map { ":\($0)" } ?? ""): \(reason)" }
    }

    /// The records of a work dir's `metrics.jsonl`, in step order. When a run was resumed (or
    /// started over) in the same work dir, records of steps it computed again replace the
    /// earlier ones: a record whose step goes back (or repeats) drops every earlier record after
    /// that step and the earlier record of its own mode at that step (a validation of that step
    /// stays until the resumed run writes its own).
    public static func read(workDir: URL) throws -> [Record] {
        let url = workDir.appendingPathComponent("metrics.jsonl")
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ReadError(path: url.path, line: nil, reason: "no such file (is \(workDir.path) the work dir of an aim-train run?)")
        }
        if isDir.boolValue { throw ReadError(path: url.path, line: nil, reason: "a folder, not the run's metrics file") }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReadError(path: url.path, line: nil, reason: "cannot be read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ReadError(path: url.path, line: nil, reason: "not UTF-8 text") }
        var records: [Record] = []
        var maxStep = Int.min
        var seen = Set<String>()   // "mode step" of the records kept
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let snippet = line.count > 60 ? String(line.prefix(60)) + "…" : line
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)), let fields = object as? [String: Any] else {
                // A last line without its newline is a record a killed run was writing (aim-train
                // drops it on resume): the curve so far is drawn. Elsewhere a bad line is an error.
                if i == lines.count - 1 && !text.hasSuffix("\n") { continue }
                throw ReadError(path: url.path, line: i + 1, reason: "not a JSON object: \(snippet)")
            }
            guard let mode = fields["mode"] as? String else { throw ReadError(path: url.path, line: i + 1, reason: "no \"mode\" field: \(snippet)") }
            // An Int as parsed (2^63 − 1 has no exact Double), else a whole Double.
            guard let step = (fields["step"] as? Int) ?? (fields["step"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }), step >= 0 else {
                throw ReadError(path: url.path, line: i + 1, reason: "no non-negative integer \"step\": \(snippet)")
            }
            // Tests after training (--test-last/--test-best) are no curve: two of them share the last step.
            if mode == "test" { continue }
            // aim-train writes train, val and test records; another mode is a file from elsewhere.
            guard mode == "train" || mode == "val" else {
                throw ReadError(path: url.path, line: i + 1, reason: "mode \"\(mode)\" (aim-train writes train, val and test records): \(snippet)")
            }
            var values: [String: Double] = [:]
            for (k, v) in fields where k != "mode" && k != "step" {
                if let x = number(v) { values[k] = x; continue }
                // Non-finite values are written as strings ("nan", "inf"): no point is drawn. Any other
                // value of a charted key (text, null) was dropped without a word before.
                if let t = v as? String, ["nan", "inf", "-inf"].contains(t.lowercased()) { continue }
                if charts.contains(where: { $0.key == k && $0.mode == mode }) {
                    throw ReadError(path: url.path, line: i + 1, reason: "\"\(k)\" is \(v is NSNull ? "null" : "\"\(v)\""), not a number: \(snippet)")
                }
            }
            if step < maxStep || seen.contains("\(mode) \(step)") {
                records.removeAll { $0.step > step || ($0.step == step && $0.mode == mode) }
                seen = Set(records.map { "\($0.mode) \($0.step)" })
                maxStep = records.map(\.step).max() ?? Int.min
            }
            records.append(Record(mode: mode, step: step, values: values))
            seen.insert("\(mode) \(step)")
            maxStep = max(maxStep, step)
        }
        guard !records.isEmpty else {
            throw ReadError(path: url.path, line: nil, reason: "empty: no record yet (the run logs one every train.log_interval steps)")
        }
        return records
    }

    /// A JSON number as parsed by Foundation (Int, Double or NSNumber); not a Bool (`v is Bool`
    /// would also hold for an NSNumber of 0 or 1 on Linux).
    static func number(_ v: Any) -> Double? {
        if type(of: v) == Bool.self { return nil }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let n = v as? NSNumber { return n.doubleValue }
        return nil
    }

    /// Legend names: each work dir's last path component, or the whole path when two runs share it.
    public static func names(of workDirs: [URL]) -> [String] {
        let last = workDirs.map(\.lastPathComponent)
        return workDirs.indices.map { i in last.filter { $0 == last[i] }.count > 1 ? workDirs[i].path : last[i] }
    }

    /// The SVG of `chart` for `runs` (name, records).
    public static func svg(_ chart: Chart, runs: [(name: String, records: [Record])]) -> String {
        let series = runs.map { run in
            SVGChart.XYSeries(run.name, run.records.filter { $0.mode == chart.mode }.compactMap { r in
                r.values[chart.key].flatMap { $0.isFinite ? (x: Double(r.step), y: $0) : nil }
            })
        }
        let subtitle = runs.count == 1 ? "\(runs[0].name), from metrics.jsonl" : "\(runs.count) runs, from their metrics.jsonl"
        // Top-1 on its whole range: a run stuck at 25 % drawn along the top edge read as perfect.
        return SVGChart.xyLines(title: chart.title, subtitle: subtitle, series: series, xLabel: "optimizer step",
                                yLabel: chart.yLabel, yMax: chart.key == "top1" ? 1 : nil, format: chart.format)
    }

    /// Reads every work dir (the first bad one stops with its error), writes the four charts into
    /// `out`, and returns the files written; `note` hears about charts no run has data for.
    @discardableResult
    public static func write(workDirs: [URL], to out: URL, note: (String) -> Void = { _ in }) throws -> [URL] {
        let runs = try zip(names(of: workDirs), workDirs).map { (name: $0, records: try read(workDir: $1)) }
        do { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) } catch {
            throw FileWriteError(path: out.path, reason: "cannot create the folder: \(FileOutput.whyFolderCannotBeMade(out.path, error))")
        }
        var written: [URL] = []
        for chart in charts {
            let missing = runs.filter { !$0.records.contains { $0.mode == chart.mode && $0.values[chart.key] != nil } }.map(\.name)
            if !missing.isEmpty {
                note("\(chart.file): no \(chart.mode) records with \"\(chart.key)\" in \(missing.joined(separator: ", "))"
                     + (chart.mode == "val" ? " (no data.val, or the run ended before its first eval.interval)" : ""))
            }
            let url = out.appendingPathComponent(chart.file)
            try FileOutput.write(svg(chart, runs: runs), to: url.path)
            written.append(url)
        }
        return written
    }
}
