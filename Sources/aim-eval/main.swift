// aim-eval: multi-view testing of a checkpoint, as the official configs test (e.g. 8×3×1 on K400).
import AIMConfig
import AIMData
import AIMDistributed
import AIMTensor
import AIMTraining
import ArgumentParser
import Foundation

struct AIMEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-eval",
        abstract: "Top-1, top-5 and mean-class accuracy of a checkpoint over data.test (or data.val).")

    @Option(help: "YAML experiment config.") var config: String
    @Option(name: .customLong("set"), help: "Override: key=value (repeatable).") var overrides: [String] = []
    @Option(help: "Checkpoint (aim-swift step/latest/best file, or full recognizer weights).") var checkpoint: String
    @Option(help: "Views as <temporal clips>x<spatial crops>, e.g. 3x1 or 1x3, or with the frames first as results print them (8x3x1) (default: the config's test views).") var views: String?
    @Option(name: .customLong("average-clips"), help: "How views combine: prob (softmax per view, averaged; the official configs) or score (logits averaged), as mmaction2's test.py --average-clips (default: eval.average_clips).")
    var averageClips: String?
    @Option(help: "Compute threads per rank.") var threads: Int?
    @Flag(help: "Print {top1, top5, mean_class_accuracy, videos, skipped, views, average_clips, per_class, confused_pairs} as JSON.") var json = false
    @Option(help: "Write per-video predictions as CSV: video, true label and class, top-5 labels with classes and probabilities (mmaction2 test.py --out).")
    var predictions: String?
    @Option(name: .customLong("confused-pairs"), help: "How many of the most confused class pairs to report.") var confusedPairs: Int = 10

    func validate() throws {
        if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
        if let views, testViews(views) == nil { throw ValidationError(testViewsProblem(views)) }
        if let averageClips, ClipAveraging(rawValue: averageClips) == nil {
            throw ValidationError("--average-clips \(averageClips): expected one of \(ClipAveraging.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard confusedPairs >= 0 else { throw ValidationError("--confused-pairs must be 0 or more, got \(confusedPairs)") }
    }

    func run() throws {
        Console.ignoreBrokenPipe()
        let comm = makeCommunicator()
        do {
            let (cfg, configClasses) = try Launch.together(comm, label: "config") { try loadTestConfig(path: config, overrides: overrides + (averageClips.map { ["eval.average_clips=\($0)"] } ?? []), views: views) }
            try Launch.configureCompute(config: cfg, threads: threads, log: false, communicator: comm)
            // A bad checkpoint or annotation is every rank's: one message, not one per rank and MPI's abort banner.
            let (loaded, loader) = try Launch.together(comm, label: "model and data") {
                (try Launch.loadModel(config: cfg, checkpoint: checkpoint, classes: configClasses),
                 try VideoLoader(config: cfg, split: .test, rank: comm.rank, ranks: comm.size, batchSize: comm.size))
            }
            let (model, classes) = (loaded.model, loaded.classes)
            if comm.rank == 0, let note = loaded.note { Console.error("aim-eval: \(note)") }
            let source = VideoBatchSource(loader: loader)
            let result = try Evaluator(model: model, comm: comm, numClasses: model.config.numClasses, seed: 0,
                                       averaging: ClipAveraging(config: cfg)).run(source)
            if comm.rank == 0 {
                let views = loader.pipeline.config.viewsText(frames: model.config.numFrames)
                let report = ClassReport(scores: result.scores, labels: result.labels, numClasses: model.config.numClasses)
                if let predictions {
                    try writePredictions(result, samples: loader.samples, classes: classes, to: predictions)
                }
                if json {
                    // Class names only where a label map gives them (no made-up names).
                    let perClass: [[String: Any]] = report.perClass.map {
                        var o: [String: Any] = ["label": $0.label, "videos": $0.videos, "correct": $0.correct, "accuracy": $0.accuracy]
                        if let classes { o["class"] = classes.name($0.label) }
                        return o
                    }
                    let pairs: [[String: Any]] = report.confusions.prefix(confusedPairs).map {
                        var o: [String: Any] = ["true_label": $0.truth, "predicted_label": $0.predicted,
                                                "videos": $0.count, "fraction_of_class": $0.fraction]
                        if let classes { o["true_class"] = classes.name($0.truth); o["predicted_class"] = classes.name($0.predicted) }
                        return o
                    }
                    let obj: [String: Any] = ["top1": result.top1, "top5": result.top5, "mean_class_accuracy": result.meanClassAccuracy,
                                              "videos": result.videos, "skipped": result.skipped, "per_class": perClass, "confused_pairs": pairs,
                                              "predicted_only_labels": report.predictedOnly,
                                              "views": views, "average_clips": cfg.string("eval.average_clips")]
                    Console.out(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
                } else {
                    Console.out(String(format: "top1 %.4f  top5 %.4f  mean class accuracy %.4f  (%d videos, %d skipped; views %@)",
                                       result.top1, result.top5, result.meanClassAccuracy, result.videos, result.skipped, views))
                    Console.out(classReportText(report, classes: classes, pairs: confusedPairs))
                }
                if let predictions { Console.error("aim-eval: wrote \(result.videos) predictions to \(predictions)") }
            }
        } catch {
            Launch.fail("aim-eval", error, communicator: comm)
        }
        comm.finalize()
    }
}

/// Per-class accuracy, worst first (all classes up to 30, else the 15 worst), and the most
/// confused pairs: what a user reads after top-1.
func classReportText(_ report: ClassReport, classes: LabelMap?, pairs: Int) -> String {
    let worstFirst = report.perClass.sorted { ($0.accuracy, $0.label) < ($1.accuracy, $1.label) }
    let shown = worstFirst.count <= 30 ? worstFirst : Array(worstFirst.prefix(15))
    let width = min(40, max(5, shown.map { classes.name($0.label).count }.max() ?? 5))
    func pad(_ s: String) -> String { s.count >= width ? String(s.prefix(width)) : s + String(repeating: " ", count: width - s.count) }
    var lines = ["", shown.count == worstFirst.count ? "per-class accuracy (worst first):"
                                                      : "per-class accuracy, the \(shown.count) worst of \(worstFirst.count) classes (all in --json):"]
    lines.append("  label  \(pad("class"))  videos  correct  accuracy")
    for c in shown {
        lines.append(String(format: "  %5d  ", c.label) + pad(classes.name(c.label)) + String(format: "  %6d  %7d  %8.4f", c.videos, c.correct, c.accuracy))
    }
    if !report.predictedOnly.isEmpty {
        let names = report.predictedOnly.prefix(5).map { classes.name($0) }.joined(separator: ", ") + (report.predictedOnly.count > 5 ? " …" : "")
        lines.append("  (mean class accuracy also counts \(report.predictedOnly.count) class\(report.predictedOnly.count == 1 ? "" : "es") "
                     + "predicted but with no video here as 0, as mmaction2's does: \(names))")
    }
    let top = report.confusions.prefix(pairs)
    if pairs > 0 {
        lines.append("")
        lines.append(top.isEmpty ? "no confusions: every video's top-1 is its class" : "most confused pairs (true → predicted):")
        for p in top {
            lines.append("  \(classes.name(p.truth)) → \(classes.name(p.predicted)): \(p.count) videos"
                         + String(format: " (%.1f %% of the class)", 100 * p.fraction))
        }
    }
    return lines.joined(separator: "\n")
}

/// `--predictions FILE.csv`: one row per video in dataset order (rank 0 holds them all).
func writePredictions(_ result: EvalResult, samples: [VideoSample], classes: LabelMap?, to path: String) throws {
    let k = min(5, result.scores.first?.count ?? 5)
    var text = PredictionTable.header(k: k, leading: ["video", "label", "class"]) + "\n"
    for (i, index) in result.indices.enumerated() {
        let video = index >= 0 && index < samples.count ? samples[index].path : ""
        text += PredictionTable.row(leading: [video, "\(result.labels[i])", classes.name(result.labels[i])],
                                    scores: result.scores[i], k: k, classes: classes) + "\n"
    }
    try FileOutput.write(text, to: path)
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AIMEval.main()
