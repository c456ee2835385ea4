import AIMTensor
import Foundation

/// Writes the efficiency report: report.md, report.csv and SVG charts from measurements.
public struct EfficiencyReport {
    public let measurements: [EfficiencyMeasurement]
    public var commandLine: String
    public var machine: String
    public var date: String

    public init(measurements: [EfficiencyMeasurement], commandLine: String, machine: String = EfficiencyReport.machineDescription(),
                date: String = ISO8601DateFormatter().string(from: Date())) {
        self.measurements = measurements; self.commandLine = commandLine; self.machine = machine; self.date = date
    }

    // MARK: - Formatting

    static func mb(_ b: Int) -> String { String(format: "%.0f MB", Double(b) / 1e6) }
    static func gb(_ b: Int) -> String { String(format: "%.2f GB", Double(b) / 1e9) }
    static func millions(_ n: Int) -> String { String(format: "%.2fM", Double(n) / 1e6) }
    static func secs(_ s: Double) -> String { s.isFinite ? String(format: "%.3f s", s) : "–" }
    static func opt(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "–" }
    static func ratio(_ a: Double, _ b: Double) -> String { b > 0 && a.isFinite && b.isFinite ? String(format: "%.2f×", a / b) : "–" }

    /// "Linux x86_64, 2 cores, <cpu model>".
    public static func machineDescription() -> String {
        var cpu = "unknown CPU"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":", maxSplits: 1).last {
            cpu = name.trimmingCharacters(in: .whitespaces)
        }
        let memGB = Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30)
        // The load average says whether other work shared the cores during the measurement.
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        return String(format: "%@, %d cores, %.0f GiB RAM, load average %@ when the report was written", cpu,
                      ProcessInfo.processInfo.activeProcessorCount, memGB, load)
    }

    // MARK: - CSV

    public static let csvColumns = [
        "config", "label", "overrides", "sweep_key", "sweep_value", "ranks", "threads", "batch_per_rank", "micro_batch",
        "total_params", "tunable_params", "gflops_per_view", "views", "gflops_per_test",
        "peak_rss_bytes", "baseline_rss_bytes", "rss_growth_bytes", "accounted_bytes",
        "frozen_param_bytes", "tunable_param_bytes", "gradient_bytes", "optimizer_bytes", "activation_bytes",
        "workspace_bytes", "input_bytes",
        "step_time_s", "step_time_min_s", "step_time_max_s", "steps", "data_s", "forward_s", "backward_s",
        "allreduce_wait_s", "allreduce_pass_s", "allreduce_overlap_s", "optimizer_s",
        "allreduce_bytes_per_step", "checkpoint_bytes", "predicted_bytes_batch8", "predicted_bytes_batch8_fp16_activations",
        "paper_params_m", "paper_tunable_m", "paper_gflops", "paper_memory_gb", "paper_time_h", "paper_top1",
    ]

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    public func csv() -> String {
        var out = Self.csvColumns.joined(separator: ",") + "\n"
        for m in measurements {
            let p = PaperFigures.matching(m)
            func paper(_ k: KeyPath<PaperRow, Double?>) -> String { PaperFigures.figure(p, k).map { String($0.0) } ?? "" }
            let pred = MemoryPrediction(m, batch: MemoryPrediction.paperBatchPerGPU)
            let a = m.memory
            let totals = m.steps.map(\.total)
            let row: [String] = [
                m.configPath, m.label, m.overrides.joined(separator: " "), m.sweepKey, m.sweepValue,
                "\(m.ranks)", "\(m.threads)", "\(m.batchPerRank)", "\(m.microBatch)",
                "\(m.totalParams)", "\(m.tunableParams)", String(format: "%.4f", m.gflopsPerView), "\(m.views)",
                String(format: "%.0f", m.gflopsPerTest),
                "\(m.peakRSSBytes)", "\(m.baselineRSSBytes)", "\(m.rssGrowthBytes)", "\(a.total)",
                "\(a.frozenParameters)", "\(a.tunableParameters)", "\(a.gradients)", "\(a.optimizerState)", "\(a.activations)",
                "\(a.workspace)", "\(a.inputBatch)",
                String(format: "%.4f", m.stepTimeSeconds), String(format: "%.4f", totals.min() ?? .nan),
                String(format: "%.4f", totals.max() ?? .nan), "\(m.steps.count)",
                String(format: "%.4f", m.median(\.data)), String(format: "%.4f", m.median(\.forward)),
                String(format: "%.4f", m.median(\.backward)), String(format: "%.4f", m.median(\.allreduceWait)),
                String(format: "%.4f", m.median(\.allreducePass)), String(format: "%.4f", m.median(\.allreduceOverlap)),
                String(format: "%.4f", m.median(\.optimizer)),
                "\(m.allreduceBytesPerStep)", "\(m.checkpointBytes)", "\(pred.predictedBytes)", "\(pred.predictedHalfPrecisionBytes)",
                paper(\.params), paper(\.tunable), paper(\.gflops), paper(\.memoryGB), paper(\.timeHours), paper(\.top1),
            ]
            out += row.map(Self.csvField).joined(separator: ",") + "\n"
        }
        return out
    }

    // MARK: - Charts

    public func charts() -> [(name: String, svg: String)] {
        let labels = measurements.map(\.label)
        var out: [(String, String)] = []
        let cats = MemoryAccounting().categories.map(\.0)
        let memSeries = cats.indices.map { k in SVGChart.Series(cats[k], measurements.map { Double($0.memory.categories[k].1) / 1e6 }) }
        out.append(("memory_breakdown.svg", SVGChart.stackedBars(
            title: "Memory per rank: accounted categories (stacked) and measured RSS growth (dashed)",
            subtitle: "batch per rank \(measurements.map { String($0.batchPerRank) }.joined(separator: "/")), measured here",
            categories: labels, series: memSeries, yLabel: "MB", format: { String(format: "%.0f", $0) },
            markers: ("measured peak RSS growth", measurements.map { Double($0.rssGrowthBytes) / 1e6 }))))

        let phases: [(String, KeyPath<StepRecord, Double>)] = [("data", \.data), ("forward", \.forward), ("backward", \.backward),
            ("allreduce wait", \.allreduceWait), ("optimizer", \.optimizer), ("other", \.other)]
        let timeSeries = phases.map { name, kp in SVGChart.Series(name, measurements.map { m in m.median { $0[keyPath: kp] } }) }
        out.append(("time_per_iteration.svg", SVGChart.stackedBars(
            title: "Time per training step (median of measured steps), by phase",
            subtitle: "ranks × threads: \(measurements.map { "\($0.ranks)×\($0.threads)" }.joined(separator: ", ")), measured here",
            categories: labels, series: timeSeries, yLabel: "seconds", format: { String(format: "%.2f", $0) })))

        // Tunable parameters (measured here) against the paper's accuracy for the same model,
        // with the paper's other rows of the same tables as hollow context points.
        var points: [SVGChart.Point] = []
        var seriesNames: [String] = []
        func series(_ name: String) -> Int {
            if let i = seriesNames.firstIndex(of: name) { return i }
            seriesNames.append(name); return seriesNames.count - 1
        }
        var used: Set<String> = []
        for m in measurements {
            guard let (top1, row) = PaperFigures.figure(PaperFigures.matching(m), \.top1) else { continue }
            points.append(.init(x: Double(m.tunableParams) / 1e6, y: top1, label: m.label,
                                series: series("measured config, \(row.dataset) top-1 (paper)")))
            used.insert(row.table)
        }
        // Context: the paper's efficiency table and SSv2 ablation (the tables that compare methods).
        for r in PaperFigures.efficiency + PaperFigures.ablation where used.contains(r.table) || r.table == PaperFigures.efficiency[0].table {
            guard let t = r.tunable, let a = r.top1 else { continue }
            points.append(.init(x: t, y: a, label: r.model, series: series("paper rows, \(r.dataset)"), hollow: true))
        }
        if !points.isEmpty {
            out.append(("tunable_vs_accuracy.svg", SVGChart.scatter(
                title: "Tunable parameters vs top-1 accuracy",
                subtitle: "filled: tunable counted here, accuracy from the paper; hollow: the paper's own rows",
                points: points, seriesNames: seriesNames, xLabel: "tunable parameters (M, log scale)",
                yLabel: "top-1 (%)", logX: true)))
        }

        // Sweep: time, memory and GFLOPs relative to the first value, one chart per config.
        for group in sweepGroups() {
            let ms = group.rows
            let first = ms[0]
            var s: [SVGChart.Series] = [
                .init("step time (measured)", ms.map { $0.stepTimeSeconds / first.stepTimeSeconds }),
                .init("peak RSS growth (measured)", ms.map { Double($0.rssGrowthBytes) / Double(max(1, first.rssGrowthBytes)) }),
                .init("activations kept (accounted)", ms.map { Double($0.memory.activations) / Double(max(1, first.memory.activations)) }),
                .init("GFLOPs per view (counted here)", ms.map { Double($0.flopsPerView) / Double(max(1, first.flopsPerView)) }),
            ]
            let paper = ms.map { PaperFigures.figure(PaperFigures.matching($0), \.gflops)?.0 }
            if let p0 = paper[0], paper.contains(where: { $0 != nil }) {
                s.append(.init("GFLOPs (paper)", paper.map { $0.map { $0 / p0 } ?? .nan }))
            }
            let fileKey = group.key.replacingOccurrences(of: ".", with: "_")
            out.append(("sweep_\(fileKey)_\(group.index).svg", SVGChart.lines(
                title: "\(group.base): growth with \(group.key) (relative to \(group.key)=\(first.sweepValue))",
                subtitle: "measured here unless marked paper",
                xValues: ms.map(\.sweepValue), series: s, xLabel: group.key, yLabel: "× first value",
                format: { String(format: "%.1f", $0) })))
        }
        return out
    }

    struct SweepGroup { let key: String; let base: String; let index: Int; let rows: [EfficiencyMeasurement] }

    /// Measurements of one config over a swept variable, in sweep order.
    func sweepGroups() -> [SweepGroup] {
        var groups: [SweepGroup] = []
        var seen: [String] = []
        for m in measurements where !m.sweepKey.isEmpty {
            let id = m.configPath + "|" + m.overrides.filter { !$0.hasPrefix(m.sweepKey + "=") }.joined(separator: " ")
            if seen.contains(id) { continue }
            seen.append(id)
            let rows = measurements.filter {
                $0.sweepKey == m.sweepKey && $0.configPath + "|" + $0.overrides.filter { !$0.hasPrefix(m.sweepKey + "=") }.joined(separator: " ") == id
            }
            let base = URL(fileURLWithPath: m.configPath).deletingPathExtension().lastPathComponent
            if rows.count > 1 { groups.append(SweepGroup(key: m.sweepKey, base: base, index: groups.count, rows: rows)) }
        }
        return groups
    }

    // MARK: - Writing

    /// Creates the report's folder and proves it writable: called before any measuring too, as
    /// a folder found unwritable at the end threw every measurement away.
    public static func prepare(_ dir: URL) throws {
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw FileWriteError(path: dir.path, reason: "cannot create the folder: \(FileOutput.whyFolderCannotBeMade(dir.path, error))")
        }
        let probe = dir.appendingPathComponent(".aim-report-write-test-\(getpid())")
        try FileOutput.write("", to: probe.path)
        try? FileManager.default.removeItem(at: probe)
    }

    public func write(to dir: URL) throws -> [URL] {
        try Self.prepare(dir)
        var written: [URL] = []
        let chartFiles = charts()
        // An earlier report's text goes first and its sweep charts this one lacks too: a write that
        // failed part-way left the old report.md describing the new charts, and old sweeps stayed.
        // Only files an efficiency report wrote, known by their first bytes: a user's own report.md stays.
        let fm = FileManager.default
        func starts(_ name: String, with prefix: String) -> Bool {
            guard let h = FileHandle(forReadingAtPath: dir.appendingPathComponent(name).path) else { return false }
            defer { try? h.close() }
            return String(decoding: (try? h.read(upToCount: prefix.utf8.count)) ?? Data(), as: UTF8.self) == prefix
        }
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        where (name == "report.md" && starts(name, with: "# Efficiency report")) || (name == "report.csv" && starts(name, with: Self.csvColumns[0] + ","))
            || (name.hasPrefix("sweep_") && name.hasSuffix(".svg") && !chartFiles.contains { $0.name == name } && starts(name, with: "<svg")) {
            try? fm.removeItem(at: dir.appendingPathComponent(name))
        }
        for (name, svg) in chartFiles {
            let u = dir.appendingPathComponent(name)
            try FileOutput.write(svg, to: u.path); written.append(u)
        }
        let csvURL = dir.appendingPathComponent("report.csv")
        try FileOutput.write(csv(), to: csvURL.path); written.append(csvURL)
        let md = dir.appendingPathComponent("report.md")
        try FileOutput.write(markdown(charts: chartFiles.map(\.name)), to: md.path); written.append(md)
        return written
    }
}
