import AIMConfig
import AIMData
import AIMDistributed
import AIMModel
import AIMTensor
import Foundation

/// Shared by the command-line tools: error printing and the model a checkpoint describes.
public enum Launch {
    /// Prints `error` as one clear line naming what is wrong (file, key) and exits with the
    /// status `ExitStatus.code(for:)` gives it. An `AgreedStop` (every rank decided it together)
    /// ends this rank cleanly; any other error under mpirun ends the job.
    public static func fail(_ tool: String, _ error: Error, communicator: (any Communicator)? = nil) -> Never {
        if let stop = error as? AgreedStop {
            if let m = stop.message { Console.errorRaw("\(tool): error: \(m)\n") }
            communicator?.finalize()
            exit(stop.status)
        }
        let text = describe(error)
        let code = ExitStatus.code(for: error)
        if let communicator, communicator.size > 1 {
            // One line per rank, naming it (a data error may be one rank's alone); abort prints nothing more.
            Console.errorRaw("\(tool): error: rank \(communicator.rank) of \(communicator.size): \(text)\n")
            communicator.abort(code: code, message: nil)
        }
        Console.errorRaw("\(tool): error: \(text)\n")
        exit(code)
    }

    /// Ends a tool that must run as one process but was started by mpirun/srun with several, with
    /// status 64. Only rank 0 prints `message`; it waits a moment before exiting because mpirun
    /// tears the job down at the first non-zero exit and can drop output it has not yet read (CI
    /// lost the line that way). The other ranks wait longer, silently, so rank 0 ends the job.
    public static func refuseSeveralProcesses(_ tool: String, _ message: String) -> Never {
        if launchedProcessRank() == 0 {
            Console.errorRaw("\(tool): error: \(message)\n")
            usleep(500_000)
        } else {
            sleep(10)
        }
        exit(ExitStatus.usage)
    }

    /// The line `fail` prints for `error` (after "tool: error: ").
    static func describe(_ error: Error) -> String {
        switch error {
        case let e as ConfigError: return "\(e)"
        case let e as ModelError: return "\(e)"
        case let e as TrainingError: return "\(e)"
        case let e as SafetensorsError: return "\(e)"
        case let e as AnnotationError: return "\(e)"
        case let e as DataConfigError: return "\(e)"
        default: return "\(error)"
        }
    }

    /// Runs `body` on every rank, then agrees on its outcome (one allgather): if it threw on any
    /// rank, every rank throws an `AgreedStop`, and rank 0 alone prints each distinct message once
    /// with the ranks it came from. For work every rank does before its first collective (reading
    /// the config); `body` must not communicate. Why: a typo in `--set` under mpirun printed one
    /// error per rank and MPI_Abort's banner; now one line, every rank exiting with status 1.
    public static func together<T>(_ comm: any Communicator, label: String, _ body: () throws -> T) throws -> T {
        guard comm.size > 1 else { return try body() }
        var value: T?, outcome = ""
        do { value = try body() } catch { outcome = "\(ExitStatus.code(for: error))\n" + describe(error) }
        let all = comm.allgather(Array(outcome.utf8), label: label).map { String(decoding: $0, as: UTF8.self) }
        let failed = all.indices.filter { !all[$0].isEmpty }
        if let value, failed.isEmpty { return value }
        func parts(_ r: Int) -> (status: Int32, text: String) {
            let p = all[r].split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            return (Int32(p[0]) ?? ExitStatus.failure, p.count > 1 ? p[1] : "")
        }
        var message: String?
        if comm.rank == 0 {
            var order: [String] = [], ranks: [String: [Int]] = [:]
            for r in failed {
                let text = parts(r).text
                if ranks[text] == nil { order.append(text) }
                ranks[text, default: []].append(r)
            }
            message = order.map { text in
                let rs = ranks[text]!
                let who = rs.count == comm.size ? "all \(comm.size) ranks"
                    : (rs.count == 1 ? "rank " : "ranks ") + rs.map(String.init).joined(separator: ", ") + " of \(comm.size)"
                return "\(text) (\(who))"
            }.joined(separator: "; ")
        }
        throw AgreedStop(status: parts(failed[0]).status, message: message)
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
        guard let recorded = metadata["frozen_weights"], !recorded.isEmpty, recorded != Recognizer.fingerprintOfNothing,
              let now = model.frozenWeightsFingerprint(), now != recorded else { return }
        let (source, fix) = pretrained.isEmpty ? ("train.seed \(seed) draws (no model.pretrained)", "the train.seed")
                                               : ("model.pretrained \(pretrained) holds", "the model.pretrained file")
        // The run's config in the checkpoint says which backbone it used, when it had one.
        let used = metadata["config"].flatMap { try? Config(dump: $0) }.map { $0.string("model.pretrained") } ?? ""
        let hint = !used.isEmpty && used != pretrained ? "; its run used model.pretrained \(used): give that file"
                                                       : "; give \(fix) it was trained with"
        throw ModelError.weights(path: checkpoint, problems: [
            "was trained on other frozen weights than \(source): fingerprint \(recorded) recorded, \(now) here\(hint)"])
    }

    /// Why `file` holds another model's weights than `model`, nil when its tunable weights are
    /// this model's: one of this model's tunable weights missing, or a tunable weight (adapter,
    /// head, ln_post) this model does not have — an AIM checkpoint given with a space-only config
    /// would otherwise load its head alone and print figures of another model. The official code
    /// creates temporal_embedding in every model, so a converted file may hold it unused.
    static func otherModel(_ model: Recognizer, _ file: SafetensorsFile) -> String? {
        let weights = file.names.filter { !$0.hasPrefix("optimizer.") }
        let missing = model.store.tunableParameters.map(\.name).filter { !file.contains($0) }
        if let first = missing.first {
            let shape = model.store[first].map { "\($0.shape)" } ?? "?"
            return "this config's tunable weight \(first) \(shape) is not in the file (\(missing.count) of its tunable weights missing; "
                + "the file holds \(weights.count) weights) — a checkpoint of another model or config?"
        }
        let foreign = weights.filter { name in
            model.store[name] == nil && !name.hasSuffix("temporal_embedding") && Recognizer.tunableKeywords.contains { name.contains($0) }
        }
        if let first = foreign.first {
            let shape = (try? file.shape(of: first)).map { "\($0)" } ?? "?"
            return "the file holds the tunable weight \(first) \(shape), which this config's model does not have (\(foreign.count) such) "
                + "— a checkpoint of another model or config?"
        }
        return nil
    }

    /// A model for evaluation: the config's pretrained backbone (or its seeded init), then the checkpoint's weights
    /// (an aim-swift checkpoint holds the tunable ones; a full recognizer file holds all).
    public static func loadModel(config: Config, checkpoint: String) throws -> Recognizer {
        try loadModel(config: config, checkpoint: checkpoint, classes: LabelMap.fromConfig(config)).model
    }

    /// `loadModel`, with the class names to print: the head a checkpoint records class names for
    /// serves `classes` (the config's label map) by name — its rows reordered when the map holds
    /// the same names in another order (`note` says so), refused when it names other classes. Why:
    /// a list's labels mean what data.classes says; a head read in another order printed every
    /// prediction as another class and scored 0. Without a label map the checkpoint's own names are
    /// the ones to print.
    public static func loadModel(config: Config, checkpoint: String, classes: LabelMap?) throws
        -> (model: Recognizer, classes: LabelMap?, note: String?) {
        let model = try loadModelWeights(config: config, checkpoint: checkpoint)
        guard let header = try? SafetensorsFile(path: checkpoint), let text = header.metadata["classes"], !text.isEmpty,
              let trained = Trainer.classNames(json: text), trained.count == model.config.numClasses else { return (model, classes, nil) }
        guard let classes else {
            return (model, config.string("data.classes") == LabelMap.noNames ? nil : LabelMap(names: trained, path: checkpoint), nil)
        }
        let wanted = Array(classes.names.prefix(model.config.numClasses))
        if wanted == trained { return (model, classes, nil) }
        if model.reorderHead(trained: trained, wanted: wanted) {
            return (model, classes, "the checkpoint's head rows reordered from its class order (\(Trainer.firstThree(trained))) to \(classes.path)'s")
        }
        throw TrainingError.checkpoint(path: checkpoint, reason: "its head was trained for other classes than \(classes.path) names "
            + "(\(Trainer.classDifference(trained: trained, wanted: wanted))): give data.classes the label map the model was trained with")
    }

    static func loadModelWeights(config: Config, checkpoint: String) throws -> Recognizer {
        let mc = try ModelConfig(config)
        // A file with every weight of this model (tools/convert_checkpoint.py from-official, or a
        // full recognizer export) needs neither model.pretrained nor the seed: the backbone file
        // a config names may not even be on this machine. (A checkpoint that cannot be opened is
        // named by loadWeights below.)
        let model = try Recognizer(config: mc, initialize: false)
        let header = try? SafetensorsFile(path: checkpoint)
        let full = header.map { h in h.metadata["format"] != CheckpointStore.format && model.store.parameters.allSatisfy { h.contains($0.name) } } ?? false
        // Another architecture is named by its first differing weight, before the frozen weights
        // are compared (their fingerprints would differ too, and point at the wrong fix).
        if let header, let problem = otherModel(model, header) { throw ModelError.weights(path: checkpoint, problems: [problem]) }
        if !full {
            try model.start(seed: UInt64(config.int("train.seed")))
            try checkFrozenWeights(of: model, against: checkpoint, metadata: header?.metadata ?? [:], pretrained: mc.pretrained,
                                   seed: config.int("train.seed"))
        }
        // An aim-swift checkpoint's checksum, as `--resume` checks it: a damaged file would print wrong accuracies.
        if let header, header.metadata["format"] == CheckpointStore.format { try CheckpointStore.verifyChecksum(header, model: model) }
        _ = try model.loadWeights(path: checkpoint, strict: false, ignoring: ["optimizer."])
        // Frozen weights missing from the file come from model.pretrained, or — without one — from
        // the seeded initialisation, which is the same one training started from.
        model.releaseFrozenFP32Weights()   // bf16: evaluation reads the bf16 copies only, as training did
        return model
    }
}
