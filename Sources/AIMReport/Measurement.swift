import Foundation

/// Bytes the run's own accounting says it holds, by category (rank 0's process).
public struct MemoryAccounting: Codable, Sendable, Equatable {
    public var frozenParameters = 0
    public var tunableParameters = 0
    public var gradients = 0          // one float per tunable parameter
    public var optimizerState = 0     // AdamW exp_avg + exp_avg_sq
    public var activations = 0        // kept between forward and backward, in memory of their own (Recognizer.keptBytes − lentBytes: the rest sits in the gradients)
    public var workspace = 0          // scratch arena + buffers no backward reads (Recognizer.scratchBytes + unkeptBytes)
    public var inputBatch = 0         // this rank's clips [B, 3, T, H, W]
    public init() {}

    public var total: Int { frozenParameters + tunableParameters + gradients + optimizerState + activations + workspace + inputBatch }

    /// (name, bytes) in the order the charts stack them.
    public var categories: [(String, Int)] {
        [("frozen params", frozenParameters), ("tunable params", tunableParameters), ("gradients", gradients),
         ("optimizer state", optimizerState), ("activations kept", activations), ("workspace", workspace),
         ("input batch", inputBatch)]
    }
}

/// Seconds of one measured optimizer step, by phase (the trainer's `StepTimes`).
public struct StepRecord: Codable, Sendable, Equatable {
    public var data = 0.0, forward = 0.0, backward = 0.0, allreduceWait = 0.0, allreducePass = 0.0, optimizer = 0.0, total = 0.0
    public var bytesAllreduced = 0
    /// Seconds in each kind of kernel (the trainer's `kernelSeconds`, by `StepProfile.Phase.key`).
    public var kernels: [String: Double]? = nil
    public init() {}
    /// Time the allreduce ran while backward was still computing (the part hidden by overlap).
    public var allreduceOverlap: Double { max(0, allreducePass - allreduceWait) }
    /// Loss, clipping, zeroing and bookkeeping: the rest of the step.
    public var other: Double { max(0, total - data - forward - backward - allreduceWait - optimizer) }
}

/// Everything `aim-report` measured for one configuration (one row of report.csv).
public struct EfficiencyMeasurement: Codable, Sendable {
    public var label: String
    public var configPath: String
    public var overrides: [String]
    /// The swept variable and its value for this row ("" when not sweeping).
    public var sweepKey = "", sweepValue = ""
    public var ranks = 1, threads = 1
    /// The fp32 GEMM library the run used and why (the `gemm: auto` probe, as a user's run).
    public var gemmLibrary = "", gemmReason = ""
    public var batchPerRank = 1, microBatch = 1
    public var architecture = "", tune = "", adapters: [String] = []
    public var numFrames = 0, inputResolution = 0, width = 0, layers = 0, patchSize = 0, numClasses = 0
    public var adapterLayers = "all", numTAdapter = 1

    public var totalParams = 0, tunableParams = 0
    public var flopsPerView = 0          // fvcore convention (multiply-accumulates), one view
    public var views = 1                 // test views: frames are inside a view; clips × crops

    public var memory = MemoryAccounting()
    public var baselineRSSBytes = 0      // before the trainer is built (after malloc_trim)
    public var rssAfterInitBytes = 0     // model, optimizer and buffers built, no step yet
    public var peakRSSBytes = 0          // VmHWM over the run (max over ranks)
    public var peakRSSResetWorked = true // VmHWM was reset before the run (else it includes earlier work)

    public var warmupSteps = 1
    public var steps: [StepRecord] = []
    public var allreduceBytesPerStep = 0
    public var checkpointBytes = 0

    public init(label: String, configPath: String, overrides: [String]) {
        self.label = label; self.configPath = configPath; self.overrides = overrides
    }

    public var rssGrowthBytes: Int { max(0, peakRSSBytes - baselineRSSBytes) }
    public var gflopsPerView: Double { Double(flopsPerView) / 1e9 }
    /// GFLOPs of one test (all views), truncated as the paper does (202.32 × 3 → 606).
    public var gflopsPerTest: Double { (gflopsPerView * Double(views)).rounded(.down) }
    /// Checkpoint = tunable weights + AdamW's two moments, float32, plus a header.
    public var expectedCheckpointPayload: Int { 3 * 4 * tunableParams }

    public func median(_ f: (StepRecord) -> Double) -> Double { Statistics.median(steps.map(f)) }
    public var stepTimeSeconds: Double { median(\.total) }
}

public enum Statistics {
    public static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
