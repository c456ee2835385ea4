/// Per-class accuracy and the most confused class pairs of an evaluation (what a user looks at
/// after top-1: which actions fail, and what they are mistaken for).
public struct ClassReport: Sendable {
    public struct ClassAccuracy: Sendable, Equatable {
        public let label: Int
        public let videos: Int
        public let correct: Int
        public var accuracy: Double { videos > 0 ? Double(correct) / Double(videos) : 0 }
    }
    /// `count` videos of class `truth` predicted (top-1) as `predicted`.
    public struct Confusion: Sendable, Equatable {
        public let truth: Int
        public let predicted: Int
        public let count: Int
        /// Share of the true class's videos that went to `predicted`.
        public let fraction: Double
    }

    /// Every class with at least one video, by label.
    public let perClass: [ClassAccuracy]
    /// Off-diagonal pairs, most videos first (ties: by true label, then predicted label).
    public let confusions: [Confusion]
    /// Labels some video was predicted as that no video has: mmaction2's mean class accuracy
    /// counts each as a class at 0, so the mean printed is below the mean of `perClass`.
    public let predictedOnly: [Int]

    public init(scores: [[Float]], labels: [Int], numClasses: Int) {
        var videos = [Int](repeating: 0, count: numClasses), correct = videos
        var pairs: [Int: Int] = [:]   // truth * numClasses + predicted
        for (s, y) in zip(scores, labels) where y >= 0 && y < numClasses {
            let p = Metrics.top1(s)
            videos[y] += 1
            if p == y { correct[y] += 1 } else { pairs[y * numClasses + p, default: 0] += 1 }
        }
        perClass = (0..<numClasses).filter { videos[$0] > 0 }.map { ClassAccuracy(label: $0, videos: videos[$0], correct: correct[$0]) }
        predictedOnly = Set(zip(scores, labels).filter { $1 >= 0 && $1 < numClasses }.map { Metrics.top1($0.0) })
            .filter { $0 < numClasses && videos[$0] == 0 }.sorted()
        confusions = pairs.map { key, n in
            Confusion(truth: key / numClasses, predicted: key % numClasses, count: n, fraction: Double(n) / Double(videos[key / numClasses]))
        }.sorted { ($0.count, -$0.truth, -$0.predicted) > ($1.count, -$1.truth, -$1.predicted) }
    }
}
