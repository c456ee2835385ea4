import AIMDistributed
import AIMModel
import AIMTensor
import Foundation

public struct EvalResult: Sendable {
    public var top1: Double, top5: Double, meanClassAccuracy: Double
    public var videos: Int, skipped: Int
}

/// Multi-view testing (`average_clips='prob'`): each video's views (temporal clips × spatial
/// crops) run as one batch, softmax per view, probabilities averaged. Videos are sharded over
/// ranks; the coordinator gathers (label, scores) and drops the loader's padding duplicates,
/// as mmengine's collect_results does.
public struct Evaluator {
    let model: Recognizer
    let comm: any Communicator
    let numClasses: Int
    let seed: UInt64

    public init(model: Recognizer, comm: any Communicator, numClasses: Int, seed: UInt64) {
        self.model = model; self.comm = comm; self.numClasses = numClasses; self.seed = seed
    }

    public func run(_ source: BatchSource) throws -> EvalResult {
        let K = numClasses
        var local: [Float] = []   // per video: label, then K averaged probabilities
        for step in 0..<source.stepsPerEpoch {
            let batch = try source.batch(epoch: 0, step: step)
            let V = batch.viewsPerSample, B = batch.labels.count
            let logits = try model.forward(video: batch.video.data, context: PassContext(batch: V * B, training: false, saveForBackward: false))
            let probs = Tensor([V * B, K])
            softmaxForward(out: probs.data, input: logits.data, rows: V * B, cols: K)
            for b in 0..<B where !batch.isPadding[b] {
                var avg = [Float](repeating: 0, count: K)
                for v in 0..<V { for k in 0..<K { avg[k] += probs[(b * V + v) * K + k] / Float(V) } }
                local.append(Float(batch.labels[b])); local.append(contentsOf: avg)
            }
        }
        let blobs = comm.allgather(local.withUnsafeBytes { Array($0) }, label: "eval-results")
        var scores: [[Float]] = [], labels: [Int] = []
        for blob in blobs {
            let floats = blob.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            var i = 0
            while i + K < floats.count + 1 && i < floats.count {
                labels.append(Int(floats[i])); scores.append(Array(floats[(i + 1)...(i + K)])); i += K + 1
            }
        }
        // Each rank's loader counts only the bad files of its shard.
        let skipped = Int(comm.allreduce([Double(source.skipEvents)], op: .sum, label: "eval-skipped")[0])
        return EvalResult(top1: Metrics.topK(scores, labels: labels, k: 1), top5: Metrics.topK(scores, labels: labels, k: min(5, K)),
                          meanClassAccuracy: Metrics.meanClassAccuracy(scores, labels: labels), videos: labels.count,
                          skipped: skipped)
    }
}
