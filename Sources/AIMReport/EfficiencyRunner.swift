import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation

/// One configuration to measure: a config file, its `--set` overrides, how many steps.
public struct MeasureRequest: Codable, Sendable {
    public var configPath: String
    public var overrides: [String]
    public var steps: Int
    public var warmupSteps = 1
    public var threads: Int?
    public var label: String
    public var sweepKey = "", sweepValue = ""

    public init(configPath: String, overrides: [String] = [], steps: Int, threads: Int? = nil, label: String? = nil) {
        self.configPath = configPath; self.overrides = overrides; self.steps = steps; self.threads = threads
        self.label = label ?? MeasureRequest.defaultLabel(configPath: configPath, overrides: overrides)
    }

    /// The config file's name, plus the overrides that are not about batch size.
    public static func defaultLabel(configPath: String, overrides: [String]) -> String {
        let base = URL(fileURLWithPath: configPath).deletingPathExtension().lastPathComponent
        // model.pretrained is forced empty in every measurement: naming it only lengthened labels.
        let shown = overrides.filter { !$0.hasPrefix("train.batch_size=") && !$0.hasPrefix("train.micro_batch=") && !$0.hasPrefix("model.pretrained=") }
        return shown.isEmpty ? base : base + " [" + shown.joined(separator: ", ") + "]"
    }
}

/// Measures training steps of one configuration in this process, with the real trainer.
public enum EfficiencyRunner {
    /// Forced on every measurement: random weights (no pretrained file needed), random clips of
    /// the config's shape, no evaluation, and one checkpoint written at the end (its size is measured).
    public static let forcedOverrides = ["model.pretrained=\"\"", "data.val=\"\"", "eval.interval=0",
                                         "checkpoint.interval=100000000", "checkpoint.keep_last=1"]

    /// Runs `warmupSteps + steps` optimizer steps on random data on every rank of `comm`;
    /// all ranks return the same numbers except the process-local ones (rank 0's).
    public static func measure(_ request: MeasureRequest, communicator comm: any Communicator) throws -> EfficiencyMeasurement {
        guard request.steps >= 1 else { throw TrainingError.config("--steps must be at least 1, got \(request.steps)") }
        let config = try Config.load(path: request.configPath, overrides: request.overrides + forcedOverrides)
        let mc = try ModelConfig(config)
        let globalBatch = config.int("train.batch_size")
        guard globalBatch % comm.size == 0 else {
            throw TrainingError.config("\(request.configPath): train.batch_size \(globalBatch) is not divisible by \(comm.size) ranks")
        }
        let localBatch = globalBatch / comm.size

        let workDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("aim-report-\(getpid())-\(UUID().uuidString.prefix(8))")
        defer { if comm.rank == 0 { try? FileManager.default.removeItem(at: workDir) } }

        // Baseline: freed heap returned to the kernel, high-water mark reset to "now".
        ProcessMemory.trim()
        let resetWorked = ProcessMemory.resetPeak()
        let baseline = ProcessMemory.sample().rssBytes

        var options = TrainOptions()
        options.workDir = workDir
        options.maxSteps = request.warmupSteps + request.steps
        options.threads = request.threads
        options.profile = true
        let source = RandomBatchSource(localBatch: localBatch, frames: mc.numFrames, size: mc.inputResolution,
                                       classes: mc.numClasses, rank: comm.rank)
        let trainer = try Trainer(config: config, options: options, communicator: comm, trainData: source, valData: nil)
        let afterInit = ProcessMemory.sample().rssBytes
        let summary = try trainer.run()
        let peak = ProcessMemory.sample().peakRSSBytes
        let peakMax = Int(comm.allreduce([Double(peak)], op: .max, label: "report-peak-rss")[0])

        var m = EfficiencyMeasurement(label: request.label, configPath: request.configPath, overrides: request.overrides)
        m.sweepKey = request.sweepKey; m.sweepValue = request.sweepValue
        m.ranks = comm.size; m.threads = Threads.count
        m.gemmLibrary = Gemm.library.rawValue; m.gemmReason = trainer.gemmChoice.reason
        m.batchPerRank = localBatch; m.microBatch = min(config.int("train.micro_batch"), localBatch)
        m.architecture = "\(mc.architecture)"; m.tune = mc.tune.rawValue
        m.adapters = mc.adapters.sorted().map(\.rawValue)
        m.numFrames = mc.numFrames; m.inputResolution = mc.inputResolution; m.width = mc.width
        m.layers = mc.layers; m.patchSize = mc.patchSize; m.numClasses = mc.numClasses
        if mc.isSwin {   // the Swin sizes in the same fields: stage-1 width, blocks, spatial patch
            m.width = mc.embedDim; m.layers = mc.depths.reduce(0, +); m.patchSize = mc.swinPatch[1]
        }
        m.adapterLayers = mc.adapterLayers.rawValue; m.numTAdapter = mc.numTAdapter

        let model = trainer.model
        m.totalParams = model.totalParameters
        m.tunableParams = model.tunableParameterCount
        m.flopsPerView = model.flopsPerView
        m.views = config.int("data.test_num_clips") * (config.string("data.test_crop") == "three" ? 3 : 1)

        var acc = MemoryAccounting()
        // model.precision bf16 adds bf16 copies of the linear weights and the operand buffers.
        acc.frozenParameters = model.store.frozenFP32Bytes + model.store.bf16CopyBytes(tunable: false)
        acc.tunableParameters = model.store.tunableValues.bytes + model.store.bf16CopyBytes(tunable: true)
        acc.gradients = model.store.tunableGrads.bytes
        acc.optimizerState = trainer.optimizer.m.bytes + trainer.optimizer.v.bytes
        acc.activations = model.keptBytes - model.lentBytes   // lent bytes are counted once, as gradients
        acc.workspace = model.scratchBytes + model.unkeptBytes + bf16OperandBytes   // temporaries and what no backward reads
        acc.inputBatch = localBatch * 3 * mc.numFrames * mc.inputResolution * mc.inputResolution * MemoryLayout<Float>.stride
        m.memory = acc
        m.baselineRSSBytes = baseline
        m.rssAfterInitBytes = afterInit
        m.peakRSSBytes = comm.rank == 0 ? max(peakMax, peak) : peak
        m.peakRSSResetWorked = resetWorked

        m.warmupSteps = request.warmupSteps
        m.steps = summary.stepTimes.dropFirst(request.warmupSteps).map { t in
            var r = StepRecord()
            r.data = t.data; r.forward = t.forward; r.backward = t.backward; r.allreduceWait = t.allreduceWait
            r.allreducePass = t.allreducePass; r.optimizer = t.optimizer; r.total = t.total; r.bytesAllreduced = t.bytesAllreduced
            r.kernels = t.kernelSeconds
            return r
        }
        m.allreduceBytesPerStep = m.steps.last?.bytesAllreduced ?? 0
        if comm.rank == 0 {
            let attrs = try? FileManager.default.attributesOfItem(atPath: trainer.checkpoints.latest.path)
            m.checkpointBytes = (attrs?[.size] as? Int) ?? 0
            if m.checkpointBytes == 0 {
                throw TrainingError.checkpoint(path: trainer.checkpoints.latest.path, reason: "no checkpoint was written by the measured run")
            }
        }
        return m
    }
}
