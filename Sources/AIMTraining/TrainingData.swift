import AIMConfig
import AIMData
import AIMTensor
import Foundation

/// One rank's slice of one global batch.
public struct LocalBatch {
    public let video: Tensor        // [views·B, 3, T, H, W]
    public let labels: [Int]
    public let viewsPerSample: Int
    public let isPadding: [Bool]    // duplicates that only fill the last batch (dropped in evaluation)
    /// Dataset index of each sample (empty for sources without a dataset).
    public let indices: [Int]
    /// Samples that stand in for a bad video the sampler asked for (training goes on with them, as
    /// mmaction2's retry does; evaluation must not count them: they would be duplicates).
    public let isReplacement: [Bool]
    public init(video: Tensor, labels: [Int], viewsPerSample: Int, isPadding: [Bool], indices: [Int] = [], isReplacement: [Bool]? = nil) {
        self.video = video; self.labels = labels; self.viewsPerSample = viewsPerSample; self.isPadding = isPadding
        self.indices = indices
        self.isReplacement = isReplacement ?? Array(repeating: false, count: labels.count)
    }
}

/// Where batches come from: real videos, or random tensors of the config's shape (profiling).
public protocol BatchSource: AnyObject {
    var stepsPerEpoch: Int { get }
    func batch(epoch: Int, step: Int) throws -> LocalBatch
    /// Files skipped so far (bad videos), with the reason for each.
    var skipped: [String: String] { get }
    /// Bad-file draws in the batches returned so far (not those prefetched ahead).
    var skipEvents: Int { get }
    /// What the source holds, to tell on resume whether it is the same data: for videos the count
    /// and a hash of the file names and labels in annotation order (so a moved data root matches).
    var fingerprint: String { get }
}

extension BatchSource {
    /// Sources without a dataset behind them have nothing to compare on resume.
    public var fingerprint: String { "" }
}

/// Batches decoded from the dataset by the `AIMData` loader, prefetched in background threads.
public final class VideoBatchSource: BatchSource {
    public let loader: VideoLoader
    private var prefetching = false

    public init(loader: VideoLoader) { self.loader = loader }
    public var stepsPerEpoch: Int { loader.stepsPerEpoch }

    public func batch(epoch: Int, step: Int) throws -> LocalBatch {
        // The prefetcher runs ahead in order; a jump (resume, new epoch) restarts it there.
        if !prefetching || loader.position != LoaderPosition(epoch: epoch, step: step) {
            loader.start(at: LoaderPosition(epoch: epoch, step: step))
            prefetching = true
        }
        guard let b = try loader.next(), b.epoch == epoch, b.step == step else {
            throw TrainingError.data("the loader did not return step \(step) of epoch \(epoch)")
        }
        // Counted as the batches are used: the loader's running count includes the batches it
        // prefetched, so a step's figure depended on data.workers.
        skipEvents += b.skipEvents
        return LocalBatch(video: b.data, labels: b.labels, viewsPerSample: b.viewsPerSample, isPadding: b.isPadding, indices: b.loaded,
                          isReplacement: zip(b.requested, b.loaded).map { $0 != $1 })
    }

    public var skipped: [String: String] { loader.skipReport.files }
    public private(set) var skipEvents = 0
    public var fingerprint: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for s in loader.samples { h = fnv1a64((URL(fileURLWithPath: s.path).lastPathComponent + "\t\(s.label)\n").utf8, seed: h) }
        return "videos=\(loader.samples.count);fnv1a64:" + String(h, radix: 16)
    }
    deinit { loader.stop() }
}

/// Random clips and labels of a config's shape, keyed by (epoch, step, rank): no dataset needed.
public final class RandomBatchSource: BatchSource {
    let shape: [Int]
    let classes: Int
    let localBatch: Int
    let rank: Int
    public let stepsPerEpoch: Int

    public init(localBatch: Int, frames: Int, size: Int, classes: Int, rank: Int, stepsPerEpoch: Int = 1000) {
        shape = [localBatch, 3, frames, size, size]
        self.classes = classes; self.localBatch = localBatch; self.rank = rank; self.stepsPerEpoch = stepsPerEpoch
    }

    /// Values per keyed generator: blocks drawn in parallel, the same values on any thread count.
    /// Why: one Box–Muller draw (a log and a cosine) per value on one core took 0.13 s of each
    /// measured AIM Swin-B step (32×224²), time a real loader spends decoding on its own threads.
    static let block = 1 << 16

    public func batch(epoch: Int, step: Int) -> LocalBatch {
        let t = Tensor(shape), n = t.count, data = t.data
        let keys = (UInt64(epoch), UInt64(step), UInt64(rank))
        Threads.parallelFor((n + Self.block - 1) / Self.block) { blocks in
            for b in blocks {
                var g = RandomGenerator(keys: keys.0, keys.1, keys.2, 0x52414E44, UInt64(b))
                for i in (b * Self.block)..<min(n, (b + 1) * Self.block) { data[i] = Float(g.normal()) }
            }
        }
        var g = RandomGenerator(keys: keys.0, keys.1, keys.2, 0x4C41_4245)
        let labels = (0..<localBatch).map { _ in g.int(below: classes) }
        return LocalBatch(video: t, labels: labels, viewsPerSample: 1, isPadding: Array(repeating: false, count: localBatch))
    }

    public var skipped: [String: String] { [:] }
    public var skipEvents: Int { 0 }
    public var fingerprint: String { "random:\(shape.map(String.init).joined(separator: "x")):\(classes)" }
}
