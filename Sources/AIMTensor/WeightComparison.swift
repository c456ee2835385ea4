import Foundation

/// Two sets of weights compared tensor by tensor, as the rank-invariance, resume and multi-host
/// checks state their results: the largest difference relative to each tensor's own scale, so a
/// zero-initialised up-projection that stays tiny does not blow the figure up.
public struct WeightComparison {
    /// max over tensors of max|a − b| / max(max|a|, 1e-12).
    public private(set) var maxRelativeDifference: Float = 0
    /// The tensor where that maximum is.
    public private(set) var worstKey = ""
    /// Keys present in one set only, or with different sizes: the sets are not comparable there.
    public private(set) var mismatchedKeys: [String] = []

    public init(_ a: [String: [Float]], _ b: [String: [Float]]) {
        mismatchedKeys = Set(a.keys).symmetricDifference(b.keys).sorted()
        for (k, x) in a.sorted(by: { $0.key < $1.key }) {
            guard let y = b[k] else { continue }
            guard y.count == x.count else { mismatchedKeys.append(k); continue }
            var diff: Float = 0, scale: Float = 1e-12
            for i in 0..<x.count {
                let d = abs(x[i] - y[i])
                if Self.worse(d, than: diff) { diff = d }
                scale = max(scale, abs(x[i]))
            }
            let relative = diff / scale
            if Self.worse(relative, than: maxRelativeDifference) { maxRelativeDifference = relative; worstKey = k }
        }
    }

    /// Greater, with NaN worse than any number and kept once found (max(0, .nan) is 0).
    private static func worse(_ x: Float, than y: Float) -> Bool { y.isNaN ? false : (x.isNaN || x > y) }

    /// The tunable weights of a checkpoint (every tensor but the `optimizer.` moments), by key.
    /// The moments are read too (and dropped), so a truncated file throws here.
    public static func tunableWeights(ofCheckpoint path: String) throws -> [String: [Float]] {
        let f = try SafetensorsFile(path: path)
        var out: [String: [Float]] = [:]
        for name in f.names {
            let t = try f.tensor(named: name)
            if !name.hasPrefix("optimizer.") { out[name] = (0..<t.count).map { t[$0] } }
        }
        return out
    }
}
