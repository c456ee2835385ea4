import AIMConfig
import AIMDistributed
import AIMModel
import AIMReport
import AIMTensor
import AIMTraining
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// The report's arithmetic against the model's own counts, the CSV contract, and the memory
/// accounting against the RSS growth it predicts.
final class EfficiencyReportTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func config(_ p: String) -> String { root.appendingPathComponent(p).path }

    override func setUp() { Threads.set(2) }

    /// A small measured run of the tiny AIM config (one warm-up + one step, batch 2).
    func tinyMeasurement(_ configPath: String = "configs/debug/tiny_aim.yaml", _ sets: [String] = []) throws -> EfficiencyMeasurement {
        let req = MeasureRequest(configPath: Self.config(configPath), overrides: ["train.batch_size=2", "train.micro_batch=2"] + sets,
                                 steps: 1, threads: 2)
        return try EfficiencyRunner.measure(req, communicator: SingleProcessCommunicator())
    }

    func testCountsAllreduceAndCheckpointArithmetic() throws {
        for (path, sets) in [("configs/debug/tiny_aim.yaml", [String]()), ("configs/debug/tiny_full_finetune.yaml", [])] {
            let m = try tinyMeasurement(path, sets)
            // Parameter counts equal an independently built model's.
            let cfg = try Config.load(path: Self.config(path), overrides: EfficiencyRunner.forcedOverrides)
            let model = try Recognizer(config: try ModelConfig(cfg), initialize: false)
            XCTAssertEqual(m.totalParams, model.totalParameters, path)
            XCTAssertEqual(m.tunableParams, model.tunableParameterCount, path)
            XCTAssertEqual(m.flopsPerView, model.flopsPerView, path)
            XCTAssertEqual(m.totalParams, model.moduleCounts().reduce(0) { $0 + $1.parameters }, path)
            // Every tunable gradient is allreduced once per step, as float32.
            XCTAssertEqual(m.allreduceBytesPerStep, 4 * m.tunableParams, path)
            XCTAssertTrue(m.steps.allSatisfy { $0.bytesAllreduced == 4 * m.tunableParams }, path)
            // Checkpoint = tunable weights + AdamW exp_avg + exp_avg_sq (float32) + a header that
            // holds the tensor index and the config (a few tens of kB, not proportional to the weights).
            XCTAssertGreaterThanOrEqual(m.checkpointBytes, 3 * 4 * m.tunableParams, path)
            XCTAssertLessThan(m.checkpointBytes - 3 * 4 * m.tunableParams, 64 * 1024, path)
            // Memory categories follow the parameter store.
            XCTAssertEqual(m.memory.tunableParameters, 4 * m.tunableParams)
            XCTAssertEqual(m.memory.gradients, 4 * m.tunableParams)
            XCTAssertEqual(m.memory.optimizerState, 8 * m.tunableParams)
            XCTAssertEqual(m.memory.frozenParameters, 4 * (m.totalParams - m.tunableParams))
            XCTAssertEqual(m.memory.inputBatch, 4 * 2 * 3 * m.numFrames * m.inputResolution * m.inputResolution)
            XCTAssertGreaterThan(m.memory.activations, 0)
            XCTAssertEqual(m.steps.count, 1)
        }
    }

    func testCSVHasTheRequiredColumnsAndValues() throws {
        let a = try tinyMeasurement(), b = try tinyMeasurement("configs/debug/tiny_space_only.yaml")
        let report = EfficiencyReport(measurements: [a, b], commandLine: "test", machine: "test", date: "now")
        let lines = report.csv().split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        let header = lines[0].split(separator: ",").map(String.init)
        let required = ["config", "total_params", "tunable_params", "gflops_per_view", "views", "peak_rss_bytes",
                        "activation_bytes", "step_time_s", "allreduce_bytes_per_step", "checkpoint_bytes"]
        for c in required { XCTAssertTrue(header.contains(c), "missing column \(c)") }
        let row = lines[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(row.count, header.count)
        func col(_ name: String) -> String { row[header.firstIndex(of: name)!] }
        XCTAssertEqual(col("config"), a.configPath)
        XCTAssertEqual(Int(col("total_params")), a.totalParams)
        XCTAssertEqual(Int(col("tunable_params")), a.tunableParams)
        XCTAssertEqual(Int(col("activation_bytes")), a.memory.activations)
        XCTAssertEqual(Int(col("peak_rss_bytes")), a.peakRSSBytes)
        XCTAssertEqual(Int(col("checkpoint_bytes")), a.checkpointBytes)
        XCTAssertEqual(Int(col("allreduce_bytes_per_step")), 4 * a.tunableParams)
        XCTAssertEqual(Double(col("step_time_s"))!, a.stepTimeSeconds, accuracy: 1e-4)
        XCTAssertEqual(Double(col("gflops_per_view"))!, Double(a.flopsPerView) / 1e9, accuracy: 1e-4)
        XCTAssertGreaterThan(a.peakRSSBytes, a.baselineRSSBytes)

        // The full report: markdown, CSV and parseable SVG charts.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-report-test-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try report.write(to: dir).map(\.lastPathComponent)
        for f in ["report.md", "report.csv", "memory_breakdown.svg", "time_per_iteration.svg"] { XCTAssertTrue(files.contains(f), f) }
        for f in files where f.hasSuffix(".svg") {
            let parser = XMLParser(contentsOf: dir.appendingPathComponent(f))!
            XCTAssertTrue(parser.parse(), "\(f) is not well-formed XML: \(String(describing: parser.parserError))")
        }
    }

    /// The prediction at another batch rests on kept bytes scaling linearly with the batch.
    func testActivationBytesScaleLinearlyWithBatch() throws {
        let cfg = try Config.load(path: Self.config("configs/debug/tiny_aim.yaml"), overrides: EfficiencyRunner.forcedOverrides)
        let mc = try ModelConfig(cfg)
        var kept: [Int] = [], scratch: [Int] = []
        for b in [1, 2] {
            let model = try Recognizer(config: mc, seed: 1)
            let video = Tensor([b, 3, mc.numFrames, mc.inputResolution, mc.inputResolution])
            let logits = try model.forward(video: video.data, context: PassContext(batch: b, training: true))
            let d = Tensor(shape: logits.shape, repeating: 0.01)
            try model.backward(dLogits: d.data)
            kept.append(model.keptBytes); scratch.append(model.scratchBytes)
        }
        XCTAssertEqual(Double(kept[1]) / Double(kept[0]), 2, accuracy: 0.01)
        XCTAssertEqual(Double(scratch[1]) / Double(scratch[0]), 2, accuracy: 0.05)
        let m = try tinyMeasurement()
        let p1 = MemoryPrediction(m, batch: 2), p8 = MemoryPrediction(m, batch: 8)
        XCTAssertEqual(p8.predictedBytes - p1.predictedBytes, 6 * p1.perClipBytes)
        XCTAssertEqual(p1.fixedBytes, m.memory.frozenParameters + m.memory.tunableParameters + m.memory.gradients + m.memory.optimizerState)
    }

    /// The accounting (parameters, gradients, AdamW state, activations kept, workspace, input)
    /// predicts the measured growth of resident memory from before the trainer is built to the
    /// peak of training, within 15%. A 2-block ViT-B/16 at 224², 8 frames: ~0.3 GB of accounted
    /// memory, so allocator and BLAS buffers (a few MB) are small beside it; about 5 s.
    func testMemoryAccountingPredictsRSSGrowth() throws {
        let req = MeasureRequest(configPath: Self.config("configs/k400/aim_vitb16_clip_8f.yaml"),
                                 overrides: ["model.layers=2", "train.batch_size=1", "train.micro_batch=1"], steps: 1, threads: 2)
        let m = try EfficiencyRunner.measure(req, communicator: SingleProcessCommunicator())
        guard m.peakRSSResetWorked else { throw XCTSkip("this kernel does not let a process reset VmHWM (/proc/self/clear_refs)") }
        let accounted = Double(m.memory.total), grown = Double(m.rssGrowthBytes)
        XCTAssertGreaterThan(accounted, 250e6)
        XCTAssertGreaterThan(Double(m.memory.activations) / accounted, 0.3, "activations must be a large part of what is checked")
        XCTAssertEqual(accounted / grown, 1, accuracy: 0.15, "accounted \(Int(accounted)) B vs RSS growth \(Int(grown)) B")
    }

    /// GFLOPs of a test are those of a view times the views, truncated to whole GFLOPs as the
    /// paper's tables give them (202.32 per view × 3 views → 606, not 607).
    func testTestGFLOPsAreViewGFLOPsTimesViewsTruncated() {
        var m = EfficiencyMeasurement(label: "x", configPath: "", overrides: [])
        m.flopsPerView = 202_320_000_000; m.views = 3
        XCTAssertEqual(m.gflopsPerView, 202.32, accuracy: 1e-9)
        XCTAssertEqual(m.gflopsPerTest, 606)
        m.flopsPerView = 180_600_000_000; m.views = 1
        XCTAssertEqual(m.gflopsPerTest, 180)
    }
}
