import AIMConfig
import AIMData
import AIMDistributed
import AIMModel
import AIMTensor
import Foundation

/// Shared by the command-line tools: error printing and the model a checkpoint describes.
public enum Launch {
    /// Prints `error` as one clear line naming what is wrong (file, key) and exits with the
    /// status `ExitStatus.code(for:)` gives it.
    public static func fail(_ tool: String, _ error: Error, communicator: (any Communicator)? = nil) -> Never {
        let text: String
        switch error {
        case let e as ConfigError: text = "\(e)"
        case let e as ModelError: text = "\(e)"
        case let e as TrainingError: text = "\(e)"
        case let e as SafetensorsError: text = "\(e)"
        case let e as AnnotationError: text = "\(e)"
        case let e as DataConfigError: text = "\(e)"
        default: text = "\(error)"
        }
        let code = ExitStatus.code(for: error)
        if let communicator, communicator.size > 1 {
            // One line per rank, naming it (a data error may be one rank's alone); abort prints nothing more.
            Console.errorRaw("\(tool): error: rank \(communicator.rank) of \(communicator.size): \(text)\n")
            communicator.abort(code: code, message: nil)
        }
        Console.errorRaw("\(tool): error: \(text)\n")
        exit(code)
    }

    /// Compute threads (`--threads`, else the `threads` key, else cores ÷ local ranks), then the
    /// fp32 GEMM library (`gemm` key / AIM_GEMM, or for `auto` the one measured fastest on this
    /// model's linear shapes at that thread count, decided on rank 0); `log` prints both with the CPU.
    /// `workDir`: where the choice is cached when the home is not writable.
    @discardableResult
    public static func configureCompute(config: Config, threads: Int?, log: Bool,
                                        communicator: (any Communicator)? = nil, workDir: URL? = nil) throws -> GemmChoice {
        try checkThreads(threads)
        let n = threads ?? (config.int("threads") > 0 ? config.int("threads") : Threads.defaultCount())
        Threads.set(n)
        let decides = (communicator?.rank ?? 0) == 0
        let choice = try GemmChoice.apply(config: config, decides: decides, share: { text in
            guard let c = communicator, c.size > 1 else { return text }
            return String(decoding: c.broadcast(Array(text.utf8)), as: UTF8.self)
        }, workDir: workDir)
        if log {
            Console.error("cpu: \(CPUReport.summary); fp32 GEMM: \(Gemm.describe(Gemm.library)) — \(choice.reason); \(n) thread(s)")
        }
        return choice
    }

    /// `--threads N` must be 1…Threads.maxCount; checked before anything is opened.
    public static func checkThreads(_ threads: Int?) throws {
        if let problem = Threads.problem(with: threads) { throw TrainingError.config(problem) }
    }

    /// An aim-swift checkpoint records the frozen weights it was trained with (their fingerprint):
    /// evaluating it on others — another file at model.pretrained — would print wrong accuracies.
    static func checkFrozenWeights(of model: Recognizer, against checkpoint: String, metadata: [String: String], pretrained: String, seed: Int) throws {
        guard let recorded = metadata["frozen_weights"], !recorded.isEmpty,
              let now = model.frozenWeightsFingerprint(), now != recorded else { return }
        let (source, fix) = pretrained.isEmpty ? ("train.seed \(seed) draws (no model.pretrained)", "the train.seed")
                                               : ("model.pretrained \(pretrained) holds", "the model.pretrained file")
        throw ModelError.weights(path: checkpoint, problems: [
            "was trained on other frozen weights than \(source): fingerprint \(recorded) recorded, \(now) here; give \(fix) it was trained with"])
    }

    /// A model for evaluation: the config's pretrained backbone (or its seeded init), then the checkpoint's weights
    /// (an aim-swift checkpoint holds the tunable ones; a full recognizer file holds all).
    public static func loadModel(config: Config, checkpoint: String) throws -> Recognizer {
        let mc = try ModelConfig(config)
        // A file with every weight of this model (tools/convert_checkpoint.py from-official, or a
        // full recognizer export) needs neither model.pretrained nor the seed: the backbone file
        // a config names may not even be on this machine. (A checkpoint that cannot be opened is
        // named by loadWeights below.)
        let model = try Recognizer(config: mc, initialize: false)
        let header = try? SafetensorsFile(path: checkpoint)
        let full = header.map { h in h.metadata["format"] != CheckpointStore.format && model.store.parameters.allSatisfy { h.contains($0.name) } } ?? false
        if !full {
            try model.start(seed: UInt64(config.int("train.seed")))
            try checkFrozenWeights(of: model, against: checkpoint, metadata: header?.metadata ?? [:], pretrained: mc.pretrained,
                                   seed: config.int("train.seed"))
        }
        let report = try model.loadWeights(path: checkpoint, strict: false, ignoring: ["optimizer."])
        let missingTunable = report.missing.filter { name in model.store[name]?.tunable ?? false }
        if !missingTunable.isEmpty {
            // Name the first missing weight with the shape this config expects, and what the file
            // holds instead, so "a checkpoint of another model" is recognisable at a glance.
            let first = missingTunable[0]
            let shape = model.store[first].map { "\($0.shape)" } ?? "?"
            let held = header?.names.filter { !$0.hasPrefix("optimizer.") }.count ?? 0
            throw ModelError.weights(path: checkpoint, problems: [
                "this config's tunable weight \(first) \(shape) is not in the file (\(missingTunable.count) of its tunable weights missing; the file holds \(held) weights) — a checkpoint of another model or config?"])
        }
        // Frozen weights missing from the file come from model.pretrained, or — without one — from
        // the seeded initialisation, which is the same one training started from.
        model.releaseFrozenFP32Weights()   // bf16: evaluation reads the bf16 copies only, as training did
        return model
    }
}
