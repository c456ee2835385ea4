// aim-report: the efficiency report (AIM vs full finetuning vs frozen baselines, measured here,
// the paper's figures beside). `bin/aim-report efficiency --config A --config B --out DIR`.
import AIMConfig
import AIMDistributed
import AIMModel
import AIMReport
import AIMTraining
import ArgumentParser
import AIMTensor
import Foundation

struct AIMReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-report",
        abstract: "Measure training efficiency (time, memory, parameters, communication) and write a report; draw training curves.",
        subcommands: [Efficiency.self, Measure.self, ProfileOverhead.self, CurvesCommand.self, MMActionLogCommand.self])
}

/// A shell-quoted rendering of this process's command line, for the report.
func commandLineText() -> String {
    CommandLine.arguments.enumerated().map { i, a in
        let shown = i == 0 ? "bin/aim-report" : a
        return shown.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:+".contains($0) } ? shown : "'" + shown.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}

struct Efficiency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure N training steps of each config on random data and write DIR/report.md, report.csv and SVG charts.",
        discussion: """
        bin/aim-report efficiency --config configs/k400/aim_vitb16_clip_8f.yaml \\
            --config configs/k400/finetune_space_only_vitb16_clip_8f.yaml \\
            --set train.batch_size=1 --set train.micro_batch=1 --steps 3 --out work_dirs/report
        Sweeps: --sweep model.num_frames=8,16,32   or   --sweep ranks=1,2 (launches mpirun itself).
        Under mpirun (mpirun -n 2 bin/aim-report efficiency …) every rank measures and rank 0 writes.
        """)
    @Option(name: .customLong("config"), help: "Experiment config (repeatable; the first is the reference for ratios).") var configs: [String]
    @Option(name: .customLong("set"), help: "Override key=value for every config (repeatable).") var overrides: [String] = []
    @Option(help: "Measured optimizer steps per config (after one warm-up step).") var steps = 5
    @Option(help: "Ranks: when > 1, each config is measured under mpirun -n R --oversubscribe.") var ranks: Int?
    @Option(help: "Threads per rank (default: cores ÷ ranks).") var threads: Int?
    @Option(name: .customLong("sweep"), help: "Sweep one variable: key=v1,v2,… (a config key, or ranks).") var sweeps: [String] = []
    var sweep: String? { sweeps.first }
    @Option(help: "Output directory.") var out: String

    func validate() throws {
        try checkCounts(steps: steps, threads: threads, ranks: ranks)
        // A second --sweep replaced the first without a word; one variable per report.
        if sweeps.count > 1 { throw ValidationError("--sweep: one variable per report (given \(sweeps.count): \(sweeps.joined(separator: ", ")))") }
        if let r = ranks, sweep?.hasPrefix("ranks=") == true { throw ValidationError("--ranks \(r) and --sweep ranks=…: the sweep sets the ranks; give one of them") }
        // Checked before any measuring: a report that cannot be written would waste every run.
        guard !out.isEmpty else { throw ValidationError("--out: give a folder (empty path)") }
        if FileOutput.isFileNotFolder(out) {
            throw ValidationError("--out \(out) is a file, not a folder for the report")
        }
    }

    func requests() throws -> [(MeasureRequest, Int)] {
        var sweepKey = "", values: [String] = [""]
        if let sweep {
            let parts = sweep.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--sweep \(sweep): expected key=v1,v2,… (e.g. model.num_frames=8,16,32 or ranks=1,2)")
            }
            sweepKey = parts[0]
            values = parts[1].split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if values.contains(where: \.isEmpty) {
                throw ValidationError("--sweep \(sweep): an empty value (write key=v1,v2,… with a value between every comma)")
            }
            if sweepKey == "ranks" && values.contains(where: { (Int($0) ?? 0) < 1 }) {
                throw ValidationError("--sweep ranks=\(parts[1]): every value must be a positive integer")
            }
        }
        var out: [(MeasureRequest, Int)] = []
        for c in configs {
            for v in values {
                var sets = overrides
                var r = ranks ?? 1
                if sweepKey == "ranks", let n = Int(v) { r = n } else if !sweepKey.isEmpty { sets.append("\(sweepKey)=\(v)") }
                var req = MeasureRequest(configPath: c, overrides: sets, steps: steps, threads: threads)
                // Left out of the default label (the tables have a batch column), but a sweep's rows differ by it.
                if ["ranks", "train.batch_size", "train.micro_batch"].contains(sweepKey) { req.label += " [\(sweepKey)=\(v)]" }
                req.sweepKey = sweepKey; req.sweepValue = v
                out.append((req, r))
            }
        }
        return out
    }

    func run() throws {
        guard !configs.isEmpty else { throw ValidationError("give at least one --config") }
        var runs = try requests()
        // The same config with the same overrides twice gave two rows of one label.
        let identity = runs.map { r, ranks in
            ([URL(fileURLWithPath: r.configPath).standardizedFileURL.resolvingSymlinksInPath().path, "\(ranks)"] + r.overrides).joined(separator: "\t")
        }
        if let twice = identity.indices.first(where: { identity.firstIndex(of: identity[$0]) != $0 }) {
            throw ValidationError("\(runs[twice].0.label) is measured twice (the same --config with the same overrides): give each once")
        }
        // Configs of one file name in other folders (k400/ and k700/): their folder tells the rows apart.
        let labels = runs.map { $0.0.label }
        for i in runs.indices where labels.filter({ $0 == labels[i] }).count > 1 {
            runs[i].0.label = URL(fileURLWithPath: runs[i].0.configPath).deletingLastPathComponent().lastPathComponent + "/" + labels[i]
        }
        // Every config and the report's folder before the first measurement: a later config's typo
        // or an unwritable --out found at the end threw every measurement away.
        do {
            for (req, _) in runs { _ = try ModelConfig(try Config.load(path: req.configPath, overrides: req.overrides + EfficiencyRunner.forcedOverrides)) }
            try EfficiencyReport.prepare(URL(fileURLWithPath: out))
        } catch { Launch.fail("aim-report", error) }
        var results: [EfficiencyMeasurement] = []
        if detectLaunchMode() == .mpi {
            // Launched by mpirun: measure here on every rank; rank 0 writes.
            let comm = makeCommunicator()
            if let ranks, ranks != comm.size {
                Launch.fail("aim-report", TrainingError.config("--ranks \(ranks) but mpirun started \(comm.size) ranks"), communicator: comm)
            }
            if sweep?.hasPrefix("ranks=") == true {
                Launch.fail("aim-report", TrainingError.config("--sweep ranks=… launches mpirun itself: run aim-report without mpirun"), communicator: comm)
            }
            do {
                for (req, _) in runs { results.append(try EfficiencyRunner.measure(req, communicator: comm)) }
                if comm.rank == 0 { try writeReport(results) }
            } catch { Launch.fail("aim-report", error, communicator: comm) }
            comm.finalize()
            return
        }
        do {
            for (req, r) in runs {
                Console.errorRaw("aim-report: measuring \(req.label) (\(r) rank\(r > 1 ? "s" : ""), 1 + \(req.steps) steps)\n")
                results.append(try ChildLauncher.run(req, ranks: r))
            }
            try writeReport(results)
        } catch { Launch.fail("aim-report", error) }
    }

    func writeReport(_ results: [EfficiencyMeasurement]) throws {
        let report = EfficiencyReport(measurements: results, commandLine: commandLineText())
        let files = try report.write(to: URL(fileURLWithPath: out))
        for f in files { print("wrote \(f.path)") }
    }
}

struct Measure: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure one config (used by `efficiency` in a child process) and write its numbers as JSON.")
    @Option var config: String
    @Option(name: .customLong("set")) var overrides: [String] = []
    @Option var steps = 5
    @Option var threads: Int?
    @Option var label: String?
    @Option(name: .customLong("sweep-key")) var sweepKey = ""
    @Option(name: .customLong("sweep-value")) var sweepValue = ""
    @Option(help: "Output JSON (rank 0 writes it).") var json: String

    func validate() throws { try checkCounts(steps: steps, threads: threads) }

    func run() throws {
        let comm = makeCommunicator()
        do {
            var req = MeasureRequest(configPath: config, overrides: overrides, steps: steps, threads: threads, label: label)
            req.sweepKey = sweepKey; req.sweepValue = sweepValue
            let m = try EfficiencyRunner.measure(req, communicator: comm)
            if comm.rank == 0 {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                try FileOutput.write(try enc.encode(m), to: json)
            }
        } catch { Launch.fail("aim-report", error, communicator: comm) }
        comm.finalize()
    }
}

struct ProfileOverhead: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile-overhead",
        abstract: "Median step time with profiling off and on (alternating runs in one process) and the relative overhead.")
    @Option var config: String
    @Option(name: .customLong("set")) var overrides: [String] = []
    @Option var steps = 20
    @Option var repeats = 3

    func validate() throws {
        try checkCounts(steps: steps, threads: nil)
        guard repeats >= 1 else { throw ValidationError("--repeats \(repeats): must be at least 1") }
    }

    func run() throws {
        let comm = makeCommunicator()
        var off: [Double] = [], on: [Double] = []
        do {
            let cfg = try Config.load(path: config, overrides: overrides + EfficiencyRunner.forcedOverrides)
            for _ in 0..<repeats {
                for profile in [false, true] {
                    var options = TrainOptions()
                    options.workDir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-report-overhead-\(getpid())")
                    options.maxSteps = steps + 1
                    options.profile = profile
                    let mc = try AIMModelConfigShape(cfg)
                    let source = RandomBatchSource(localBatch: cfg.int("train.batch_size"), frames: mc.frames, size: mc.size,
                                                   classes: mc.classes, rank: 0)
                    let trainer = try Trainer(config: cfg, options: options, communicator: comm, trainData: source, valData: nil)
                    let times = try trainer.run().stepTimes.dropFirst().map(\.total)
                    if profile { on += times } else { off += times }
                    try? FileManager.default.removeItem(at: options.workDir!)
                }
            }
        } catch { Launch.fail("aim-report", error) }
        let a = Statistics.median(off), b = Statistics.median(on)
        print(String(format: "profile off: median %.5f s/step over %d steps; on: %.5f s/step over %d steps; overhead %+.2f%%",
                     a, off.count, b, on.count, 100 * (b - a) / a))
        comm.finalize()
    }
}

struct CurvesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curves",
        abstract: "Draw loss, learning rate, throughput and validation top-1 against step (SVG) from the metrics.jsonl of one or more work dirs.",
        discussion: """
        bin/aim-report curves work_dirs/demo/tiny_aim work_dirs/demo/tiny_space_only --out work_dirs/demo/curves
        writes loss.svg, lr.svg, throughput.svg and val_top1.svg, the runs overlaid and named by work dir.
        """)
    @Argument(help: "Work dirs of aim-train runs (each holds metrics.jsonl).") var workDirs: [String]
    @Option(help: "Output directory.") var out: String

    func validate() throws {
        guard !workDirs.isEmpty else { throw ValidationError("give at least one work dir") }
        // The same run twice drew two identical lines under one name.
        let resolved = workDirs.map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path }
        if let twice = resolved.indices.first(where: { resolved.firstIndex(of: resolved[$0]) != $0 }) {
            throw ValidationError("\(workDirs[twice]) is given twice (as \(workDirs[resolved.firstIndex(of: resolved[twice])!]))")
        }
        guard !out.isEmpty else { throw ValidationError("--out: give a folder (empty path)") }
        if FileOutput.isFileNotFolder(out) { throw ValidationError("--out \(out) is a file, not a folder for the charts") }
    }

    func run() throws {
        do {
            let dirs = workDirs.map { URL(fileURLWithPath: $0) }
            let files = try Curves.write(workDirs: dirs, to: URL(fileURLWithPath: out)) { Console.error("aim-report: note: \($0)") }
            for f in files { Console.out("wrote \(f.path)") }
        } catch { Launch.fail("aim-report", error) }
    }
}

struct MMActionLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mmaction-log",
        abstract: "Write a work dir's metrics.jsonl as mmaction2's log.json (epoch from 1, iter, loss_cls, top1_acc, top5_acc, memory), for analyze_logs.py and dashboards made for mmaction2.",
        discussion: """
        bin/aim-report mmaction-log work_dirs/demo/tiny_aim --out tiny_aim.log.json
        python tools/analysis/analyze_logs.py plot_curve tiny_aim.log.json --keys top1_acc   # in an mmaction2 checkout
        """)
    @Argument(help: "Work dir of an aim-train run (holds metrics.jsonl).") var workDir: String
    @Option(help: "The log.json file to write.") var out: String

    func validate() throws {
        guard !out.isEmpty else { throw ValidationError("--out: give a file (empty path)") }
        if FileManager.default.fileExists(atPath: out) && !FileOutput.isFileNotFolder(out) { throw ValidationError("--out \(out) is a folder, not a file") }
    }

    func run() throws {
        do {
            let records = try Curves.read(workDir: URL(fileURLWithPath: workDir))
            let lines = MMActionLog.lines(records, run: workDir) { Console.error("aim-report: note: \($0)") }
            try FileOutput.write(lines.map { $0 + "\n" }.joined(), to: out)
            Console.out("wrote \(out): \(lines.count - 1) records")
        } catch { Launch.fail("aim-report", error) }
    }
}

/// Option values every subcommand shares, refused before anything runs (exit status 64).
func checkCounts(steps: Int, threads: Int?, ranks: Int? = nil) throws {
    guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps \(steps): must be 1 to 1000000") }
    if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
    if let r = ranks, !(1...4096).contains(r) { throw ValidationError("--ranks \(r): must be 1 to 4096") }
}

/// The clip shape a config's model reads.
struct AIMModelConfigShape {
    let frames: Int, size: Int, classes: Int
    init(_ c: Config) throws {
        frames = c.int("model.num_frames"); size = c.int("model.input_resolution"); classes = c.int("model.num_classes")
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AIMReportCommand.main()
