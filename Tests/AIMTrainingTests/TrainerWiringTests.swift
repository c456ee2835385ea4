import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// What the trainer hands the kernels: the schedule built from the config (its length is the
/// config's run, whatever `--max-steps` stops at), and the label smoothing in the gradients.
final class TrainerWiringTests: XCTestCase {
    func tinyConfig(_ extra: [String]) throws -> Config {
        var config = Config(name: "wiring")
        for s in ["model.input_resolution=16", "model.patch_size=8", "model.width=32", "model.layers=1", "model.heads=4",
                  "model.num_frames=2", "model.num_classes=4", "model.tune=all", "model.adapters=[]", "model.drop_path_rate=0",
                  "model.head_dropout=0", "train.batch_size=8", "train.micro_batch=8", "train.log_interval=1000",
                  "checkpoint.interval=1000"] + extra {
            try config.apply(overrides: [s])
        }
        return config
    }

    func scratch(_ name: String) -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())")
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// `--max-steps` stops early but keeps the config's schedule (5 epochs × 4 steps, warmup
    /// 0.5 epoch = 2 steps), so a later resume continues the same curve.
    func testScheduleSpansTheConfiguredRunWhateverMaxSteps() throws {
        let config = try tinyConfig(["train.epochs=5", "train.warmup_epochs=0.5", "train.lr=0.01"])
        var options = TrainOptions(); options.workDir = scratch("wiring-schedule"); options.threads = 2; options.maxSteps = 4
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                                  trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16))
        XCTAssertEqual(trainer.totalSteps, 4)
        XCTAssertEqual(trainer.schedule.totalSteps, 20)
        XCTAssertEqual(trainer.schedule.warmupSteps, 2)
        // Step 3 of 20, past warmup: 0.005·(1 + cos(0.15π)).
        XCTAssertEqual(trainer.schedule.lr(at: 3), 0.005 * (1 + 0.8910065241883679), accuracy: 1e-12)
        XCTAssertNil(trainer.schedule.stepsPerEpoch)

        // train.lr_by_epoch: the cosine of epoch 0 (the base lr) holds for its 4 steps.
        let byEpoch = try Trainer(config: try tinyConfig(["train.epochs=5", "train.warmup_epochs=0.5", "train.lr=0.01", "train.lr_by_epoch=true"]),
                                  options: { var o = options; o.workDir = scratch("wiring-schedule-epoch"); return o }(),
                                  communicator: SingleProcessCommunicator(),
                                  trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16))
        XCTAssertEqual(byEpoch.schedule.stepsPerEpoch, 4)
        XCTAssertEqual(byEpoch.schedule.lr(at: 3), 0.01, accuracy: 1e-12)
        XCTAssertEqual(byEpoch.schedule.lr(at: 4), 0.005 * (1 + cos(Double.pi / 5)), accuracy: 1e-12)
    }

    /// The step's gradients are those of cross-entropy against the smoothed targets
    /// (1-ε)·onehot + ε/K, worked here outside the trainer with the same model and batch.
    func testLabelSmoothingReachesTheGradients() throws {
        let eps: Float = 0.3
        let config = try tinyConfig(["train.epochs=1", "train.warmup_epochs=0", "train.label_smoothing=\(eps)"])
        var options = TrainOptions(); options.workDir = scratch("wiring-smoothing"); options.threads = 2; options.maxSteps = 1
        let data = QuadrantBatches(localBatch: 8, frames: 2, size: 16)
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(), trainData: data)
        let start = trainer.model.store.tunableValues.array
        let reference = try Recognizer(config: trainer.modelConfig, seed: 99)
        XCTAssertEqual(reference.store.tunableCount, start.count)
        XCTAssertEqual(reference.store.frozenValues.count, 0)
        _ = try trainer.run()
        let trained = trainer.model.store.tunableGrads.array

        reference.store.tunableValues.data.update(from: start, count: start.count)
        reference.store.zeroGrads()
        let batch = data.batch(epoch: 0, step: 0)
        let logits = try reference.forward(video: batch.video.data, context: PassContext(batch: 8, training: true, step: 0))
        let d = Tensor([8, 4])
        batch.labels.withUnsafeBufferPointer {
            crossEntropyBackward(dLogits: d.data, logits: logits.data, labels: $0.baseAddress!, batch: 8, classes: 4, labelSmoothing: eps)
        }
        try reference.backward(dLogits: d.data)
        let expected = reference.store.tunableGrads.array
        let scale = expected.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        let worst = zip(trained, expected).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-4 * scale, "trainer gradients vs cross-entropy with ε = \(eps)")
    }
}

extension TrainerWiringTests {
    /// `eval.by_epoch`: eval.interval counts epochs (4 steps each here): validations end epochs
    /// 2 and 4 (steps 8, 16), and the run's end (step 20) as always.
    func testValidationByEpoch() throws {
        let config = try tinyConfig(["train.epochs=5", "train.warmup_epochs=0", "eval.interval=2", "eval.by_epoch=true"])
        let dir = scratch("wiring-eval-epochs")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                                  trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16), valData: IndexedViews(videos: 2, views: 1))
        _ = try trainer.run()
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let val = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "val" }
        XCTAssertEqual(val.compactMap { $0["step"] as? Int }, [8, 16, 20])
        XCTAssertEqual(val.compactMap { $0["epoch"] as? Int }, [2, 4, 5])
    }

    /// Step records count epochs from 1 with the step within it, as mmaction2's `Epoch [1][3/4]`:
    /// the first epoch's steps are epoch 1 (they read 0, the epochs completed, before).
    func testStepRecordsCountEpochsFromOne() throws {
        let config = try tinyConfig(["train.epochs=2", "train.warmup_epochs=0", "train.log_interval=1"])
        let dir = scratch("wiring-epoch-numbers")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        _ = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                        trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16)).run()
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let train = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "train" }
        XCTAssertEqual(train.compactMap { $0["epoch"] as? Int }, [1, 1, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(train.compactMap { $0["iter"] as? Int }, [1, 2, 3, 4, 1, 2, 3, 4])
        // The batch's accuracy, as mmaction2's top1_acc: eighths of the 8 clips; top-5 of 4 classes is every clip.
        let top1 = train.compactMap { $0["top1"] as? Double }
        XCTAssertEqual(top1.count, 8)
        XCTAssertTrue(top1.allSatisfy { (0...1).contains($0) && ($0 * 8).rounded() == $0 * 8 }, "\(top1)")
        XCTAssertEqual(train.compactMap { $0["top5"] as? Double }, Array(repeating: 1, count: 8))
    }

    /// `checkpoint.by_epoch`: checkpoint.interval counts epochs (4 steps each here): step files end
    /// epochs 2 and 4 (steps 8, 16), and the run's end (step 20) as always.
    func testCheckpointsByEpoch() throws {
        let config = try tinyConfig(["train.epochs=5", "train.warmup_epochs=0", "checkpoint.interval=2", "checkpoint.by_epoch=true",
                                     "checkpoint.keep_last=0"])
        let dir = scratch("wiring-ckpt-epochs")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                                  trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16), valData: nil)
        _ = try trainer.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("checkpoints").path).sorted()
        XCTAssertEqual(files, ["step_00000008.safetensors", "step_00000016.safetensors", "step_00000020.safetensors"])
        // Each train record carries rank 0's peak memory so far, as mmaction2's log lines do.
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let memory = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "train" }.compactMap { $0["memory_mb"] as? Int }
        XCTAssertFalse(memory.isEmpty)
        XCTAssertEqual(memory, memory.sorted(), "a peak never falls")
        XCTAssertGreaterThan(memory.first ?? 0, 5, "a Swift process holding a model resides in more than 5 MB")
    }
}
