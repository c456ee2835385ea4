/// Classification metrics as mmaction2 computes them.
public enum Metrics {
    /// Fraction of rows whose label is among the k highest scores.
    public static func topK(_ scores: [[Float]], labels: [Int], k: Int) -> Double {
        guard !labels.isEmpty else { return 0 }
        var hits = 0
        for (s, y) in zip(scores, labels) {
            // A NaN score compares false both ways and would make every row a hit: such a row is a miss.
            guard !s.contains(where: \.isNaN) else { continue }
            let better = s.indices.filter { s[$0] > s[y] || (s[$0] == s[y] && $0 < y) }.count
            if better < k { hits += 1 }
        }
        return Double(hits) / Double(labels.count)
    }

    /// The highest-scoring label (ties: the lower label, as `topK` counts them).
    public static func top1(_ s: [Float]) -> Int {
        // NaN ranks below everything, so a NaN score is never the prediction.
        func v(_ i: Int) -> Float { s[i].isNaN ? -.infinity : s[i] }
        return s.indices.max { v($0) < v($1) || (v($0) == v($1) && $0 > $1) }!
    }

    /// mmaction2's mean_class_accuracy: over the union of predicted and true labels, per-class
    /// recall, where classes that never occur as a true label count as 0 (its known quirk).
    public static func meanClassAccuracy(_ scores: [[Float]], labels: [Int]) -> Double {
        guard !labels.isEmpty else { return 0 }
        let preds = scores.map(top1)
        let classes = Set(preds).union(labels).sorted()
        var total = 0.0
        for c in classes {
            let count = labels.filter { $0 == c }.count
            let hit = zip(preds, labels).filter { $0 == c && $1 == c }.count
            total += count > 0 ? Double(hit) / Double(count) : 0
        }
        return total / Double(classes.count)
    }
}
