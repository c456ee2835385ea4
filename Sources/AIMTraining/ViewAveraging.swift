import AIMModel
import AIMTensor

/// Multi-view testing as mmaction2's `average_clips='prob'`: one forward over every view of the
/// samples (views of a sample adjacent), softmax per view, probabilities averaged per sample.
/// Shared by `aim-eval` and `aim-predict` so both score a video the same way.
public func averagedProbabilities(model: Recognizer, video: Tensor, samples: Int, views: Int) throws -> [[Float]] {
    let K = model.config.numClasses, rows = samples * views
    let logits = try model.forward(video: video.data, context: PassContext(batch: rows, training: false, saveForBackward: false))
    let probs = Tensor([rows, K])
    softmaxForward(out: probs.data, input: logits.data, rows: rows, cols: K)
    return (0..<samples).map { b in
        var avg = [Float](repeating: 0, count: K)
        for v in 0..<views { for k in 0..<K { avg[k] += probs[(b * views + v) * K + k] / Float(views) } }
        return avg
    }
}

/// The k best labels of a score row, highest first (ties: lower label first, as topK counts).
public func topLabels(_ scores: [Float], k: Int) -> [Int] {
    Array(scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(k))
}
