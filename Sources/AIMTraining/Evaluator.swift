import AIMDistributed
import AIMModel
import AIMTensor
import Foundation

public struct EvalResult: Sendable {
    public var top1: Double, top5: Double, meanClassAccuracy: Double
    public var videos: Int, skipped: Int
    /// Per video, in dataset order: the dataset index, true label and averaged probabilities.
    public var indices: [Int], labels: [Int], scores: [[Float]]
}

/// Multi-view testing (`average_clips`, `prob` by default): each video's views (temporal clips ×
/// spatial crops) run as one batch, combined by `averagedProbabilities`. Videos are sharded over
/// ranks; the coordinator gathers (label, scores) and drops the loader's padding duplicates,
/// as mmengine's collect_results does.
public struct Evaluator {
    let model: Recognizer
    let comm: any Communicator
    let numClasses: Int
    let seed: UInt64
    let averaging: ClipAveraging
    /// The stop signal received (0: none), asked before each batch; the ranks agree on it, so a
    /// scheduler's signal ends a long validation within one batch, not after the whole set.
    let stopSignal: (() -> Int32)?

    public init(model: Recognizer, comm: any Communicator, numClasses: Int, seed: UInt64, averaging: ClipAveraging = .prob,
                stopSignal: (() -> Int32)? = nil) {
        self.model = model; self.comm = comm; self.numClasses = numClasses; self.seed = seed; self.averaging = averaging
        self.stopSignal = stopSignal
    }

    /// Thrown by `run` on every rank when a stop signal arrived during it.
    public struct Stopped: Error { public let signal: Int32 }

    public func run(_ source: BatchSource) throws -> EvalResult {
        let K = numClasses
        var local: [Float] = []   // per video: dataset index, label, then K averaged probabilities
        var unusable = 0          // videos of this rank's shard that could not be decoded
        for step in 0..<source.stepsPerEpoch {
            if let stopSignal {
                let s = comm.size > 1 ? Int32(comm.allreduce([Double(stopSignal())], op: .max, label: "eval-stop")[0]) : stopSignal()
                if s != 0 { throw Stopped(signal: s) }
            }
            let batch = try source.batch(epoch: 0, step: step)
            let V = batch.viewsPerSample, B = batch.labels.count
            let probs = try averagedProbabilities(model: model, video: batch.video, samples: B, views: V, averaging: averaging)
            // A bad video is skipped and counted; the loader's stand-in for it is another video of
            // the set, which counted again would skew every figure.
            unusable += (0..<B).filter { !batch.isPadding[$0] && batch.isReplacement[$0] }.count
            for b in 0..<B where !batch.isPadding[b] && !batch.isReplacement[b] {
                local.append(Float(batch.indices.isEmpty ? -1 : batch.indices[b])); local.append(Float(batch.labels[b]))
                local.append(contentsOf: probs[b])
            }
        }
        let blobs = comm.allgather(local.withUnsafeBytes { Array($0) }, label: "eval-results")
        var rows: [(index: Int, label: Int, scores: [Float])] = []
        for blob in blobs {
            let floats = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            var i = 0
            while i + K + 2 <= floats.count {
                rows.append((Int(floats[i]), Int(floats[i + 1]), Array(floats[(i + 2)..<(i + 2 + K)]))); i += K + 2
            }
        }
        // Dataset order, whatever the rank count (indices are exact in Float below 2^24 videos).
        rows.sort { $0.index < $1.index }
        let scores = rows.map(\.scores), labels = rows.map(\.label)
        // Each rank counts the bad videos of its shard.
        let skipped = Int(comm.allreduce([Double(unusable)], op: .sum, label: "eval-skipped")[0])
        return EvalResult(top1: Metrics.topK(scores, labels: labels, k: 1), top5: Metrics.topK(scores, labels: labels, k: min(5, K)),
                          meanClassAccuracy: Metrics.meanClassAccuracy(scores, labels: labels), videos: labels.count,
                          skipped: skipped, indices: rows.map(\.index), labels: labels, scores: scores)
    }
}
