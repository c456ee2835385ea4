import Foundation

/// One tunable parameter's gradient inside the flat gradient buffer (offsets in floats).
public struct GradientSlice: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let count: Int
    public init(name: String, offset: Int, count: Int) {
        self.name = name
        self.offset = offset
        self.count = count
    }
}

/// A run of consecutive parameters whose gradients are reduced by one allreduce.
public struct GradientBucket: Sendable, Equatable {
    /// Parameter indices (into the layout), in the order backward finishes them (descending).
    public let parameters: [Int]
    /// The contiguous span of the flat buffer the bucket covers, in floats.
    public let offset: Int
    public let count: Int
    public var bytes: Int { count * MemoryLayout<Float>.stride }
}

public enum BucketLayoutError: Error, CustomStringConvertible, Equatable {
    case empty
    case badCount(name: String, count: Int)
    case notContiguous(previous: String, previousEnd: Int, name: String, offset: Int)
    case badBucketSize(Int)

    public var description: String {
        switch self {
        case .empty: return "gradient layout is empty: no tunable parameters to reduce"
        case let .badCount(name, count): return "gradient layout: parameter '\(name)' has \(count) elements (must be > 0)"
        case let .notContiguous(prev, end, name, offset):
            return "gradient layout: '\(name)' starts at offset \(offset) but '\(prev)' ends at \(end); the tunable gradients must be packed back to back in parameter order"
        case let .badBucketSize(b): return "gradient bucket size must be at least 4 bytes, got \(b)"
        }
    }
}

/// Whether buckets are reduced while backward still runs or all after it.
public enum BucketMode: String, Sendable {
    /// A bucket's MPI_Iallreduce starts as soon as its last gradient is final (PyTorch DDP).
    case overlapped
    /// One allreduce per bucket after backward, in bucket order: the baseline to measure against.
    case blocking
}

/// What one bucket pass did.
public struct BucketPassStats: Sendable {
    public var mode: BucketMode
    public var buckets: Int
    /// Bytes handed to allreduce in this pass (counted per launched bucket): 4 × the tunable
    /// parameter count, whatever the world size.
    public var bytesReduced: Int
    /// Seconds `finish()` spent waiting for (overlapped) or performing (blocking) reductions.
    public var waitSeconds: Double
    /// Seconds from `begin` to the end of `finish`.
    public var passSeconds: Double
}

/// DDP-style gradient bucketing over one flat buffer of tunable gradients.
///
/// Buckets are assigned once, walking parameters in reverse (backward finishes the last layer
/// first), closing a bucket before it would exceed `bucketBytes`; a parameter larger than a
/// bucket gets a bucket of its own. Each bucket is a contiguous slice, reduced in place.
///
/// Per optimizer step: `begin(gradients:)` before the backward of the last micro-batch,
/// `markReady(i)` when parameter i's gradient is final, `finish()` after backward. A bucket is
/// launched only after every lower-numbered bucket, so all ranks issue the same collectives in
/// the same order even if their backward marks parameters in a different order. `markReady`
/// outside a pass does nothing (earlier micro-batches only accumulate), and `finish()` launches
/// whatever was never marked, so a caller that never marks degrades to the blocking schedule.
/// All calls come from the MPI thread.
public final class GradientBucketer {
    /// PyTorch DDP's default `bucket_cap_mb = 25`.
    public static let defaultBucketBytes = 25 * 1024 * 1024

    public let layout: [GradientSlice]
    public let buckets: [GradientBucket]
    public let mode: BucketMode
    public let communicator: any Communicator
    /// Total floats reduced per pass (the sum of the layout's counts).
    public let totalCount: Int

    private let bucketOf: [Int]
    private var remaining: [Int] = []
    private var ready: [Bool] = []
    private var pending: [PendingCollective] = []
    private var launched = 0
    private var floatsReduced = 0
    private var gradients: UnsafeMutablePointer<Float>?
    private var passStart: UInt64 = 0

    public var isActive: Bool { gradients != nil }

    public init(layout: [GradientSlice], bucketBytes: Int = GradientBucketer.defaultBucketBytes,
                mode: BucketMode = .overlapped, communicator: any Communicator) throws {
        self.layout = layout
        self.buckets = try GradientBucketer.assignBuckets(layout: layout, bucketBytes: bucketBytes)
        self.mode = mode
        self.communicator = communicator
        self.totalCount = layout.reduce(0) { $0 + $1.count }
        var owner = [Int](repeating: 0, count: layout.count)
        for (b, bucket) in buckets.enumerated() { for p in bucket.parameters { owner[p] = b } }
        self.bucketOf = owner
    }

    /// Bucket assignment alone (deterministic: it depends only on the layout and the size).
    public static func assignBuckets(layout: [GradientSlice], bucketBytes: Int) throws -> [GradientBucket] {
        guard !layout.isEmpty else { throw BucketLayoutError.empty }
        guard bucketBytes >= MemoryLayout<Float>.stride else { throw BucketLayoutError.badBucketSize(bucketBytes) }
        for (i, s) in layout.enumerated() {
            guard s.count > 0 else { throw BucketLayoutError.badCount(name: s.name, count: s.count) }
            if i > 0 {
                let prev = layout[i - 1]
                guard s.offset == prev.offset + prev.count else {
                    throw BucketLayoutError.notContiguous(previous: prev.name, previousEnd: prev.offset + prev.count,
                                                          name: s.name, offset: s.offset)
                }
            }
        }
        let cap = bucketBytes / MemoryLayout<Float>.stride
        var result: [GradientBucket] = []
        var members: [Int] = []
        var floats = 0
        func close() {
            guard let lowest = members.last else { return }
            result.append(GradientBucket(parameters: members, offset: layout[lowest].offset, count: floats))
            members = []
            floats = 0
        }
        for p in layout.indices.reversed() {
            let n = layout[p].count
            if !members.isEmpty && floats + n > cap { close() }
            members.append(p)
            floats += n
            if floats >= cap { close() }
        }
        close()
        return result
    }

    /// Arms a pass over `gradients` (the flat buffer the layout's offsets index).
    public func begin(gradients: UnsafeMutablePointer<Float>) {
        precondition(!isActive, "GradientBucketer.begin called twice without finish")
        self.gradients = gradients
        remaining = buckets.map { $0.parameters.count }
        ready = [Bool](repeating: false, count: layout.count)
        pending = []
        launched = 0
        floatsReduced = 0
        passStart = DispatchTime.now().uptimeNanoseconds
    }

    /// Parameter `index`'s gradient is final for this step.
    public func markReady(_ index: Int) {
        guard isActive else { return }
        precondition(index >= 0 && index < layout.count, "markReady: parameter index \(index) outside 0..<\(layout.count)")
        precondition(!ready[index], "markReady: '\(layout[index].name)' marked ready twice in one pass")
        ready[index] = true
        let b = bucketOf[index]
        remaining[b] -= 1
        guard mode == .overlapped else { return }
        if remaining[b] == 0 && b == launched { launchReadyBuckets() }
        progress()
    }

    /// Lets launched reductions advance (call between layers of a long backward if you like).
    public func progress() {
        if !pending.isEmpty { communicator.progress(pending) }
    }

    /// Completes every bucket, averages over the world, and ends the pass.
    public func finish() -> BucketPassStats {
        guard let base = gradients else { preconditionFailure("GradientBucketer.finish called without begin") }
        let t0 = DispatchTime.now().uptimeNanoseconds
        switch mode {
        case .overlapped:
            while launched < buckets.count { launch(launched) }
            communicator.wait(pending)
        case .blocking:
            for bucket in buckets {
                communicator.allreduceSum(base + bucket.offset, count: bucket.count, label: bucketLabel(bucket))
                floatsReduced += bucket.count
            }
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        if communicator.size > 1 {
            for bucket in buckets { divide(base + bucket.offset, count: bucket.count, by: communicator.size) }
        }
        let end = DispatchTime.now().uptimeNanoseconds
        gradients = nil
        pending = []
        return BucketPassStats(mode: mode, buckets: buckets.count,
                               bytesReduced: floatsReduced * MemoryLayout<Float>.stride,
                               waitSeconds: Double(t1 - t0) / 1e9,
                               passSeconds: Double(end - passStart) / 1e9)
    }

    private func launchReadyBuckets() {
        while launched < buckets.count && remaining[launched] == 0 { launch(launched) }
    }

    private func launch(_ b: Int) {
        let bucket = buckets[b]
        pending.append(communicator.startAllreduceSum(gradients! + bucket.offset, count: bucket.count, label: bucketLabel(bucket)))
        launched += 1
        floatsReduced += bucket.count
    }

    private func bucketLabel(_ bucket: GradientBucket) -> String {
        let first = layout[bucket.parameters.first!].name, last = layout[bucket.parameters.last!].name
        return "gradient bucket [\(last) … \(first)] (\(bucket.count) floats)"
    }
}
