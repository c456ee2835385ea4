import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// Top-k and mean class accuracy on rows whose ranks are worked out by hand, and the multi-view
/// average (`average_clips='prob'`) against softmaxes of single-view forwards.
final class MetricsTests: XCTestCase {
    // Label rank in each row (0 = best): A 0, B 1, C 3, D 1, E 0 (a four-way tie: the lower label
    // first, as `Metrics` documents, so top-1 agrees with `top1`, np.argmax's choice, which
    // mean_class_accuracy uses).
    let scores: [[Float]] = [[0.1, 0.6, 0.2, 0.1],    // A, label 1
                             [0.5, 0.3, 0.1, 0.1],    // B, label 1
                             [0.1, 0.2, 0.3, 0.4],    // C, label 0
                             [0.4, 0.1, 0.3, 0.2],    // D, label 2
                             [0.25, 0.25, 0.25, 0.25]] // E, label 0
    let labels = [1, 1, 0, 2, 0]

    func testTopKCountsTheLabelsRank() {
        XCTAssertEqual(Metrics.topK(scores, labels: labels, k: 1), 2.0 / 5, accuracy: 1e-12)  // A, E
        XCTAssertEqual(Metrics.topK(scores, labels: labels, k: 2), 4.0 / 5, accuracy: 1e-12)  // + B, D
        XCTAssertEqual(Metrics.topK(scores, labels: labels, k: 3), 4.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(Metrics.topK(scores, labels: labels, k: 4), 1, accuracy: 1e-12)
        // Top-1 agrees with the prediction mean class accuracy and the reports use.
        let agree = zip(scores, labels).filter { Metrics.top1($0) == $1 }.count
        XCTAssertEqual(Metrics.topK(scores, labels: labels, k: 1), Double(agree) / 5, accuracy: 1e-12)
        XCTAssertEqual(topLabels([0.2, 0.5, 0.2, 0.1], k: 3), [1, 0, 2])
        XCTAssertEqual(topLabels([0.25, 0.25, 0.25, 0.25], k: 4), [0, 1, 2, 3])
    }

    func testMeanClassAccuracyIsMMAction2s() {
        // Predictions 1, 0, 3, 0, 0. Classes: predicted ∪ true = {0, 1, 2, 3}. Recall per class:
        // 0: E of C, E = 1/2; 1: A of A, B = 1/2; 2: 0 of D; 3: never a true label, counts 0.
        XCTAssertEqual(Metrics.meanClassAccuracy(scores, labels: labels), (0.5 + 0.5 + 0 + 0) / 4, accuracy: 1e-12)
    }

    func testViewsAverageTheirSoftmaxes() throws {
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 2; c.heads = 4; c.numFrames = 2; c.numClasses = 5
        c.tune = .all; c.adapters = []; c.dropPathRate = 0; c.headDropout = 0
        let model = try Recognizer(config: c, seed: 3)
        let samples = 2, views = 3, per = 3 * 2 * 16 * 16
        let video = Tensor([samples * views, 3, 2, 16, 16])
        var g = RandomGenerator(keys: 5)
        for i in 0..<video.count { video[i] = Float(g.normal()) }
        let got = try averagedProbabilities(model: model, video: video, samples: samples, views: views)
        XCTAssertEqual(got.count, samples)
        for b in 0..<samples {
            var expected = [Double](repeating: 0, count: 5)
            for v in 0..<views {
                let one = try model.forward(video: video.data + (b * views + v) * per,
                                            context: PassContext(batch: 1, training: false, saveForBackward: false))
                let z = (0..<5).map { Double(one[$0]) }, mx = z.max()!
                let e = z.map { Foundation.exp($0 - mx) }, sum = e.reduce(0, +)
                for k in 0..<5 { expected[k] += e[k] / sum / Double(views) }
            }
            XCTAssertEqual(got[b].reduce(0, +), 1, accuracy: 1e-5)
            for k in 0..<5 { XCTAssertEqual(Double(got[b][k]), expected[k], accuracy: 1e-4, "sample \(b) class \(k)") }
        }
    }

    /// `average_clips`: views with logits [2, 0, 0, 0] and [0, 2, 0, 0]. prob averages their
    /// softmaxes, (e²+1)/(2(e²+3)) for classes 0 and 1 and 1/(e²+3) for 2 and 3; score takes the
    /// softmax of the mean logits [1, 1, 0, 0]: e/(2e+2) and 1/(2e+2) (mmaction2 returns the mean
    /// itself; its softmax ranks the same).
    func testViewAveragingRules() {
        let logits: [Float] = [2, 0, 0, 0, 0, 2, 0, 0]
        let e = Foundation.exp(1.0), e2 = e * e
        let prob = combineViews(logits: logits, samples: 1, views: 2, classes: 4, averaging: .prob)[0]
        let score = combineViews(logits: logits, samples: 1, views: 2, classes: 4, averaging: .score)[0]
        for (k, expected) in [(e2 + 1) / (2 * (e2 + 3)), (e2 + 1) / (2 * (e2 + 3)), 1 / (e2 + 3), 1 / (e2 + 3)].enumerated() {
            XCTAssertEqual(Double(prob[k]), expected, accuracy: 1e-6, "prob, class \(k)")
        }
        for (k, expected) in [e / (2 * e + 2), e / (2 * e + 2), 1 / (2 * e + 2), 1 / (2 * e + 2)].enumerated() {
            XCTAssertEqual(Double(score[k]), expected, accuracy: 1e-6, "score, class \(k)")
        }
    }

    /// Evaluation results come back in dataset order whatever order the batches brought the
    /// videos in, padding and stand-ins for bad videos left out, each video with its own label.
    func testEvaluatorReturnsVideosInDatasetOrder() throws {
        final class Shuffled: BatchSource {
            // (dataset index, padding, replacement) per sample, two steps of three.
            let plan: [[(Int, Bool, Bool)]] = [[(3, false, false), (1, false, false), (4, false, true)],
                                               [(0, false, false), (2, false, false), (3, true, false)]]
            var stepsPerEpoch: Int { plan.count }
            func batch(epoch: Int, step: Int) -> LocalBatch {
                let rows = plan[step], t = Tensor([rows.count, 3, 2, 16, 16])
                var g = RandomGenerator(keys: UInt64(step))
                for i in 0..<t.count { t[i] = Float(g.normal()) }
                return LocalBatch(video: t, labels: rows.map { $0.0 % 3 }, viewsPerSample: 1, isPadding: rows.map(\.1),
                                  indices: rows.map(\.0), isReplacement: rows.map(\.2))
            }
            var skipped: [String: String] { [:] }
            var skipEvents: Int { 0 }
        }
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 1; c.heads = 4; c.numFrames = 2; c.numClasses = 3
        c.tune = .all; c.adapters = []
        let model = try Recognizer(config: c, seed: 2)
        let r = try Evaluator(model: model, comm: SingleProcessCommunicator(), numClasses: 3, seed: 0).run(Shuffled())
        XCTAssertEqual(r.indices, [0, 1, 2, 3])
        XCTAssertEqual(r.labels, [0, 1, 2, 0])
        XCTAssertEqual(r.videos, 4)
        XCTAssertEqual(r.skipped, 1)
        XCTAssertEqual(r.scores.count, 4)
    }

    /// JSON has no NaN or infinity: a record holding one (the loss of the step that stops a run)
    /// is written with the value as a string, never dropped, so the log shows why the run ended.
    func testMetricsRecordsKeepNonFiniteValuesAsStrings() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-nonfinite-\(getpid()).jsonl")
        try? FileManager.default.removeItem(at: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let log = try MetricsLog(path: url)
        log.record(["step": 7, "loss": Double.nan, "grad_norm": -Double.infinity, "lr": Float.infinity, "top1": 0.5])
        log.record(["step": 8, "loss": 1.25])
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let first = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(first["step"] as? Int, 7)
        XCTAssertEqual(first["loss"] as? String, "nan")
        XCTAssertEqual(first["grad_norm"] as? String, "-inf")
        XCTAssertEqual(first["lr"] as? String, "inf")
        XCTAssertEqual(first["top1"] as? Double, 0.5)
        XCTAssertEqual(log.failedRecords, 0)
    }
}
