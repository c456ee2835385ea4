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
    @Option(help: "Views as <temporal clips>x<spatial crops>, e.g. 3x1 or 1x3 (default: the config's test views).") var views: String?
    @Option(help: "Compute threads per rank.") var threads: Int?
    @Flag(help: "Print {top1, top5, mean_class_accuracy, videos, skipped} as JSON.") var json = false

    func validate() throws {
        if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
    }

    func run() throws {
        Console.ignoreBrokenPipe()
        let comm = makeCommunicator()
        do {
            var cfg = try Config.load(path: config, overrides: overrides)
            try cfg.checkRelations()
            if let views {
                let parts = views.lowercased().replacingOccurrences(of: "×", with: "x").split(separator: "x").compactMap { Int($0) }
                guard parts.count == 2, parts[0] >= 1, parts[1] == 1 || parts[1] == 3 else {
                    throw TrainingError.config("--views \(views): expected <clips>x<crops> with crops 1 or 3, e.g. 3x1")
                }
                // The uniform (SSv2) sampler takes one clip per video and ignores num_clips, as the
                // official one does: more clips would silently be one.
                if parts[0] > 1 && cfg.bool("data.frame_uniform") {
                    throw TrainingError.config("--views \(views): data.frame_uniform samples one clip per video; use 1x\(parts[1]) or set data.frame_uniform=false")
                }
                try cfg.set("data.test_num_clips", .int(parts[0]))
                try cfg.set("data.test_crop", .string(parts[1] == 3 ? "three" : "center"))
            }
            try Launch.configureCompute(config: cfg, threads: threads, log: false, clips: 1, communicator: comm)
            let model = try Launch.loadModel(config: cfg, checkpoint: checkpoint)
            let loader = try VideoLoader(config: cfg, split: .test, rank: comm.rank, ranks: comm.size, batchSize: comm.size)
            let source = VideoBatchSource(loader: loader)
            let result = try Evaluator(model: model, comm: comm, numClasses: model.config.numClasses, seed: 0).run(source)
            if comm.rank == 0 {
                if json {
                    let obj: [String: Any] = ["top1": result.top1, "top5": result.top5, "mean_class_accuracy": result.meanClassAccuracy,
                                              "videos": result.videos, "skipped": result.skipped]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
                } else {
                    let p = loader.pipeline.config
                    print(String(format: "top1 %.4f  top5 %.4f  mean class accuracy %.4f  (%d videos, %d skipped; views %d×%d×%d)",
                                 result.top1, result.top5, result.meanClassAccuracy, result.videos, result.skipped,
                                 model.config.numFrames, p.sampler.clipsPerVideo, p.cropsPerClip))
                }
            }
        } catch {
            Launch.fail("aim-eval", error, communicator: comm)
        }
        comm.finalize()
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AIMEval.main()
