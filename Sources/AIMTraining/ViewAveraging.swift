import AIMConfig
import AIMModel
import AIMTensor

/// How the views of a video are combined: mmaction2's `test_cfg=dict(average_clips=…)`
/// (`eval.average_clips`; the official configs say `prob`).
public enum ClipAveraging: String, CaseIterable, Sendable {
    /// Softmax per view, probabilities averaged.
    case prob
    /// Logits averaged. mmaction2 returns that average itself; here its softmax, which ranks the
    /// classes the same (so every metric is mmaction2's) and reads as probabilities.
    case score

    /// The config's `eval.average_clips`.
    public init(config: Config) { self = ClipAveraging(rawValue: config.string("eval.average_clips")) ?? .prob }
}

/// Multi-view testing: one forward over every view of the samples (views of a sample adjacent),
/// then per sample the views' probabilities averaged (`prob`, the default) or the softmax of
/// their averaged logits (`score`). Shared by `aim-eval` and `aim-predict` so both score a
/// video the same way.
public func averagedProbabilities(model: Recognizer, video: Tensor, samples: Int, views: Int,
                                  averaging: ClipAveraging = .prob) throws -> [[Float]] {
    let logits = try model.forward(video: video.data, context: PassContext(batch: samples * views, training: false, saveForBackward: false))
    return combineViews(logits: logits.data, samples: samples, views: views, classes: model.config.numClasses, averaging: averaging)
}

/// The views' logits of each sample (`samples · views` rows of `classes`, a sample's views
/// adjacent) combined by `averaging` into one probability row per sample.
public func combineViews(logits: UnsafePointer<Float>, samples: Int, views: Int, classes K: Int, averaging: ClipAveraging) -> [[Float]] {
    func mean(_ x: UnsafePointer<Float>, _ b: Int) -> [Float] {
        var avg = [Float](repeating: 0, count: K)
        for v in 0..<views { for k in 0..<K { avg[k] += x[(b * views + v) * K + k] / Float(views) } }
        return avg
    }
    switch averaging {
    case .prob:
        let probs = Tensor([samples * views, K])
        softmaxForward(out: probs.data, input: logits, rows: samples * views, cols: K)
        return (0..<samples).map { mean(probs.data, $0) }
    case .score:
        return (0..<samples).map { b in
            var avg = mean(logits, b), out = [Float](repeating: 0, count: K)
            softmaxForward(out: &out, input: &avg, rows: 1, cols: K)
            return out
        }
    }
}

/// The k best labels of a score row, highest first (ties: lower label first, as topK counts).
public func topLabels(_ scores: [Float], k: Int) -> [Int] {
    Array(scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(k))
}
