import AIMConfig
import AIMData
import AIMDistributed
import AIMModel
import AIMTensor
import Foundation

/// Command-line choices that are not part of the experiment config.
public struct TrainOptions {
    public var workDir: URL?
    public var resume: String?          // "auto" or a checkpoint path
    public var maxSteps: Int?
    public var threads: Int?
    public var profile: Bool = false
    public var bucketMode: BucketMode = .overlapped
    /// The command line, recorded in the work dir's lock for whoever finds the dir in use.
    public var commandLine: String = ""
    /// Copy standard error to `<work dir>/<start time>.log` (aim-train's runs; `RunLog`).
    public var runLog = false
    /// `--test-last` / `--test-best`: what to test once the run is complete (`TestAfterTraining.swift`).
    public var testAfter: Set<TestCheckpoint> = []
    /// The stop signal received so far (0: none), asked at each step boundary and before each
    /// validation or test batch; tests give their own to stop at a chosen point.
    public var stopSignal: () -> Int32 = { StopSignal.number }
    public init() {}
}

/// Seconds spent in each phase of one optimizer step (summed over micro-batches).
public struct StepTimes: Sendable {
    public var data = 0.0, forward = 0.0, backward = 0.0, allreduceWait = 0.0, optimizer = 0.0, total = 0.0
    public var allreducePass = 0.0
    public var bytesAllreduced = 0
    /// Filled only when profiling: resident and peak resident bytes at the end of the step.
    public var rssBytes = 0, peakRSSBytes = 0
    /// Filled only when profiling: seconds in each kind of kernel (`StepProfile`), by `Phase.key`;
    /// what no phase claims (rearranges, residual adds, patch embedding, head, optimizer) is not in it.
    public var kernelSeconds: [String: Double] = [:]
}

/// What a finished (or stopped) run reports.
public struct TrainSummary {
    public var state: TrainingState
    /// The signal that stopped the run (after its checkpoint), 0 when it ran to its end.
    public var stopSignal: Int32 = 0
    public var lastLoss: Float = .nan
    /// The last step's batch accuracy (top-1, top-5 of the training clips), as mmaction2 logs
    /// `top1_acc`/`top5_acc` beside `loss_cls`.
    public var lastTop1 = Double.nan, lastTop5 = Double.nan
    /// Bad-sample skips so far, summed over all ranks (each rank's loader only sees its slice).
    public var skipEvents = 0
    public var lastEval: EvalResult?
    public var stepTimes: [StepTimes] = []
    /// `--test-last` / `--test-best` results, last first, as mmaction2 tests them.
    public var tests: [TestResult] = []
}

/// The data-parallel training loop: every rank runs it; rank 0 also logs and checkpoints.
///
/// One step, as a newcomer should be able to read it: load this rank's slice of the global
/// batch; for each micro-batch forward, cross-entropy, backward (weight gradients accumulate);
/// allreduce the tunable gradients in buckets (overlapped with the last backward); clip;
/// AdamW; maybe checkpoint and evaluate.
public final class Trainer {
    public let config: Config
    public let modelConfig: ModelConfig
    public let comm: any Communicator
    public let model: Recognizer
    public let optimizer: AdamWOptimizer
    public let schedule: LearningRateSchedule
    public let trainData: BatchSource
    public let valData: BatchSource?
    /// The test split with the config's test views, when the run tests after training.
    public let testData: BatchSource?
    public let checkpoints: CheckpointStore
    public let workDir: URL
    public let globalBatch: Int, microBatch: Int, localBatch: Int
    public let totalSteps: Int
    public private(set) var state = TrainingState()
    let bucketer: GradientBucketer
    let log: MetricsLog
    /// Rank 0's TensorBoard scalars (nil on other ranks, or when the event file cannot be opened).
    var events: TensorBoardLog?
    let options: TrainOptions
    let labelSmoothing: Float
    let seed: UInt64
    let frameFloats: Int
    /// The fp32 GEMM library of this run and why (measured, cached or forced).
    public let gemmChoice: GemmChoice
    /// Rank 0's hold on the work dir for the run's life (one run per work dir).
    let workDirLock: WorkDirLock?
    /// Checkpoints that failed in a row; `checkpoint.max_failures` of them stop the run.
    var checkpointFailures = 0
    /// What the training annotation lists, recorded in checkpoints and compared on resume.
    let trainDataFingerprint: String
    /// `Recognizer.frozenWeightsFingerprint` of the weights this run trains on.
    let frozenFingerprint: String
    /// The classes the head is trained for, recorded in checkpoints (`load_from` reorders by them).
    let classNames: String
    /// Why load_from could not be read when --resume was given (nil: read, or not set).
    let loadFromFailure: String?
    /// Rank 0 set a later best aside on resume and found none of the resumed run's own to put
    /// back: the best top-1 starts over, or best.safetensors would never come back.
    var bestGone = false
    /// Rank 0: the checkpoint --resume continues from ("" when auto found none; nil without --resume).
    var resumeChoice: String?

    /// Validates everything first (config, sizes, files), so a bad run stops before any work.
    public init(config: Config, options: TrainOptions, communicator comm: any Communicator,
                trainData: BatchSource? = nil, valData: BatchSource? = nil, testData: BatchSource? = nil) throws {
        self.config = config; self.options = options; self.comm = comm
        // The lines printed before the work dir exists (CPU, GEMM choice) belong in its log too.
        if options.runLog && comm.rank == 0 { RunLog.hold() }
        // Every rank finds the same: said once, and the ranks stop together.
        let mc = try Launch.together(comm, label: "start-checks") {
            // Data and model keys must fit together when clips are decoded for the model.
            if trainData == nil { try config.checkRelations() }
            let mc = try ModelConfig(config)
            // Before any data is opened: a bf16 run on a CPU without bf16 stops here, in one line.
            if mc.precision == .bf16 { try BF16Support.check() }
            try Self.checkStart(config: config, pretrained: mc.pretrained, ranks: comm.size, resuming: options.resume != nil)
            return mc
        }
        modelConfig = mc
        gemmChoice = try Launch.configureCompute(config: config, threads: options.threads, log: comm.rank == 0, communicator: comm,
                                    workDir: options.workDir ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(config.name))
        globalBatch = config.int("train.batch_size"); microBatch = config.int("train.micro_batch")
        localBatch = globalBatch / comm.size
        seed = UInt64(config.int("train.seed"))
        labelSmoothing = Float(config.double("train.label_smoothing"))
        frameFloats = 3 * mc.numFrames * mc.inputResolution * mc.inputResolution


        // Indexes built for tar shards in a read-only folder (data.format: shards) are kept here.
        let indexCache = (options.workDir ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(config.name))
            .appendingPathComponent("shard-index").path
        // Every rank reads the same annotations: a missing file or a bad line is said once, with
        // the ranks it came from, and they stop together (not once per rank and MPI_Abort's banner).
        let (local, clipFloats, testAfter) = (localBatch, frameFloats, options.testAfter)
        let sources: (train: BatchSource, val: BatchSource?, test: BatchSource?) = try Launch.together(comm, label: "data") {
            let train: BatchSource
            if let trainData { train = trainData } else {
                try WorkDirCheck.batchFitsInMemory(config: config, localBatch: local, clipFloats: clipFloats)
                let loader = try VideoLoader(config: config, split: .train, rank: comm.rank, ranks: comm.size, indexCacheDir: indexCache)
                // model.num_classes left at another dataset's count trains a head of other size without
                // a word (a label map would have been checked against it): said once, as a warning.
                let used = (loader.samples.map(\.label).max() ?? -1) + 1
                if comm.rank == 0 && used < mc.numClasses && config.string("data.classes").isEmpty {
                    Console.error("warning: the labels of \(config.string("data.train")) go up to \(used - 1), model.num_classes is \(mc.numClasses): "
                                  + "classes \(used)…\(mc.numClasses - 1) have no training video (set model.num_classes=\(used) if that is all of them)")
                }
                train = VideoBatchSource(loader: loader)
            }
            // Validation: one video per rank per step, in dataset order.
            var val: BatchSource?
            if let valData { val = valData } else if !config.string("data.val").isEmpty {
                val = VideoBatchSource(loader: try VideoLoader(config: config, split: .val, rank: comm.rank, ranks: comm.size,
                                                               batchSize: comm.size, indexCacheDir: indexCache))
            }
            // Tested after training: the annotation is read now, so a missing one stops the run before its first step.
            if testAfter.contains(.best) && val == nil {
                throw TrainingError.config("--test-best: data.val is empty, so the run validates nothing and keeps no best.safetensors; set data.val, or use --test-last")
            }
            var test: BatchSource?
            if !testAfter.isEmpty {
                test = try testData ?? VideoBatchSource(loader: try VideoLoader(config: config, split: .test, rank: comm.rank, ranks: comm.size,
                                                                                batchSize: comm.size, indexCacheDir: indexCache))
            }
            return (train, val, test)
        }
        self.trainData = sources.train; self.valData = sources.val; self.testData = sources.test

        trainDataFingerprint = self.trainData.fingerprint

        // The work dir once the annotations read well (a bad config leaves no folder behind) and
        // before the model is built or a clip decoded: a second run on it, or a dir that cannot
        // be written, is refused here.
        workDir = options.workDir ?? URL(fileURLWithPath: "work_dirs").appendingPathComponent(config.name)
        if comm.rank == 0 {
            try WorkDirCheck.prepare(workDir)
            let lock = try WorkDirLock.acquire(workDir: workDir, command: options.commandLine.isEmpty
                                               ? ShellQuote.line(CommandLine.arguments) : options.commandLine,
                                               log: { Console.error("warning: \($0)") })
            // An abort (a lost peer) must not leave the lock to a process stuck in MPI_Abort.
            AbortHooks.add { [weak lock] in lock?.release() }
            workDirLock = lock
        } else { workDirLock = nil }
        let stepsPerEpoch = self.trainData.stepsPerEpoch
        let configured = config.int("train.max_steps") > 0 ? config.int("train.max_steps") : config.int("train.epochs") * stepsPerEpoch
        totalSteps = options.maxSteps.map { min($0, configured) } ?? configured
        schedule = LearningRateSchedule(baseLR: config.double("train.lr"), totalSteps: configured,
                                        warmupSteps: config.double("train.warmup_epochs") * Double(stepsPerEpoch),
                                        stepsPerEpoch: config.bool("train.lr_by_epoch") ? stepsPerEpoch : nil)

        let start = try Recognizer.startingPoint(config: mc, seed: seed)
        model = start.model
        if let report = start.pretrained {
            if comm.rank == 0 {
                let unused = report.unexpected.isEmpty ? "" : "; unused: \(report.unexpected.joined(separator: ", "))"
                Console.errorRaw("loaded \(mc.pretrained): \(report.loaded.count) tensors; new (not in the file): \(report.missing.count)\(unused)\n")
            }
        }
        // With --resume the run's own weights come back from the checkpoint: load_from matters
        // only if none is found, so a load_from file gone since is said when that is known.
        if options.resume == nil {
            try Self.applyLoadFrom(config: config, to: model, logs: comm.rank == 0)
            loadFromFailure = nil
        } else {
            do { try Self.applyLoadFrom(config: config, to: model, logs: comm.rank == 0); loadFromFailure = nil } catch {
                loadFromFailure = "load_from: \(Launch.describe(error))"
            }
        }
        classNames = Self.classNamesMetadata(config: config, numClasses: mc.numClasses)
        // Recorded in each checkpoint, and compared on resume: the frozen weights come back from
        // model.pretrained, not from the checkpoint. Taken before bf16 gives their fp32 values back.
        frozenFingerprint = model.frozenWeightsFingerprint() ?? ""
        let pretrainedText = mc.pretrained.isEmpty ? "drawn from train.seed" : "model.pretrained \(mc.pretrained)"
        try RankAgreement.require(comm, [("the frozen weights (\(pretrainedText))", frozenFingerprint),
                                         ("the initial tunable weights (train.seed, model.*)", model.weightsFingerprint(tunable: true) ?? ""),
                                         ("the training videos and labels (data.train)", trainDataFingerprint)])
        // bf16: frozen weights are loaded for good (a resume restores tunable ones only).
        let released = model.releaseFrozenFP32Weights()
        if released > 0 && comm.rank == 0 {
            Console.errorRaw(String(format: "bf16: frozen linear weights are held in bf16 only; %.1f MB of their fp32 values given back\n",
                                    Double(released) / 1e6))
        }
        let betas = config.doubles("train.betas")
        optimizer = AdamWOptimizer(store: model.store, weightDecay: Float(config.double("train.weight_decay")),
                                   rules: ParamwiseRule.official(noDecayKeys: config.strings("train.no_decay_keys"),
                                                                 backboneLRMult: Float(config.double("train.backbone_lr_mult"))),
                                   betas: (Float(betas[0]), Float(betas[1])), eps: Float(config.double("train.eps")))
        let layout = model.store.tunableParameters.map { GradientSlice(name: $0.name, offset: $0.offset, count: $0.count) }
        bucketer = try GradientBucketer(layout: layout, bucketBytes: max(4, Int(config.double("dist.bucket_mb") * 1024 * 1024)),
                                        mode: options.bucketMode, communicator: comm)
        let index = Dictionary(uniqueKeysWithValues: layout.enumerated().map { ($1.name, $0) })
        let bucketer = self.bucketer
        model.gradientsReady = { params in for p in params { if let i = index[p.name] { bucketer.markReady(i) } } }

        checkpoints = CheckpointStore(workDir: workDir, keepLast: config.int("checkpoint.keep_last"))
        // A named --resume file is checked before anything in the work dir moves: a typo, or a
        // checkpoint of another experiment, must not set the run aside (the natural retry,
        // --resume auto, would then find nothing and start over).
        if let path = options.resume, path != "auto" {
            let checkpoints = checkpoints, model = model, fingerprint = trainDataFingerprint, frozen = frozenFingerprint
            _ = try Launch.together(comm, label: "resume-file") {
                do {
                    try Self.checkResumable(path, in: checkpoints, model: model, config: config, trainDataFingerprint: fingerprint,
                                            frozenFingerprint: frozen, worldSize: comm.size)
                } catch let e as TrainingError where !e.isStorage {
                    throw TrainingError.config("--resume \(e.description)")
                } catch let e as SafetensorsError {
                    throw TrainingError.config("--resume \(e.description)")
                }
            }
        }
        if comm.rank == 0 {
            // After load_from is read (it may be one of the files moved below) and before this
            // run writes anything of its own: whatever does not continue the run in the work dir
            // sets that run aside — a new run, a --resume from elsewhere, an auto that finds no
            // checkpoint (a run that died before its first one left records).
            var choice = options.resume
            if choice == "auto" {
                choice = try Self.newestResumable(in: checkpoints, model: model, config: config, trainDataFingerprint: trainDataFingerprint,
                                                  frozenFingerprint: frozenFingerprint, worldSize: comm.size)?.path ?? ""
            }
            resumeChoice = choice
            if let choice, WorkDirCheck.continues(workDir, from: choice) {
                let metadata = try SafetensorsFile(path: choice).metadata
                let step = Int(metadata["step"] ?? "") ?? 0, bestStep = Int(metadata["best_step"] ?? "") ?? -1
                if let moved = try WorkDirCheck.setAsideLaterCheckpoints(checkpoints, after: step, bestStep: bestStep, resuming: choice) {
                    bestGone = moved.bestGone
                    Console.error("warning: resuming at step \(step) of the run in \(workDir.path): what it wrote after that step (\(moved.what)) "
                                  + "is now in \(moved.folder.path), so a later --resume auto and best follow this run, not the one it replaces"
                                  + (moved.best ?? ""))
                }
            } else if let moved = try WorkDirCheck.setAsideEarlierRun(workDir) {
                Console.error("warning: work dir \(workDir.path) held an earlier run; its checkpoints, logs and metrics are now in \(moved.path) "
                              + "and this run starts afresh (to continue that run instead: move them back and give --resume auto)")
            }
            if options.runLog { try Self.startRunLog(workDir: workDir, config: config, options: options, ranks: comm.size) }
            try WorkDirCheck.roomForCheckpoints(workDir, bytesEach: CheckpointStore.estimatedBytes(model: model, config: config.dump()))
        }
        log = try MetricsLog(path: comm.rank == 0 ? workDir.appendingPathComponent("metrics.jsonl") : nil)
    }

    /// What the config must give before any data or weights are read: batch sizes that split
    /// over the ranks, the backbone file, and (unless --resume restores the weights) a load_from
    /// that is a weights file — before the work dir is made.
    static func checkStart(config: Config, pretrained: String, ranks: Int, resuming: Bool) throws {
        let global = config.int("train.batch_size"), micro = config.int("train.micro_batch")
        guard global % ranks == 0 else {
            throw TrainingError.config("train.batch_size \(global) is not divisible by \(ranks) ranks")
        }
        let local = global / ranks
        guard local % micro == 0 || local < micro else {
            throw TrainingError.config("train.batch_size \(global) over \(ranks) ranks gives \(local) clips per rank, not a multiple of train.micro_batch \(micro)")
        }
        if !pretrained.isEmpty && !FileManager.default.fileExists(atPath: pretrained) {
            throw TrainingError.config("model.pretrained: \(pretrained) does not exist (make demo writes work_dirs/demo/backbone.safetensors; tools/export_pretrained.py writes CLIP/timm backbones)")
        }
        let loadFrom = config.string("load_from")
        if !loadFrom.isEmpty && !resuming {
            do { _ = try SafetensorsFile(path: loadFrom) } catch { throw TrainingError.config("load_from: \(Launch.describe(error))") }
        }
    }

    // MARK: - Resume

    /// Restores the newest valid checkpoint (`auto`) or the given one; rank 0 chooses and every
    /// rank loads the same file.
    func resumeIfAsked() throws {
        guard let resume = options.resume else { return }
        var chosen = comm.rank == 0 ? resumeChoice ?? "" : ""
        chosen = String(decoding: comm.broadcast(Array(chosen.utf8)), as: UTF8.self)
        if let loadFromFailure {
            // Every rank read the same (their initial weights agreed), so every rank stops.
            guard !chosen.isEmpty else {
                throw AgreedStop(status: ExitStatus.failure, message: comm.rank != 0 ? nil
                                 : "\(loadFromFailure) (--resume \(resume) found no checkpoint to continue, so the run would start from it)")
            }
            if comm.rank == 0 { log.message("warning: \(loadFromFailure); not needed, --resume restores the run's weights") }
        }
        guard !chosen.isEmpty else {
            if comm.rank == 0 {
                // The <config>.yaml a run leaves in its work dir, given back without --work-dir, trains
                // in work_dirs/<name>: point at the run it came from.
                let configDir = URL(fileURLWithPath: config.source).deletingLastPathComponent().standardizedFileURL
                let hint = configDir != workDir.standardizedFileURL && !CheckpointStore(workDir: configDir, keepLast: 0).stepFiles().isEmpty
                    ? " (the config's own folder \(configDir.path) holds checkpoints: add --work-dir \(configDir.path) to continue that run)" : ""
                log.message("resume auto: no valid checkpoint in \(checkpoints.directory.path); starting from step 0" + hint)
            }
            return
        }
        // What the checkpoint means is checked before its weights are read; restore validates them.
        let check = try ResumeCheck(saved: try SafetensorsFile(path: chosen).metadata, current: config, trainDataFingerprint: trainDataFingerprint,
                                    frozenFingerprint: frozenFingerprint, worldSize: comm.size, path: chosen)
        if comm.rank == 0 { for line in check.allowedChanges { log.message("resume: \(line)") } }
        let (restored, _) = try checkpoints.restore(URL(fileURLWithPath: chosen), model: model, optimizer: optimizer)
        state = restored
        if comm.allreduce([bestGone ? 1 : 0], op: .max, label: "best-gone")[0] > 0 { state.bestTop1 = -1; state.bestStep = -1 }
        if comm.rank == 0 {
            log.message("resumed from \(chosen) at step \(state.step) (epoch \(state.loggedEpoch))")
            do {
                let dropped = try log.keepRecords(upTo: state.step)
                if dropped > 0 { log.message("metrics.jsonl: removed \(dropped) record(s) after step \(state.step), where this run continues") }
            } catch {
                log.message("warning: metrics.jsonl keeps records after step \(state.step) (they will appear twice): \(error)")
            }
        }
    }

    /// What a checkpoint means is checked before its weights are read (a changed model would
    /// otherwise show up as missing tensors), then that it holds every tunable weight and moment.
    @discardableResult
    static func checkResumable(_ path: String, in checkpoints: CheckpointStore, model: Recognizer, config: Config,
                               trainDataFingerprint: String, frozenFingerprint: String, worldSize: Int) throws -> ResumeCheck {
        let header = try SafetensorsFile(path: path)
        let check = try ResumeCheck(saved: header.metadata, current: config, trainDataFingerprint: trainDataFingerprint,
                                    frozenFingerprint: frozenFingerprint, worldSize: worldSize, path: path)
        _ = try checkpoints.validate(URL(fileURLWithPath: path), model: model)
        return check
    }

    /// The newest step file that reads back whole. Damaged ones are reported and skipped; one
    /// written for another experiment is refused, never skipped (starting over would mix two runs).
    static func newestResumable(in checkpoints: CheckpointStore, model: Recognizer, config: Config, trainDataFingerprint: String,
                                frozenFingerprint: String, worldSize: Int) throws -> URL? {
        for file in checkpoints.stepFiles() {
            do {
                let header = try SafetensorsFile(path: file.path)
                if header.metadata["format"] == CheckpointStore.format, let text = header.metadata["config"], (try? Config(dump: text)) != nil {
                    _ = try ResumeCheck(saved: header.metadata, current: config, trainDataFingerprint: trainDataFingerprint,
                                        frozenFingerprint: frozenFingerprint, worldSize: worldSize, path: file.path)
                }
            } catch let e as TrainingError {
                throw e
            } catch {
                checkpoints.log("checkpoint \(file.path) skipped: \(error)")
                continue
            }
            do { _ = try checkpoints.validate(file, model: model); return file } catch {
                checkpoints.log("checkpoint \(file.path) skipped: \(error)")
            }
        }
        return nil
    }

    // MARK: - Loop

    public func run() throws -> TrainSummary {
        try resumeIfAsked()
        if comm.rank == 0 { openEvents() }
        var summary = TrainSummary(state: state)
        let stepsPerEpoch = trainData.stepsPerEpoch
        let ckptInterval = config.int("checkpoint.interval"), evalInterval = config.int("eval.interval")
        let logInterval = config.int("train.log_interval"), evalByEpoch = config.bool("eval.by_epoch")
        let ckptByEpoch = config.bool("checkpoint.by_epoch")
        let runStart = Date()
        let startStep = state.step
        if comm.rank == 0 {
            log.message("training \(config.name)\(modelConfig.precision == .bf16 ? " in bf16" : ""): \(comm.size) rank(s) × \(Threads.count) thread(s), global batch \(globalBatch) (micro \(min(microBatch, localBatch))), \(totalSteps) steps, \(model.tunableParameterCount) tunable of \(model.totalParameters) parameters; work dir \(workDir.path)")
        }
        if comm.rank == 0 && state.step >= totalSteps {
            let limit = options.maxSteps == totalSteps ? "--max-steps \(totalSteps)" : "the run's \(totalSteps) steps"
            log.message("nothing to train: resumed at step \(state.step), \(state.step == totalSteps ? "already" : "past") \(limit)")
        }
        // The validation a stop signal cut short runs before the next step, on the same weights.
        if state.evalPending {
            state.evalPending = false
            if let valData {
                let isBest = try validate(valData, &summary)
                // Stopped again: the checkpoint on disk still says the validation is pending.
                if state.evalPending { summary.state = state; return summary }
                try saveCheckpoint(isBest: isBest, mustSucceed: false)
            }
        }
        while state.step < totalSteps {
            let times = try trainStep(&summary)
            summary.stepTimes.append(times)
            state.step += 1
            state.stepInEpoch += 1
            if state.stepInEpoch == stepsPerEpoch { state.epoch += 1; state.stepInEpoch = 0 }
            let done = state.step == totalSteps

            if comm.rank == 0 && (state.step % logInterval == 0 || done || state.step == startStep + 1) {
                let elapsed = Date().timeIntervalSince(runStart)
                let perStep = elapsed / Double(state.step - startStep)
                let clipsPerSecond = Double(globalBatch) / max(times.total, 1e-9)
                // Rank 0's peak resident memory so far, as mmaction2's log shows its GPU's `memory` (MB).
                let memoryMB = ProcessMemory.sample().peakRSSBytes / (1 << 20)
                log.progress(String(format: "step %d/%d  epoch %d  loss %.4f  top1 %.3f  lr %.3e  %.2f clips/s  data %.2fs/step %.2fs  mem %d MB  ETA %@",
                                    state.step, totalSteps, state.loggedEpoch, summary.lastLoss, summary.lastTop1, schedule.lr(at: state.step - 1),
                                    clipsPerSecond, times.data, times.total, memoryMB, formatDuration(perStep * Double(totalSteps - state.step))))
                var record: [String: Any] = ["mode": "train", "step": state.step, "epoch": state.loggedEpoch,
                                             "iter": state.stepInEpoch == 0 ? stepsPerEpoch : state.stepInEpoch, "loss": Double(summary.lastLoss),
                                             "top1": summary.lastTop1, "top5": summary.lastTop5,
                                             "lr": schedule.lr(at: state.step - 1), "clips_per_s": clipsPerSecond, "time": times.total,
                                             "data_time": times.data, "memory_mb": memoryMB, "skipped": summary.skipEvents,
                                             "bytes_allreduced": times.bytesAllreduced]
                if options.profile || config.bool("profile") {
                    record["forward_s"] = times.forward; record["backward_s"] = times.backward
                    record["allreduce_wait_s"] = times.allreduceWait; record["allreduce_pass_s"] = times.allreducePass
                    record["optimizer_s"] = times.optimizer; record["activation_bytes"] = model.keptBytes
                    record["scratch_bytes"] = model.scratchBytes; record["peak_rss_bytes"] = times.peakRSSBytes
                    for (key, seconds) in times.kernelSeconds { record["kernel_\(key)_s"] = seconds }
                }
                log.record(record)
                events?.record(record)
            }
            var isBest = false
            let evalDue = evalInterval > 0 && (evalByEpoch ? state.stepInEpoch == 0 && state.epoch % evalInterval == 0
                                                           : state.step % evalInterval == 0)
            if evalDue || (done && valData != nil) {
                if let valData { isBest = try validate(valData, &summary) }
            }
            // Every rank must agree to stop on a signal, so the signal number is reduced.
            let stopSignal = Int32(comm.allreduce([Double(options.stopSignal())], op: .max, label: "stop-flag")[0])
            let ckptDue = ckptByEpoch ? state.stepInEpoch == 0 && state.epoch % ckptInterval == 0 : state.step % ckptInterval == 0
            if ckptDue || done || stopSignal != 0 || isBest {
                try saveCheckpoint(isBest: isBest, mustSucceed: done || stopSignal != 0)
            }
            if stopSignal != 0 {
                summary.stopSignal = stopSignal
                if comm.rank == 0 {
                    log.message("stopped by signal \(stopSignal) at step \(state.step); checkpoint written; exit status \(ExitStatus.stopped(by: stopSignal)) (resume with --resume auto)")
                }
                break
            }
        }
        // Every rank's bad files, gathered so the coordinator's list is the whole run's.
        var skippedFiles: [String: String] = [:]
        let mine = (try? JSONSerialization.data(withJSONObject: trainData.skipped)).map { [UInt8]($0) } ?? []
        for blob in comm.allgather(mine, label: "skipped-files") {
            if let d = try? JSONSerialization.jsonObject(with: Data(blob)) as? [String: String] { skippedFiles.merge(d) { a, _ in a } }
        }
        if comm.rank == 0 && !skippedFiles.isEmpty {
            log.message("skipped \(summary.skipEvents) bad samples in \(skippedFiles.count) files:")
            for (f, why) in skippedFiles.sorted(by: { $0.key < $1.key }) { log.message("  \(f): \(why)") }
        }
        summary.state = state
        // A run stopped by a signal is not complete: it is tested when a resume completes it.
        if summary.stopSignal == 0 { (summary.tests, summary.stopSignal) = try testAfterTraining() }
        return summary
    }

    /// Validates the current weights, logs and records the result; true when it is the best so
    /// far. A stop signal during it sets `state.evalPending` and `summary.stopSignal` instead (the
    /// checkpoint this step ends with records it, so the resumed run validates first) and returns false.
    func validate(_ valData: BatchSource, _ summary: inout TrainSummary) throws -> Bool {
        let result: EvalResult
        do { result = try evaluate(valData) } catch let stopped as Evaluator.Stopped {
            state.evalPending = true
            summary.stopSignal = stopped.signal
            if comm.rank == 0 {
                log.message("validation at step \(state.step) stopped by signal \(stopped.signal); it runs first when the run resumes")
            }
            return false
        }
        summary.lastEval = result
        var isBest = false
        if result.top1 > state.bestTop1 { state.bestTop1 = result.top1; state.bestStep = state.step; isBest = true }
        if comm.rank == 0 {
            log.message(String(format: "eval at step %d: top1 %.4f  top5 %.4f  mean class %.4f  (%d videos, %d skipped)",
                               state.step, result.top1, result.top5, result.meanClassAccuracy, result.videos, result.skipped))
            let record: [String: Any] = ["mode": "val", "step": state.step, "epoch": state.loggedEpoch,
                                         "iter": state.stepInEpoch == 0 ? trainData.stepsPerEpoch : state.stepInEpoch, "top1": result.top1,
                                         "top5": result.top5, "mean_class_accuracy": result.meanClassAccuracy,
                                         "videos": result.videos, "skipped": result.skipped]
            log.record(record)
            events?.record(record)
        }
        return isBest
    }

    /// The TensorBoard event file, continuing after the step the run starts from (events of later
    /// steps left by a run that died after its last checkpoint are removed first). A failure is
    /// reported and the run goes on without events, as it would without metrics records.
    func openEvents() {
        do { events = try TensorBoardLog(workDir: workDir, continuingAfter: state.step, message: { [log] in log.message($0) }) } catch {
            log.message("error: TensorBoard events are not written in this run: \(error); training goes on (metrics.jsonl has the same numbers)")
        }
    }

    /// Rank 0 writes the checkpoint; every rank learns whether the run can go on. A failure is
    /// retried at the next interval; `checkpoint.max_failures` in a row, or a failed final (or
    /// signal) checkpoint, stop the run with exit status 74: steps that cannot be kept are not computed.
    func saveCheckpoint(isBest: Bool, mustSucceed: Bool) throws {
        var failure = ""
        var status = ExitStatus.storage
        if comm.rank == 0, let lock = workDirLock, !lock.isHeld {
            // Another run took the work dir over (this one stalled past the stale limit): writing
            // now would mix two runs' checkpoints.
            failure = "work dir \(workDir.path) was taken over by another run (\(WorkDirLock.inspect(workDir: workDir)?.description ?? "owner unknown")); this run stops without writing"
            status = ExitStatus.failure
        } else if comm.rank == 0 {
            do {
                try checkpoints.save(model: model, optimizer: optimizer, state: state, config: config.dump(), worldSize: comm.size,
                                     isBest: isBest, extraMetadata: ["train_data": trainDataFingerprint, "frozen_weights": frozenFingerprint,
                                                                     "classes": classNames])
                checkpointFailures = 0
            } catch {
                checkpointFailures += 1
                let newest = checkpoints.stepFiles().first.map { " (newest complete checkpoint: \($0.path))" } ?? " (no checkpoint on disk yet)"
                failure = "checkpoint at step \(state.step) not written: \(error)" + newest
                log.message("error: \(failure); \(checkpointFailures) of checkpoint.max_failures \(config.int("checkpoint.max_failures")) in a row")
            }
        }
        let limit = config.int("checkpoint.max_failures")
        let stopping = !failure.isEmpty && (mustSucceed || checkpointFailures >= limit || status != ExitStatus.storage)
        let agreed = Int32(comm.allreduce([stopping ? Double(status) : 0], op: .max, label: "checkpoint-ok")[0])
        guard agreed != 0 else { return }
        // Every rank leaves with the same status, without aborting the job; rank 0 says why.
        if status != ExitStatus.storage { throw AgreedStop(status: agreed, message: comm.rank == 0 ? failure : nil) }
        throw AgreedStop(status: agreed, message: comm.rank != 0 ? nil : mustSucceed
                         ? "the checkpoint of step \(state.step) could not be written, so this run is not complete: \(failure)"
                         : "\(limit) checkpoints in a row could not be written; stopping instead of computing steps that cannot be kept: \(failure)")
    }

    /// One optimizer step.
    func trainStep(_ summary: inout TrainSummary) throws -> StepTimes {
        var t = StepTimes()
        let profiling = options.profile || config.bool("profile")
        if profiling { StepProfile.reset(); StepProfile.enabled = true }
        defer { StepProfile.enabled = false }
        let t0 = Date()
        let batch = try trainData.batch(epoch: state.epoch, step: state.stepInEpoch)
        t.data = Date().timeIntervalSince(t0)
        let K = modelConfig.numClasses
        model.store.zeroGrads()
        let micro = min(microBatch, localBatch)
        let chunks = (localBatch + micro - 1) / micro
        var lossSum = 0.0, top1Hits = 0.0, top5Hits = 0.0
        for c in 0..<chunks {
            let lo = c * micro, b = min(micro, localBatch - lo)
            // Sample keys = positions in the global batch: the same sample draws the same masks
            // whatever the rank count or micro-batch split.
            let keys = (0..<b).map { UInt64(comm.rank * localBatch + lo + $0) }
            let ctx = PassContext(batch: b, training: true, seed: seed, step: UInt64(state.step), sampleKeys: keys)
            let tf = Date()
            let logits = try model.forward(video: batch.video.data + lo * frameFloats, context: ctx)
            t.forward += Date().timeIntervalSince(tf)
            let labels = Array(batch.labels[lo..<(lo + b)])
            let loss = labels.withUnsafeBufferPointer {
                crossEntropyForward(logits: logits.data, labels: $0.baseAddress!, batch: b, classes: K, labelSmoothing: labelSmoothing)
            }
            lossSum += Double(loss) * Double(b)
            for i in 0..<b {
                let top = topLabels(Array(UnsafeBufferPointer(start: logits.data + i * K, count: K)), k: min(5, K))
                if top.first == labels[i] { top1Hits += 1 }
                if top.contains(labels[i]) { top5Hits += 1 }
            }
            let dLogits = Tensor([b, K])
            labels.withUnsafeBufferPointer {
                crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: b, classes: K,
                                     labelSmoothing: labelSmoothing, gradScale: Float(b) / Float(localBatch))
            }
            if c == chunks - 1 { bucketer.begin(gradients: model.store.tunableGrads.data) }
            let tb = Date()
            try model.backward(dLogits: dLogits.data)
            t.backward += Date().timeIntervalSince(tb)
        }
        let stats = bucketer.finish()
        t.allreduceWait = stats.waitSeconds; t.allreducePass = stats.passSeconds; t.bytesAllreduced = stats.bytesReduced
        let reduced = comm.allreduce([lossSum, Double(localBatch), lossSum.isFinite ? 0 : 1, Double(trainData.skipEvents), top1Hits, top5Hits],
                                     op: .sum, label: "loss")
        let loss = Float(reduced[0] / reduced[1])
        summary.lastLoss = loss
        summary.lastTop1 = reduced[4] / reduced[1]; summary.lastTop5 = reduced[5] / reduced[1]
        summary.skipEvents = Int(reduced[3])
        if reduced[2] > 0 || !loss.isFinite { throw TrainingError.nonFinite(step: state.step + 1, loss: loss) }
        let to = Date()
        let clip = Float(config.double("train.clip_grad"))
        if clip > 0 { clipGradientNorm(model.store.tunableGrads, maxNorm: clip) }
        let wroteNonFinite = optimizer.update(lr: Float(schedule.lr(at: state.step)))
        // A finite loss can still come with non-finite gradients (or an update beyond Float's
        // range): stop before such weights or moments can reach a checkpoint. The update says
        // whether it wrote any; only then are the tensors searched for the one to name.
        if wroteNonFinite, let bad = firstNonFinite() { throw TrainingError.nonFiniteState(step: state.step + 1, tensor: bad) }
        t.optimizer = Date().timeIntervalSince(to)
        t.total = Date().timeIntervalSince(t0)
        if profiling {
            let m = ProcessMemory.sample()
            t.rssBytes = m.rssBytes; t.peakRSSBytes = m.peakRSSBytes
            for phase in StepProfile.Phase.allCases { t.kernelSeconds[phase.key] = StepProfile.seconds(phase) }
        }
        return t
    }

    /// The first tunable weight or AdamW moment holding an inf or NaN, if any. Ranks hold the
    /// same values after the allreduce, so they agree without communicating.
    func firstNonFinite() -> String? {
        // An element is inf or NaN when its exponent bits are all ones. An integer max over them
        // vectorises (a float sum of x·0 is a serial chain: 15 ms a step over ViT-B's 33 M values).
        func finite(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Bool {
            var largest: UInt32 = 0
            for i in 0..<n { largest = max(largest, x[i].bitPattern & 0x7F80_0000) }
            return largest != 0x7F80_0000
        }
        let n = model.store.tunableCount
        guard !finite(model.store.tunableValues.data, n) || !finite(optimizer.m.data, n) || !finite(optimizer.v.data, n) else { return nil }
        for p in model.store.tunableParameters {
            for (prefix, base) in [("", model.store.tunableValues.data), ("optimizer.exp_avg.", optimizer.m.data),
                                   ("optimizer.exp_avg_sq.", optimizer.v.data)] where !finite(base + p.offset, p.count) {
                return prefix + p.name
            }
        }
        return "the tunable buffer"
    }

    // MARK: - Evaluation

    public func evaluate(_ source: BatchSource) throws -> EvalResult {
        try Evaluator(model: model, comm: comm, numClasses: modelConfig.numClasses, seed: seed, averaging: ClipAveraging(config: config),
                      stopSignal: options.stopSignal).run(source)
    }
}
