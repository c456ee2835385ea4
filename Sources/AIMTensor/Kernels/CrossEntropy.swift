import Foundation

// Cross-entropy over class logits, averaged over the batch, with optional label smoothing ε:
// target = (1-ε)·onehot + ε/K, as torch's F.cross_entropy(label_smoothing=ε) and mmaction's
// label-smoothing blend. loss_b = logsumexp(z_b) - Σ_k target_k · z_bk.

private func checkLabels(_ name: String, _ labels: UnsafePointer<Int>, _ B: Int, _ K: Int, _ eps: Float) {
    precondition(B > 0 && K > 0, "\(name): bad sizes batch=\(B) classes=\(K)")
    precondition(eps >= 0 && eps < 1, "\(name): label smoothing must be in [0, 1), got \(eps)")
    // A bad label comes from data, not code: checked with fatalError, which -Ounchecked keeps
    // (it drops precondition conditions).
    for b in 0..<B where labels[b] < 0 || labels[b] >= K {
        fatalError("\(name): label \(labels[b]) of sample \(b) is outside 0..<\(K) classes")
    }
}

/// Mean loss over the batch (accumulated in Double).
public func crossEntropyForward(
    logits: UnsafePointer<Float>, labels: UnsafePointer<Int>, batch B: Int, classes K: Int,
    labelSmoothing: Float = 0
) -> Float {
    checkLabels("crossEntropyForward", labels, B, K, labelSmoothing)
    let eps = Double(labelSmoothing)
    var total = 0.0
    for b in 0..<B {
        let z = logits + b * K
        var mx = -Double.infinity
        for k in 0..<K { mx = max(mx, Double(z[k])) }
        var se = 0.0, sz = 0.0
        for k in 0..<K { se += Foundation.exp(Double(z[k]) - mx); sz += Double(z[k]) }
        let lse = mx + Foundation.log(se)
        total += lse - (1 - eps) * Double(z[labels[b]]) - eps / Double(K) * sz
    }
    return Float(total / Double(B))
}

/// dLogits = (softmax(z) - target) / B · gradScale (overwritten).
public func crossEntropyBackward(
    dLogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, labels: UnsafePointer<Int>,
    batch B: Int, classes K: Int, labelSmoothing: Float = 0, gradScale: Float = 1
) {
    checkLabels("crossEntropyBackward", labels, B, K, labelSmoothing)
    let eps = Double(labelSmoothing)
    let f = Double(gradScale) / Double(B)
    for b in 0..<B {
        let z = logits + b * K, g = dLogits + b * K
        var mx = -Double.infinity
        for k in 0..<K { mx = max(mx, Double(z[k])) }
        var se = 0.0
        for k in 0..<K { se += Foundation.exp(Double(z[k]) - mx) }
        for k in 0..<K {
            let target = (k == labels[b] ? 1 - eps : 0) + eps / Double(K)
            g[k] = Float((Foundation.exp(Double(z[k]) - mx) / se - target) * f)
        }
    }
}
