import AIMConfig
import AIMDistributed
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// A stop signal during a validation or a test ends it within one batch (a scheduler's time
/// limit gives about two minutes; a Kinetics validation takes far longer), and nothing is lost:
/// the cut validation runs first when the run resumes, the cut tests when `--resume auto` finds
/// the run complete.
final class StopDuringEvaluationTests: XCTestCase {
    /// Says `SIGTERM` from its `from`-th question on (each step boundary and each validation or
    /// test batch asks once), as the real flag stays set once a signal came.
    final class SignalAt {
        let from: Int
        var asked = 0
        init(from: Int) { self.from = from }
        func callAsFunction() -> Int32 { asked += 1; return asked >= from ? SIGTERM : 0 }
    }

    func valRecords(_ dir: URL) throws -> [(step: Int, top1: Double)] {
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "val" }.map { ($0["step"] as! Int, $0["top1"] as! Double) }
    }

    func run(_ config: Config, _ dir: URL, resume: String? = nil, signal: SignalAt? = nil, testAfter: Set<TestCheckpoint> = [],
             val: Bool = true) throws -> TrainSummary {
        var options = TrainOptions(); options.workDir = dir; options.threads = 2; options.resume = resume; options.testAfter = testAfter
        if let signal { options.stopSignal = { signal() } }
        return try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                           trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16),
                           valData: val ? IndexedViews(videos: 4, views: 1) : nil,
                           testData: testAfter.isEmpty ? nil : IndexedViews(videos: 3, views: 2)).run()
    }

    func testACutValidationRunsFirstOnResumeAndTheRunEndsAsAnUncutOne() throws {
        // 8 steps, validations after steps 2, 4, 6 and 8 (two batches each).
        let config = try tinyAIMConfig("stop-eval", ["train.epochs=2", "eval.interval=2", "checkpoint.interval=1000", "checkpoint.keep_last=0"])
        let whole = freshScratch("stop-eval-whole"), cut = freshScratch("stop-eval-cut")
        _ = try run(config, whole)

        // Questions: step 1; step 2's batches 2, 3 and boundary 4; step 3; step 4's batches 6, 7: the signal at 7.
        let stopped = try run(config, cut, signal: SignalAt(from: 7))
        XCTAssertEqual(stopped.stopSignal, SIGTERM)
        XCTAssertEqual(stopped.state.step, 4)
        let step4 = cut.appendingPathComponent("checkpoints/step_00000004.safetensors")
        XCTAssertEqual(try SafetensorsFile(path: step4.path).metadata["eval_pending"], "1")
        XCTAssertEqual(try valRecords(cut).map(\.step), [2])

        // Resumed and stopped again at once: still pending, nothing trained.
        let again = try run(config, cut, resume: "auto", signal: SignalAt(from: 1))
        XCTAssertEqual(again.stopSignal, SIGTERM)
        XCTAssertEqual(again.state.step, 4)
        XCTAssertEqual(try SafetensorsFile(path: step4.path).metadata["eval_pending"], "1")

        // Resumed for good: step 4's validation first, then the rest, as the uncut run.
        let done = try run(config, cut, resume: "auto")
        XCTAssertEqual(done.stopSignal, 0)
        XCTAssertEqual(done.state.step, 8)
        XCTAssertEqual(try SafetensorsFile(path: step4.path).metadata["eval_pending"], "0")
        let expected = try valRecords(whole), got = try valRecords(cut)
        XCTAssertEqual(got.map(\.step), expected.map(\.step))
        XCTAssertEqual(got.map(\.top1), expected.map(\.top1))
        let a = try Launch.loadModel(config: config, checkpoint: whole.appendingPathComponent("latest.safetensors").path)
        let b = try Launch.loadModel(config: config, checkpoint: cut.appendingPathComponent("latest.safetensors").path)
        XCTAssertEqual(a.weightsFingerprint(tunable: true), b.weightsFingerprint(tunable: true), "the resumed run ends with the uncut run's weights")
    }

    func testACutTestEndsTheRunAsStoppedAndResumeAutoTestsAgain() throws {
        let config = try tinyAIMConfig("stop-test", ["train.epochs=2", "checkpoint.interval=1000", "checkpoint.keep_last=0"])
        let dir = freshScratch("stop-test")
        // 8 step boundaries, then the test's batches 9 and 10: the signal at the second.
        let stopped = try run(config, dir, signal: SignalAt(from: 10), testAfter: [.last], val: false)
        XCTAssertEqual(stopped.stopSignal, SIGTERM)
        XCTAssertEqual(stopped.state.step, 8)
        XCTAssertTrue(stopped.tests.isEmpty)
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertFalse(text.contains("\"mode\":\"test\""), text)

        let resumed = try run(config, dir, resume: "auto", testAfter: [.last], val: false)
        XCTAssertEqual(resumed.stopSignal, 0)
        XCTAssertEqual(resumed.tests.map(\.checkpoint), [.last])
        XCTAssertEqual(resumed.tests.first?.result.videos, 6)
    }
}
