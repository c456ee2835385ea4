import AIMTensor
import Foundation

/// Where a loader stands in training: the next batch it will return. Saving this in a
/// checkpoint and passing it to `start(at:)` resumes the exact same sequence of batches.
public struct LoaderPosition: Codable, Equatable, Sendable {
    public var epoch: Int
    public var step: Int
    public init(epoch: Int, step: Int) { self.epoch = epoch; self.step = step }
}

/// One rank's share of one global batch.
public struct Batch: @unchecked Sendable {
    public let epoch: Int
    public let step: Int
    /// `[samples * viewsPerSample, 3, T, H, W]`, views of a sample adjacent.
    public let data: Tensor
    public let labels: [Int]
    /// Dataset indices the sampler asked for, and those really loaded (differ where a bad
    /// file was replaced).
    public let requested: [Int]
    public let loaded: [Int]
    /// True for positions past the end of the dataset (the epoch is padded to whole batches by
    /// repeating its first samples, as torch's DistributedSampler does); an evaluator drops them.
    public let isPadding: [Bool]
    public let viewsPerSample: Int
    /// Bad-file draws made while loading this batch (a sample and its replacements, as the
    /// loader's running count counts them): a step's own, whatever batches are prefetched.
    public let skipEvents: Int
}

/// No usable clip for a sample: it and every replacement drawn for it were bad (an unreadable
/// dataset, or a pipeline no video fits). Names the sample and the last reasons met.
public struct NoUsableClipError: Error, CustomStringConvertible {
    public let path: String
    public let attempts: Int
    public let lastReasons: [String]
    public var description: String {
        "no usable clip for \(path) after \(attempts) attempt(s) with replacements; last reasons:\n  "
            + lastReasons.joined(separator: "\n  ")
            + (lastReasons.allSatisfy { $0.hasSuffix(": missing file") }
               ? "\nare data.root / data.val_root the folders the list's paths are relative to?"
               : "\nis the dataset readable, and do data.short_side / data.crop_size fit its videos?")
    }
}

/// Bad files met so far: every skip event, and each bad file once with its reason.
public struct SkipReport: Equatable, Sendable {
    public var events: Int
    public var files: [String: String]
}

/// Deterministic, prefetching video loader with a distributed view.
///
/// - The global order of an epoch is one permutation of the dataset, from a generator keyed by
///   (seed, epoch); step `s` covers positions `s*B ..< (s+1)*B`, the last step wrapping to the
///   start of the permutation. Rank `r` of `R` loads positions `s*B + r*B/R ..< s*B + (r+1)*B/R`,
///   so the ranks' slices put together are the global batch.
/// - Every random choice for a sample (frame offsets, crop, flip …) comes from a generator keyed
///   by (seed, epoch, dataset index): the same sample gives the same clip whatever the number of
///   ranks, workers or threads.
/// - A file that cannot be decoded is logged once, counted, and replaced by the sample at a
///   position drawn from a generator keyed by (seed, epoch, failed index, attempt) — a choice
///   that does not depend on rank count either, so the bitwise equality above survives bad files.
public final class VideoLoader: @unchecked Sendable {
    public let samples: [VideoSample]
    public let pipeline: ClipPipeline
    public let globalBatch: Int
    public let rank: Int
    public let ranks: Int
    public let seed: UInt64
    public let shuffle: Bool
    public let workers: Int
    public let prefetch: Int
    private let log: @Sendable (String) -> Void

    private let lock = NSCondition()
    /// Decode-pass frame counts, kept across epochs.
    public let frameCounts = FrameCountCache()
    private var badFiles: [String: String] = [:]
    private let distinctFiles: Int
    private var skipEvents = 0
    // Prefetch state (guarded by lock).
    private var epoch = 0
    private var nextToAssign = 0
    private var nextToReturn = 0
    private var ready: [Int: Result<Batch, Error>] = [:]
    private var generation = 0
    private var running = 0

    public init(samples: [VideoSample], pipeline: ClipPipelineConfig, globalBatch: Int, seed: UInt64,
                shuffle: Bool, rank: Int = 0, ranks: Int = 1, workers: Int = 2, prefetch: Int = 2,
                log: @escaping @Sendable (String) -> Void = { Console.error($0) }) {
        precondition(!samples.isEmpty, "VideoLoader: no samples")
        precondition(globalBatch > 0 && ranks > 0 && rank >= 0 && rank < ranks, "VideoLoader: rank \(rank) of \(ranks)")
        precondition(globalBatch % ranks == 0, "VideoLoader: global batch \(globalBatch) is not divisible by \(ranks) ranks")
        self.samples = samples
        self.distinctFiles = Set(samples.map(\.path)).count
        self.pipeline = ClipPipeline(pipeline)
        self.globalBatch = globalBatch
        self.rank = rank; self.ranks = ranks
        self.seed = seed; self.shuffle = shuffle
        self.workers = max(0, workers); self.prefetch = max(1, prefetch)
        self.log = log
    }

    deinit { stop() }

    public var localBatch: Int { globalBatch / ranks }
    public var stepsPerEpoch: Int { (samples.count + globalBatch - 1) / globalBatch }

    /// The epoch's permutation of dataset indices (identity without shuffling).
    public func order(epoch: Int) -> [Int] {
        var idx = Array(0..<samples.count)
        guard shuffle else { return idx }
        var g = RandomGenerator(keys: seed, UInt64(epoch), 0x5348_5546)  // "SHUF"
        for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, g.int(below: i + 1)) }
        return idx
    }

    /// Positions in the epoch (before wrapping) of this rank's slice of step `step`.
    public func positions(step: Int) -> Range<Int> {
        let start = step * globalBatch + rank * localBatch
        return start..<(start + localBatch)
    }

    /// Loads this rank's slice of (epoch, step) in the calling thread.
    public func loadBatch(epoch: Int, step: Int) throws -> Batch {
        precondition(step >= 0 && step < stepsPerEpoch, "VideoLoader: step \(step) of \(stepsPerEpoch)")  // invariant: callers iterate 0..<stepsPerEpoch
        let ord = order(epoch: epoch)
        let n = samples.count
        let pos = positions(step: step)
        let per = pipeline.config.sampleFloats
        let views = pipeline.config.viewsPerSample
        var shape = pipeline.config.sampleShape
        shape[0] = views * pos.count
        let data = Tensor(shape)
        var labels: [Int] = [], requested: [Int] = [], loaded: [Int] = [], padding: [Bool] = [], skips = 0
        for (k, p) in pos.enumerated() {
            let idx = ord[p % n]
            let (got, draws) = try loadSample(index: idx, epoch: epoch, order: ord, into: data.data + k * per)
            requested.append(idx); loaded.append(got)
            labels.append(samples[got].label)
            padding.append(p >= n)
            skips += draws
        }
        return Batch(epoch: epoch, step: step, data: data, labels: labels, requested: requested,
                     loaded: loaded, isPadding: padding, viewsPerSample: views, skipEvents: skips)
    }

    /// Loads sample `index`, or a deterministic replacement if its file is bad. Returns the
    /// dataset index actually loaded and the bad draws before it; throws when no replacement is
    /// usable either.
    private func loadSample(index: Int, epoch: Int, order: [Int], into out: UnsafeMutablePointer<Float>) throws -> (Int, draws: Int) {
        var current = index
        var reasons: [String] = []
        let attempts = 1000
        for attempt in 0..<attempts {
            let path = samples[current].path
            lock.lock(); let known = badFiles[path]; lock.unlock()
            if known == nil {
                var rng = RandomGenerator(keys: seed, UInt64(epoch), UInt64(current))
                do {
                    try pipeline.load(path: path, rng: &rng, into: out, frameCounts: frameCounts, range: samples[current].range)
                    return (current, attempt)
                } catch {
                    let reason = (error as? VideoError)?.reason ?? "\(error)"
                    lock.lock()
                    let first = badFiles[path] == nil
                    badFiles[path] = reason
                    lock.unlock()
                    if first { log("data: skipping \(path): \(reason)") }
                }
            }
            lock.lock(); let reason = badFiles[path] ?? "bad"; let allBad = badFiles.count >= distinctFiles; lock.unlock()
            reasons = Array((reasons + ["\(path): \(reason)"]).suffix(3))
            // Every file of the dataset has failed once: more draws cannot find a good one.
            if allBad { throw NoUsableClipError(path: samples[index].path, attempts: attempt + 1, lastReasons: reasons) }
            lock.lock(); skipEvents += 1; lock.unlock()
            var g = RandomGenerator(keys: seed, UInt64(epoch), UInt64(index), 0x4241_4400 | UInt64(attempt))
            current = order[g.int(below: order.count)]
        }
        throw NoUsableClipError(path: samples[index].path, attempts: attempts, lastReasons: reasons)
    }

    // MARK: skip counts

    public var skipReport: SkipReport {
        lock.lock(); defer { lock.unlock() }
        return SkipReport(events: skipEvents, files: badFiles)
    }

    // MARK: prefetching iteration

    /// The next batch `next()` will return.
    public var position: LoaderPosition {
        lock.lock(); defer { lock.unlock() }
        return LoaderPosition(epoch: epoch, step: nextToReturn)
    }

    /// Starts (or restarts) iteration at `position`, with `workers` background threads keeping
    /// up to `prefetch` batches ready.
    public func start(at position: LoaderPosition) {
        stop()
        lock.lock()
        epoch = position.epoch
        nextToAssign = position.step; nextToReturn = position.step
        ready = [:]
        generation += 1
        let gen = generation
        running = workers
        lock.unlock()
        for _ in 0..<workers {
            let t = Thread { [self] in worker(generation: gen) }
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// The next batch of the epoch, or nil at its end; rethrows a worker's failure to load it.
    public func next() throws -> Batch? {
        lock.lock()
        let s = nextToReturn, e = epoch
        if s >= stepsPerEpoch { lock.unlock(); return nil }
        if workers == 0 {
            nextToReturn += 1
            lock.unlock()
            return try loadBatch(epoch: e, step: s)
        }
        while ready[s] == nil { lock.wait() }
        let b = ready.removeValue(forKey: s)!
        nextToReturn += 1
        lock.broadcast()
        lock.unlock()
        return try b.get()
    }

    /// Stops the background threads (a batch being loaded finishes first).
    public func stop() {
        lock.lock()
        generation += 1
        lock.broadcast()
        while running > 0 { lock.wait() }
        ready = [:]
        lock.unlock()
    }

    private func worker(generation gen: Int) {
        lock.lock()
        while true {
            while generation == gen && nextToAssign < stepsPerEpoch && nextToAssign >= nextToReturn + prefetch {
                lock.wait()
            }
            if generation != gen || nextToAssign >= stepsPerEpoch { break }
            let s = nextToAssign, e = epoch
            nextToAssign += 1
            lock.unlock()
            let b = Result { try loadBatch(epoch: e, step: s) }
            lock.lock()
            if generation == gen { ready[s] = b }
            lock.broadcast()
        }
        running -= 1
        lock.broadcast()
        lock.unlock()
    }
}
