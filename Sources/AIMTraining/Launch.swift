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
        Console.errorRaw("\(tool): error: \(text)\n")
        let code = ExitStatus.code(for: error)
        if let communicator, communicator.size > 1 { communicator.abort(code: code, message: text) }
        exit(code)
    }

    /// Compute threads (`--threads`, else the `threads` key, else cores ÷ local ranks) and the fp32
    /// GEMM library (`gemm` key / AIM_GEMM / the CPU class's default); `log` prints both with the CPU.
    public static func configureCompute(config: Config, threads: Int?, log: Bool) throws {
        try checkThreads(threads)
        try Gemm.select(try Gemm.resolve(config.string("gemm")))
        let n = threads ?? (config.int("threads") > 0 ? config.int("threads") : Threads.defaultCount())
        Threads.set(n)
        if log {
            Console.errorRaw("cpu: \(CPUReport.summary); fp32 GEMM: \(Gemm.describe(Gemm.library)), \(n) thread(s)\n")
        }
    }

    /// The largest `--threads` / `threads` accepted (the schema's bound).
    public static let maxThreads = 4096

    /// `--threads N` must be 1…maxThreads; checked before anything is opened.
    public static func checkThreads(_ threads: Int?) throws {
        if let t = threads, !(1...maxThreads).contains(t) {
            throw TrainingError.config("--threads \(t): compute threads per rank must be 1 to \(maxThreads)")
        }
    }

    /// A model for evaluation: the config's pretrained backbone (or its seeded init), then the checkpoint's weights
    /// (an aim-swift checkpoint holds the tunable ones; a full recognizer file holds all).
    public static func loadModel(config: Config, checkpoint: String) throws -> Recognizer {
        let mc = try ModelConfig(config)
        let model = try Recognizer(config: mc, seed: UInt64(config.int("train.seed")))
        if !mc.pretrained.isEmpty { try model.loadPretrainedBackbone(path: mc.pretrained) }
        let report = try model.loadWeights(path: checkpoint, strict: false, ignoring: ["optimizer."])
        let missingTunable = report.missing.filter { name in model.store[name]?.tunable ?? false }
        if !missingTunable.isEmpty {
            throw ModelError.weights(path: checkpoint, problems: ["missing tunable weights: " + missingTunable.joined(separator: ", ")])
        }
        // Frozen weights missing from the file come from model.pretrained, or — without one — from
        // the seeded initialisation, which is the same one training started from.
        return model
    }
}
