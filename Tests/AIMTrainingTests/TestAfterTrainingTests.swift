import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// `--test-last` / `--test-best`: once a run is complete, the weights of latest.safetensors and
/// of best.safetensors are tested as aim-eval tests those files.
final class TestAfterTrainingTests: XCTestCase {
    /// A checkpoint every step, validation only at the end, 2 test clips per video.
    func tinyConfig() throws -> Config {
        try tinyAIMConfig("test-after", ["checkpoint.interval=1", "checkpoint.keep_last=0", "eval.interval=1000", "data.test_num_clips=2"])
    }

    func scratch(_ name: String) -> URL { freshScratch(name) }

    func testLastAndBestAreTestedAsAimEvalTestsTheirFiles() throws {
        let config = try tinyConfig()
        let dir = scratch("test-after")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let train = QuadrantBatches(localBatch: 8, frames: 2, size: 16), val = IndexedViews(videos: 4, views: 1)
        do {
            let first = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(), trainData: train, valData: val)
            XCTAssertEqual(try first.run().state.step, 4)
        }
        // As if the validation of step 2 had been the best: best.safetensors is that step's file.
        let step2 = dir.appendingPathComponent("checkpoints/step_00000002.safetensors")
        let best = dir.appendingPathComponent("best.safetensors")
        try FileManager.default.removeItem(at: best)
        try FileManager.default.copyItem(at: step2, to: best)

        // A complete run resumed with both flags trains nothing and tests last, then best.
        options.resume = "auto"; options.testAfter = [.best, .last]
        let test = IndexedViews(videos: 3, views: 2)
        let summary = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                                  trainData: train, valData: val, testData: test).run()
        XCTAssertEqual(summary.tests.map(\.checkpoint), [.last, .best])
        XCTAssertEqual(summary.tests.map(\.step), [4, 2])

        // aim-eval's path: a fresh model from each file (frozen weights from train.seed), evaluated alone.
        for (tested, file) in zip(summary.tests, [dir.appendingPathComponent("latest.safetensors"), step2]) {
            let model = try Launch.loadModel(config: config, checkpoint: file.path)
            let expected = try Evaluator(model: model, comm: SingleProcessCommunicator(), numClasses: 4, seed: 0).run(test)
            XCTAssertEqual(tested.result.videos, 6)
            XCTAssertEqual(tested.result.indices, expected.indices)
            XCTAssertEqual(tested.result.labels, expected.labels)
            let worst = zip(tested.result.scores.joined(), expected.scores.joined()).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-6, "\(tested.checkpoint): probabilities differ from \(file.lastPathComponent)'s")
            XCTAssertEqual(tested.result.top1, expected.top1)
        }
        // The two tests saw different weights (else the comparison above could not tell them apart).
        XCTAssertNotEqual(summary.tests[0].result.scores, summary.tests[1].result.scores)

        // Recorded in metrics.jsonl, after the run's own records.
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let tests = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "test" }
        XCTAssertEqual(tests.map { $0["checkpoint"] as? String }, ["last", "best"])
        XCTAssertEqual(tests.map { $0["step"] as? Int }, [4, 2])
        XCTAssertEqual(tests.map { $0["views"] as? String }, ["2×2×1", "2×2×1"])
        XCTAssertEqual(tests.map { $0["average_clips"] as? String }, ["prob", "prob"])
        XCTAssertEqual(tests.map { $0["epoch"] as? Int }, [1, 1], "the epoch each tested checkpoint was written in, from 1 (4 steps an epoch)")
        XCTAssertEqual(tests.map { $0["top1"] as? Double }, summary.tests.map(\.result.top1))
    }

    /// Without validation there is no best checkpoint: refused before the work dir is made.
    func testTestBestWithoutValidationIsRefusedBeforeTraining() throws {
        let dir = scratch("test-best-no-val")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2; options.testAfter = [.best]
        XCTAssertThrowsError(try Trainer(config: try tinyConfig(), options: options, communicator: SingleProcessCommunicator(),
                                         trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16), testData: IndexedViews(videos: 3, views: 2))) {
            XCTAssertTrue("\($0)".contains("--test-best: data.val is empty"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path))
    }
}

/// The same from the command line under `mpirun -n 2`: the figures `aim-train --test-last
/// --test-best` prints are aim-eval's on latest.safetensors and best.safetensors.
final class TestAfterTrainingToolTests: TrainToolTestCase {
    func testTwoRanksTestLastAndBestAsAimEval() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 4, ["eval.interval=2"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        // best.safetensors from step 2, whichever validation won: best and last are other weights.
        let best = wd.appendingPathComponent("best.safetensors")
        try FileManager.default.removeItem(at: best)
        try FileManager.default.copyItem(at: stepFile(wd, 2), to: best)
        r = try train(trainArgs(data: data, workDir: wd, steps: 4, ["eval.interval=2"]) + ["--resume", "auto", "--test-last", "--test-best"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("nothing to train"), r.output)
        XCTAssertTrue(r.output.contains("test of the last checkpoint (step 4; data.val, views 8×1×1)"), r.output)
        XCTAssertTrue(r.output.contains("test of the best checkpoint (step 2; data.val, views 8×1×1)"), r.output)
        let tests = try metrics(wd).filter { $0["mode"] as? String == "test" }
        XCTAssertEqual(tests.map { $0["checkpoint"] as? String }, ["last", "best"])

        for (record, file) in zip(tests, ["latest.safetensors", "best.safetensors"]) {
            let e = try run(try tool("aim-eval"), ["--config", Self.tinyConfig, "--threads", "1", "--json",
                                                  "--checkpoint", wd.appendingPathComponent(file).path,
                                                  "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                                                  "--set", "model.num_classes=4", "--set", "model.pretrained="])
            XCTAssertEqual(e.status, 0, e.output)
            let line = try XCTUnwrap(e.output.split(separator: "\n").last { $0.hasPrefix("{") }, e.output)
            let eval = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in ["top1", "top5", "mean_class_accuracy", "videos", "skipped"] {
                XCTAssertEqual((record[key] as? NSNumber)?.doubleValue, (eval[key] as? NSNumber)?.doubleValue, "\(file): \(key)")
            }
        }

        // Without validation there is no best: refused before any step, exit status 1.
        r = try train(trainArgs(data: data, workDir: workDir("no-val"), steps: 2, ["data.val="]) + ["--test-best"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("--test-best: data.val is empty"), r.output)
    }
}

extension TestAfterTrainingTests {
    /// A best.safetensors that cannot be read stops the test with its path, exit status 1.
    func testAnUnreadableBestIsNamed() throws {
        let config = try tinyConfig()
        let dir = scratch("test-best-unreadable")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let train = QuadrantBatches(localBatch: 8, frames: 2, size: 16), val = IndexedViews(videos: 4, views: 1)
        do { _ = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(), trainData: train, valData: val).run() }
        let best = dir.appendingPathComponent("best.safetensors")
        try FileManager.default.removeItem(at: best)
        try Data("not a checkpoint".utf8).write(to: best)
        options.resume = "auto"; options.testAfter = [.best]
        XCTAssertThrowsError(try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                                         trainData: train, valData: val, testData: IndexedViews(videos: 3, views: 2)).run()) {
            let stop = $0 as? AgreedStop
            XCTAssertEqual(stop?.status, 1, "\($0)")
            XCTAssertTrue(stop?.message?.hasPrefix("--test-best: \(best.path)") ?? false, "\($0)")
        }
    }
}
