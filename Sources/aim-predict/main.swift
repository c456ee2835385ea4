// aim-predict: what is happening in these videos? Top-k classes with names (mmaction2's
// demo.py), or per time window of a long video with a CSV and an SVG timeline (long_video_demo.py).
import AIMConfig
import AIMData
import AIMDistributed
import AIMReport
import AIMTensor
import AIMTraining
import ArgumentParser
import Foundation

struct AIMPredict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-predict",
        abstract: "Top-k classes of videos (or of time windows of a long video) with a trained model.",
        discussion: """
            Videos are scored with the config's test views (softmax per view, averaged), as aim-eval does.
            Class names come from data.classes (a label map: line i = name of label i); without one,
            labels print as numbers. A folder is searched recursively for video files.
            A video that cannot be read is reported on one line and the others are still predicted;
            the exit status is then 1.
            """)

    @Option(help: "YAML experiment config.") var config: String
    @Option(name: .customLong("set"), help: "Override: key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Checkpoint (aim-swift step/latest/best file with model.pretrained, or full recognizer weights).") var checkpoint: String
    @Argument(help: "Video files or folders of videos.") var inputs: [String]
    @Option(name: .customLong("top-k"), help: "Classes to report per video (or window).") var topK: Int = 5
    @Option(help: "Views as <temporal clips>x<spatial crops>, e.g. 3x1, or with the frames first as results print them (8x3x1) (default: the config's test views).") var views: String?
    @Option(help: "Compute threads.") var threads: Int?
    @Flag(help: "One JSON object per video (JSON Lines) instead of a table.") var json = false
    @Flag(help: "CSV (video, then label, class and probability of each of the top k) instead of a table.") var csv = false
    @Option(help: "Predict per time window of this many seconds (long videos).") var window: Double?
    @Option(help: "Seconds between window starts (default: the window length).") var stride: Double?
    @Option(name: .customLong("out"), help: "Folder for the per-video window CSV and SVG timeline (with --window; default the current folder).") var outOption: String?
    var out: String { outOption ?? "." }

    func validate() throws {
        if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
        if let views, testViews(views) == nil { throw ValidationError(testViewsProblem(views)) }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1, got \(topK)") }
        guard !(json && csv) else { throw ValidationError("--json and --csv: choose one output format") }
        // From a hundredth of a second (a window per frame at 100 fps) to a day: past them the window
        // count, or a start time in frames, no longer fits in memory or an integer.
        let seconds = 0.01...86_400.0
        if let window, !seconds.contains(window) { throw ValidationError("--window must be 0.01 to 86400 seconds, got \(window)") }
        if let stride {
            guard window != nil else { throw ValidationError("--stride needs --window") }
            guard seconds.contains(stride) else { throw ValidationError("--stride must be 0.01 to 86400 seconds, got \(stride)") }
        }
        guard !out.isEmpty else { throw ValidationError("--out: give a folder (empty path)") }
        // Only window predictions write files: --out alone was ignored without a word.
        if outOption != nil && window == nil { throw ValidationError("--out needs --window (only per-window predictions write files)") }
        if window != nil, FileOutput.isFileNotFolder(out) {
            throw ValidationError("--out \(out) is a file, not a folder for the window CSV and SVG files")
        }
        guard !inputs.isEmpty else { throw ValidationError("give at least one video file or folder") }
        // Every rank would label every video and print it again.
        if launchedProcessCount() > 1 {
            Launch.refuseSeveralProcesses("aim-predict", "it runs as one process (its threads use the node's cores): run it without mpirun or srun")
        }
    }

    func run() throws {
        Console.ignoreBrokenPipe()
        let comm = SingleProcessCommunicator()
        var failed = 0
        do {
            let (cfg, configClasses) = try loadTestConfig(path: config, overrides: overrides, views: views)
            let k = min(topK, cfg.int("model.num_classes"))
            let (videos, missing) = collectVideos(inputs)
            for m in missing { Console.error("aim-predict: skipping \(m)") }
            failed += missing.count
            if videos.isEmpty { throw TrainingError.data("no video files in \(inputs.joined(separator: " "))") }
            try Launch.configureCompute(config: cfg, threads: threads, log: false, communicator: comm)
            let loaded = try Launch.loadModel(config: cfg, checkpoint: checkpoint, classes: configClasses)
            if let note = loaded.note { Console.error("aim-predict: \(note)") }
            let classes = loaded.classes
            let predictor = try Predictor(model: loaded.model, config: cfg)
            if window != nil { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }

            let output = Output(format: json ? .json : csv ? .csv : .table, k: k, classes: classes, windowed: window != nil)
            output.begin()
            var progress = Progress(total: videos.count)
            var stems: [String: Int] = [:]
            for path in videos {
                do {
                    if let window {
                        let r = try predictor.predict(path: path, window: window, stride: stride ?? window)
                        output.windows(path, r.windows, duration: r.duration)
                        try writeWindowFiles(path: path, result: r, k: k, classes: classes, stems: &stems)
                    } else {
                        output.video(path, try predictor.predict(path: path))
                    }
                } catch let e as VideoError {
                    failed += 1
                    Console.error("aim-predict: skipping \(path): \(e)")
                    output.failure(path, "\(e)")
                }
                progress.advance()
            }
            progress.finish()
            if failed > 0 {
                Console.error("aim-predict: \(failed) of \(videos.count + missing.count) inputs could not be predicted (see above)")
            }
        } catch {
            Launch.fail("aim-predict", error, communicator: comm)
        }
        comm.finalize()
        if failed > 0 { throw ExitCode(1) }
    }

    /// `<out>/<video name>.windows.csv` (start, end, top-k) and `<out>/<video name>.timeline.svg`.
    /// Two inputs of one name (a/x.mp4, b/x.mp4) get `x` and `x-2`: the second overwrote the first.
    func writeWindowFiles(path: String, result: (duration: Double, windows: [Predictor.Window]), k: Int, classes: LabelMap?,
                          stems: inout [String: Int]) throws {
        let name = (URL(fileURLWithPath: path).lastPathComponent as NSString).deletingPathExtension
        let n = (stems[name] ?? 0) + 1
        stems[name] = n
        let stem = n == 1 ? name : "\(name)-\(n)"
        let base = (out as NSString).appendingPathComponent(stem)
        var text = PredictionTable.header(k: k, leading: ["start", "end"]) + "\n"
        for w in result.windows {
            text += PredictionTable.row(leading: [String(format: "%.3f", w.start), String(format: "%.3f", w.end)],
                                        scores: w.scores, k: k, classes: classes) + "\n"
        }
        try FileOutput.write(text, to: base + ".windows.csv")
        try FileOutput.write(timelineSVG(path: path, result: result, classes: classes), to: base + ".timeline.svg")
        Console.error("aim-predict: wrote \(base).windows.csv and \(base).timeline.svg")
    }
}

/// The timeline: each window's probability of the classes that matter (those that are top-1 in
/// some window, then the highest peaks), plotted at the window's centre.
func timelineSVG(path: String, result: (duration: Double, windows: [Predictor.Window]), classes: LabelMap?, lines: Int = 5) -> String {
    let ws = result.windows
    guard let K = ws.first?.scores.count else { return "" }
    let winners = Set(ws.map { topLabels($0.scores, k: 1)[0] })
    let peak = (0..<K).map { c in ws.map { $0.scores[c] }.max() ?? 0 }
    let chosen = (0..<K).sorted { (winners.contains($0) ? 1 : 0, peak[$0], -$0) > (winners.contains($1) ? 1 : 0, peak[$1], -$1) }.prefix(lines)
    let series = chosen.map { c in
        SVGChart.XYSeries(classes.name(c), ws.map { (x: ($0.start + $0.end) / 2, y: Double($0.scores[c])) })
    }
    return SVGChart.xyLines(title: "Predicted classes over time", subtitle: URL(fileURLWithPath: path).lastPathComponent + " — \(ws.count) windows",
                            series: series, xLabel: "time (s, window centre)", yLabel: "probability", yMax: 1,
                            format: { String(format: "%g", $0) })
}

/// Video files named on the command line, folders searched recursively (sorted, so a run is
/// repeatable); paths that do not exist are returned as messages.
func collectVideos(_ inputs: [String]) -> (videos: [String], problems: [String]) {
    let extensions = VideoReader.fileExtensions
    var videos: [String] = [], problems: [String] = []
    let fm = FileManager.default
    for input in inputs {
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: input, isDirectory: &isDir) else { problems.append("\(input): no such file or folder"); continue }
        guard isDir.boolValue else { videos.append(input); continue }
        guard let walker = fm.enumerator(atPath: input) else { problems.append("\(input): cannot list the folder"); continue }
        var found: [String] = []
        while let rel = walker.nextObject() as? String {
            // Hidden files and folders are skipped, as aim-data list skips them: macOS's `._clip.mp4`
            // resource forks made a folder's run exit 1.
            if (rel as NSString).lastPathComponent.hasPrefix(".") {
                if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { walker.skipDescendants() }
                continue
            }
            if extensions.contains((rel as NSString).pathExtension.lowercased()) { found.append((input as NSString).appendingPathComponent(rel)) }
        }
        if found.isEmpty { problems.append("\(input): no video files (\(extensions.sorted().joined(separator: ", "))) in the folder") }
        videos += found.sorted()
    }
    return (videos, problems)
}

/// The table, CSV or JSON Lines on stdout, one video (or window) at a time so a long run can be
/// watched and piped.
struct Output {
    enum Format { case table, csv, json }
    let format: Format
    let k: Int
    let classes: LabelMap?
    let windowed: Bool

    func begin() {
        if format == .csv { Console.out(PredictionTable.header(k: k, leading: windowed ? ["video", "start", "end"] : ["video"])) }
    }

    func video(_ path: String, _ scores: [Float]) {
        switch format {
        case .csv: Console.out(PredictionTable.row(leading: [path], scores: scores, k: k, classes: classes))
        case .json: emit(["video": path, "top": top(scores)])
        case .table:
            Console.out(path)
            Console.out(tableLines(scores).joined(separator: "\n"))
        }
    }

    func windows(_ path: String, _ ws: [Predictor.Window], duration: Double) {
        switch format {
        case .csv:
            for w in ws {
                Console.out(PredictionTable.row(leading: [path, String(format: "%.3f", w.start), String(format: "%.3f", w.end)],
                                                scores: w.scores, k: k, classes: classes))
            }
        case .json:
            emit(["video": path, "duration": duration,
                  "windows": ws.map { ["start": $0.start, "end": $0.end, "top": top($0.scores)] as [String: Any] }])
        case .table:
            Console.out(path + String(format: " (%.1f s, %d windows)", duration, ws.count))
            for w in ws {
                let best = topLabels(w.scores, k: min(k, 3)).map { "\(classes.name($0)) " + String(format: "%.3f", Double(w.scores[$0])) }
                Console.out(String(format: "  %7.2f–%7.2f s  ", w.start, w.end) + best.joined(separator: "  "))
            }
        }
    }

    func failure(_ path: String, _ reason: String) {
        if format == .json { emit(["video": path, "error": reason]) }
    }

    private func top(_ scores: [Float]) -> [[String: Any]] {
        topLabels(scores, k: k).map { l in
            var o: [String: Any] = ["label": l, "probability": Double(scores[l])]
            if let classes { o["class"] = classes.name(l) }
            return o
        }
    }

    private func tableLines(_ scores: [Float]) -> [String] {
        let labels = topLabels(scores, k: k)
        let width = labels.map { classes.name($0).count }.max() ?? 1
        return labels.enumerated().map { i, l in
            let name = classes.name(l)
            return "  \(i + 1). " + name + String(repeating: " ", count: width - name.count) + String(format: "  %.4f", Double(scores[l]))
        }
    }

    private func emit(_ obj: [String: Any]) {
        if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]) { Console.out(String(decoding: d, as: UTF8.self)) }
    }
}

/// "aim-predict: 12/40 videos, 0.8 s each, about 22 s left" on stderr, for runs of 10 videos or more;
/// rewritten in place on a terminal, every tenth of the run otherwise.
struct Progress {
    let total: Int
    let start = Date()
    var done = 0
    let tty = isatty(STDERR_FILENO) != 0

    init(total: Int) { self.total = total }

    mutating func advance() {
        done += 1
        guard total >= 10 else { return }
        let each = Date().timeIntervalSince(start) / Double(done)
        let line = String(format: "aim-predict: %d/%d videos, %.2f s each, about %.0f s left", done, total, each, each * Double(total - done))
        if tty { Console.errorRaw("\r" + line + "\u{1B}[K") }
        else if done == total || done % max(1, total / 10) == 0 { Console.error(line) }
    }

    func finish() { if tty && total >= 10 { Console.errorRaw("\n") } }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AIMPredict.main()
