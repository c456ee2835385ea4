import AIMDistributed
import AIMModel
import AIMReport
import AIMTensor
import Foundation
import XCTest

/// The efficiency report on the Swin pair: a measured tiny AIM-Swin run allreduces only its tunable
/// gradients, and Swin-B K400 measurements find the paper's rows (memory 9 vs 18 GB, time 37 vs 64 h).
final class SwinEfficiencyTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testTinyAIMSwinMeasuredRun() throws {
        Threads.set(2)
        let req = MeasureRequest(configPath: Self.root.appendingPathComponent("configs/debug/tiny_swin_aim.yaml").path,
                                 overrides: ["train.batch_size=2", "train.micro_batch=2"], steps: 1, threads: 2)
        let m = try EfficiencyRunner.measure(req, communicator: SingleProcessCommunicator())
        XCTAssertEqual(m.architecture, "swinAIM")
        XCTAssertGreaterThan(m.tunableParams, 0)
        XCTAssertLessThan(m.tunableParams, m.totalParams / 5, "AIM-Swin tunes its adapters and head only")
        XCTAssertEqual(m.allreduceBytesPerStep, 4 * m.tunableParams, "only the tunable gradients are allreduced")
        XCTAssertEqual(m.width, 16); XCTAssertEqual(m.layers, 4); XCTAssertEqual(m.patchSize, 4)
        XCTAssertTrue(PaperFigures.matching(m).isEmpty, "a tiny Swin is not in the paper")
    }

    func testSwinBK400FindsThePaperRows() {
        func swinB(_ arch: String, tune: String) -> EfficiencyMeasurement {
            var m = EfficiencyMeasurement(label: arch, configPath: "", overrides: [])
            m.architecture = arch; m.tune = tune; m.width = 128; m.layers = 24; m.patchSize = 4
            m.inputResolution = 224; m.numFrames = 32; m.numClasses = 400
            return m
        }
        let aim = PaperFigures.matching(swinB("swinAIM", tune: "adapters"))
        let video = PaperFigures.matching(swinB("videoSwin", tune: "all"))
        XCTAssertEqual(aim.first?.model, "AIM Swin-B IN-21K")
        XCTAssertEqual(video.first?.model, "VideoSwin-B IN-21K")
        XCTAssertEqual(aim.first!.memoryGB! / video.first!.memoryGB!, 0.5)
        XCTAssertEqual(aim.first!.timeHours! / video.first!.timeHours!, 37.0 / 64, accuracy: 1e-12)
        XCTAssertTrue(PaperFigures.matching(swinB("videoSwin", tune: "head")).isEmpty)

        // The report's sentence on the paper's direction quotes this pair's rows (it quoted the
        // TimeSformer ViT-B pair's for every report).
        var a = swinB("swinAIM", tune: "adapters"), v = swinB("videoSwin", tune: "all")
        a.adapters = ["spatial", "temporal", "joint"]; a.tunableParams = 9_200_000; v.tunableParams = 88_000_000
        let text = EfficiencyReport(measurements: [a, v], commandLine: "test").markdown(charts: [])
        XCTAssertTrue(text.contains("(9.2M vs 88M, 9 vs 18 GB, 37 vs 64 h: AIM Swin-B IN-21K vs VideoSwin-B IN-21K)"), text)
    }
}

extension SwinEfficiencyTests {
    /// A report written into the folder of an earlier one leaves none of the earlier one's text or
    /// sweep charts behind (a failed write left the old report.md beside the new charts).
    func testAReportReplacesTheEarlierOnesFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-replace-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, text) in [("sweep_model_num_frames_0.svg", "<svg>old</svg>"), ("sweep_mine.svg", "my own drawing"),
                             ("report.md", "# Efficiency report\nold"), ("notes.txt", "old")] {
            try Data(text.utf8).write(to: dir.appendingPathComponent(name))
        }
        var m = EfficiencyMeasurement(label: "x", configPath: "", overrides: [])
        m.tunableParams = 1; m.totalParams = 2
        let written = try EfficiencyReport(measurements: [m], commandLine: "test").write(to: dir).map(\.lastPathComponent)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertFalse(left.contains("sweep_model_num_frames_0.svg"), "\(left)")
        XCTAssertTrue(left.contains("notes.txt") && left.contains("sweep_mine.svg"), "the user's own files stay: \(left)")
        XCTAssertNotEqual(try String(contentsOf: dir.appendingPathComponent("report.md"), encoding: .utf8), "# Efficiency report\nold")
        XCTAssertTrue(written.contains("report.md"))
    }
}
