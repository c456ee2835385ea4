import AIMReport
import XCTest

/// The report's arithmetic on hand-built measurements, worked out by hand: the measured runs of
/// EfficiencyReportTests take one step at batch = micro-batch, where several of these formulas
/// cannot be told from a wrong one.
final class ReportArithmeticTests: XCTestCase {
    /// The step time is the median of the steps: the middle one, or the mean of the two middle
    /// ones for an even count (numpy.median).
    func testMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo() {
        XCTAssertEqual(Statistics.median([0.4, 0.1, 0.3, 0.2]), 0.25, accuracy: 1e-12)
        XCTAssertEqual(Statistics.median([5, 1, 3]), 3)
        XCTAssertEqual(Statistics.median([2, 8]), 5)
        XCTAssertTrue(Statistics.median([]).isNaN)
        var m = EfficiencyMeasurement(label: "x", configPath: "", overrides: [])
        m.steps = [0.9, 0.5, 0.6, 0.7].map { t in var s = StepRecord(); s.total = t; return s }
        XCTAssertEqual(m.stepTimeSeconds, 0.65, accuracy: 1e-12)
    }

    /// Kept activations and workspace are measured for one micro-batch, the input for the rank's
    /// whole batch: per clip, (400 + 200) / 2 + 800 / 8 = 400 bytes. The fixed part is the
    /// parameters, gradients and AdamW state (1400); what the RSS grew beyond the accounting
    /// (3000 − 2800 = 200) is carried as it is. At 8 clips: 1400 + 8 × 400 + 200 = 4800.
    func testMemoryPredictionPerClipAndUnaccountedBytes() {
        var m = EfficiencyMeasurement(label: "x", configPath: "", overrides: [])
        m.batchPerRank = 8; m.microBatch = 2
        m.memory.frozenParameters = 1000; m.memory.tunableParameters = 100; m.memory.gradients = 100
        m.memory.optimizerState = 200; m.memory.activations = 400; m.memory.workspace = 200; m.memory.inputBatch = 800
        m.baselineRSSBytes = 10_000; m.peakRSSBytes = 13_000
        XCTAssertEqual(m.memory.total, 2800)
        let p = MemoryPrediction(m, batch: 8)
        XCTAssertEqual(p.fixedBytes, 1400)
        XCTAssertEqual(p.perClipBytes, 400)
        XCTAssertEqual(p.unaccountedBytes, 200)
        XCTAssertEqual(p.predictedBytes, 4800)
        XCTAssertEqual(p.predictedHalfPrecisionBytes, 1400 + 8 * 400 / 2 + 200)
        // Accounting above the growth leaves nothing unaccounted (never negative).
        m.peakRSSBytes = 11_000
        XCTAssertEqual(MemoryPrediction(m, batch: 1).unaccountedBytes, 0)
    }

    func measurement(width: Int, layers: Int, patch: Int, frames: Int) -> EfficiencyMeasurement {
        var m = EfficiencyMeasurement(label: "x", configPath: "", overrides: [])
        m.architecture = "clipAIM"; m.tune = "adapters"; m.adapters = ["temporal", "spatial", "joint"]; m.adapterLayers = "all"
        m.width = width; m.layers = layers; m.patchSize = patch; m.inputResolution = 224; m.numClasses = 400; m.numFrames = frames
        return m
    }

    /// Each AIM CLIP model of the paper's K400 table is compared with its own row: ViT-L/14 at
    /// 8, 16 and 32 frames are rows 4–6, ViT-B/16 rows 1–3 (8 frames also in the efficiency table).
    func testKineticsRowsMatchBackboneAndFrames() {
        for (frames, gflops) in [(8, 2802.0), (16, 5604), (32, 11208)] {
            let rows = PaperFigures.matching(measurement(width: 1024, layers: 24, patch: 14, frames: frames))
            XCTAssertEqual(rows.map(\.model), ["AIM ViT-L/14 CLIP \(frames)f"])
            XCTAssertEqual(rows.first?.gflops, gflops)
        }
        XCTAssertEqual(PaperFigures.matching(measurement(width: 768, layers: 12, patch: 16, frames: 8)).map(\.model),
                       ["AIM ViT-B/16 CLIP 8f", "AIM ViT-B CLIP"])
        XCTAssertEqual(PaperFigures.matching(measurement(width: 768, layers: 12, patch: 16, frames: 32)).map(\.model),
                       ["AIM ViT-B/16 CLIP 32f"])
        XCTAssertEqual(PaperFigures.matching(measurement(width: 768, layers: 12, patch: 16, frames: 4)), [])
    }

    /// Stacked bars stand on the x axis, each segment on the one below. Plot box: top 50, height
    /// 460 − 50 − 120 = 290, so the axis is at y = 340; 10 + 30 gives ticks of 10 up to 40.
    /// Segment 10: top 50 + 290 × (1 − 10/40) = 267.5, height 72.5. Segment 30 on it: top
    /// 50 + 290 × (1 − 40/40) = 50, height 217.5. One bar in a 530-wide plot: 90 wide at x 300.
    func testStackedBarSegmentsSitOnTheAxisAndOnEachOther() {
        let svg = SVGChart.stackedBars(title: "t", categories: ["a"], series: [.init("low", [10]), .init("high", [30])],
                                       yLabel: "y", format: { String(Int($0)) })
        XCTAssertTrue(svg.contains("<rect x=\"300.0\" y=\"267.5\" width=\"90.0\" height=\"72.5\" fill=\"#4e79a7\"><title>a: low 10</title>"), svg)
        XCTAssertTrue(svg.contains("<rect x=\"300.0\" y=\"50.0\" width=\"90.0\" height=\"217.5\" fill=\"#f28e2b\"><title>a: high 30</title>"), svg)
        XCTAssertTrue(svg.contains("y=\"46.0\" text-anchor=\"middle\" font-size=\"11\">40</text>"), "the total above the bar")
    }

    /// The time breakdown: "other" is what the named phases leave of the step (the allreduce
    /// counted by its wait, the part that blocks), and the overlap is the allreduce pass time the
    /// backward hid: 1.0 − 0.1 − 0.2 − 0.3 − 0.05 − 0.1 = 0.25; 0.15 − 0.05 = 0.1.
    func testStepBreakdownOtherAndOverlap() {
        var s = StepRecord()
        s.total = 1.0; s.data = 0.1; s.forward = 0.2; s.backward = 0.3; s.allreduceWait = 0.05; s.allreducePass = 0.15; s.optimizer = 0.1
        XCTAssertEqual(s.other, 0.25, accuracy: 1e-12)
        XCTAssertEqual(s.allreduceOverlap, 0.1, accuracy: 1e-12)
        s.total = 0.5   // phases measured longer than the step: nothing left, never negative
        XCTAssertEqual(s.other, 0)
        s.allreduceWait = 0.2
        XCTAssertEqual(s.allreduceOverlap, 0)
    }
}
