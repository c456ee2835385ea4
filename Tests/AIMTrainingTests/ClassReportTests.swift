import AIMTraining
import AIMData
import XCTest

/// Per-class accuracy, confused pairs, the window rule of long-video prediction and the CSV rows
/// shared by aim-eval --predictions and aim-predict --csv.
final class ClassReportTests: XCTestCase {
    func testPerClassAccuracyAndConfusedPairs() {
        // 3 classes: class 0 all right (2), class 1 half to 2 (of 2), class 2 all to 1 (3).
        let one = { (c: Int) -> [Float] in (0..<3).map { $0 == c ? 0.8 : 0.1 } }
        let scores = [one(0), one(0), one(1), one(2), one(1), one(1), one(1)]
        let labels = [0, 0, 1, 1, 2, 2, 2]
        let r = ClassReport(scores: scores, labels: labels, numClasses: 3)
        XCTAssertEqual(r.perClass.map(\.videos), [2, 2, 3])
        XCTAssertEqual(r.perClass.map(\.correct), [2, 1, 0])
        XCTAssertEqual(r.perClass.map(\.accuracy), [1, 0.5, 0])
        XCTAssertEqual(r.confusions.map { [$0.truth, $0.predicted, $0.count] }, [[2, 1, 3], [1, 2, 1]])
        XCTAssertEqual(r.confusions[0].fraction, 1)
        XCTAssertEqual(r.confusions[1].fraction, 0.5)
        // The mean of the per-class accuracies is mmaction2's mean class accuracy when every class occurs.
        XCTAssertEqual(r.perClass.map(\.accuracy).reduce(0, +) / 3, Metrics.meanClassAccuracy(scores, labels: labels), accuracy: 1e-12)
    }

    /// A class predicted but with no video: mmaction2's mean counts it at 0, so the report names
    /// it (the printed mean was below the mean of the table under it, unexplained).
    func testPredictedOnlyClassesExplainTheMean() {
        let one = { (c: Int) -> [Float] in (0..<4).map { $0 == c ? 0.8 : 0.1 } }
        let scores = [one(0), one(3), one(1), one(1)], labels = [0, 0, 1, 1]
        let r = ClassReport(scores: scores, labels: labels, numClasses: 4)
        XCTAssertEqual(r.predictedOnly, [3])
        let perClassMean = r.perClass.map(\.accuracy).reduce(0, +) / Double(r.perClass.count)
        XCTAssertEqual(perClassMean * 2 / 3, Metrics.meanClassAccuracy(scores, labels: labels), accuracy: 1e-12)
        XCTAssertEqual(ClassReport(scores: [one(0), one(1)], labels: [0, 1], numClasses: 4).predictedOnly, [])
    }

    func testTopLabelsBreakTiesByLowerLabelAsTopK() {
        XCTAssertEqual(topLabels([0.2, 0.5, 0.5, 0.1], k: 3), [1, 2, 0])
        XCTAssertEqual(topLabels([0.2, 0.5], k: 5), [1, 0])
    }

    func testWindowsCoverTheVideoAndEndAtItsEnd() {
        func w(_ d: Double, _ win: Double, _ s: Double) -> [[Double]] { Predictor.windows(duration: d, window: win, stride: s).map { [$0.0, $0.1] } }
        XCTAssertEqual(w(10, 4, 4), [[0, 4], [4, 8], [8, 10]])
        XCTAssertEqual(w(10, 4, 2), [[0, 4], [2, 6], [4, 8], [6, 10]])
        XCTAssertEqual(w(3, 4, 1), [[0, 3]], "a video shorter than a window is one window")
        XCTAssertEqual(w(0, 4, 1), [])
    }

    /// A window samples the frames shown during it: at 10 fps, [0.35, 0.72) shows frames 3 (from
    /// 0.3 s) to 7 (from 0.7 s); a window inside one frame gets that frame; the end is the video's.
    func testWindowFramesAreThoseShownDuringIt() {
        XCTAssertEqual(Predictor.frames(start: 0.35, end: 0.72, fps: 10, count: 100), 3..<8)
        XCTAssertEqual(Predictor.frames(start: 0.3, end: 0.7, fps: 10, count: 100), 3..<7)
        XCTAssertEqual(Predictor.frames(start: 0.31, end: 0.32, fps: 10, count: 100), 3..<4)
        XCTAssertEqual(Predictor.frames(start: 9.5, end: 10.4, fps: 10, count: 100), 95..<100)
        XCTAssertEqual(Predictor.frames(start: 10.2, end: 10.4, fps: 10, count: 100), 99..<100, "past the end: the last frame")
    }

    func testCSVRowsQuoteNamesAndCarryProbabilities() {
        let map = LabelMap(names: ["a, b", "say \"hi\"", "c"], path: "m")
        XCTAssertEqual(PredictionTable.header(k: 2, leading: ["video"]), "video,top1_label,top1_class,top1_prob,top2_label,top2_class,top2_prob")
        XCTAssertEqual(PredictionTable.row(leading: ["v.mp4"], scores: [0.25, 0.7, 0.05], k: 2, classes: map),
                       "v.mp4,1,\"say \"\"hi\"\"\",0.700000,0,\"a, b\",0.250000")
        XCTAssertEqual(PredictionTable.row(leading: ["v.mp4"], scores: [0.25, 0.7, 0.05], k: 1, classes: nil), "v.mp4,1,1,0.700000")
    }

    /// Pairs with the same count come by true label, then predicted label, ascending, as
    /// documented: aim-eval prints the first few, and a dictionary's order differs per process.
    func testConfusedPairsOfEqualCountAreOrderedByTruthThenPrediction() {
        let one = { (c: Int) -> [Float] in (0..<4).map { $0 == c ? 0.7 : 0.1 } }
        // (truth → predicted): 2→1 twice; 3→0, 0→2, 0→1, 1→3 once each.
        let pairs = [(2, 1), (3, 0), (2, 1), (0, 2), (1, 3), (0, 1)]
        let r = ClassReport(scores: pairs.map { one($0.1) }, labels: pairs.map(\.0), numClasses: 4)
        XCTAssertEqual(r.confusions.map { [$0.truth, $0.predicted, $0.count] },
                       [[2, 1, 2], [0, 1, 1], [0, 2, 1], [1, 3, 1], [3, 0, 1]])
    }
}
