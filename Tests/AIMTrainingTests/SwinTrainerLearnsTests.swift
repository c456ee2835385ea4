import AIMConfig
import AIMDistributed
import AIMModel
import AIMTraining
import Foundation
import XCTest

/// The Swin backbones through the trainer on the easy colour task of TrainerLearnsTests
/// (QuadrantBatches): AIM-Swin trains only its adapters and head on a frozen random Swin, with
/// drop-path and head dropout on; Video Swin trains everything. Either must drive the loss well
/// below ln 4 = 1.386.
final class SwinTrainerLearnsTests: XCTestCase {
    func train(_ sets: [String], steps: Int) throws -> Float {
        var config = Config(name: "swin-learns")
        for s in ["model.input_resolution=32", "model.patch_size=[2, 4, 4]", "model.embed_dim=16", "model.depths=[2, 2]",
                  "model.num_heads=[1, 2]", "model.num_frames=4", "model.num_classes=4", "train.batch_size=8",
                  "train.micro_batch=4", "train.max_steps=\(steps)", "train.lr=3e-3", "train.warmup_epochs=0",
                  "train.log_interval=1000", "checkpoint.interval=1000"] + sets {
            try config.apply(overrides: [s])
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swin-learns-\(getpid())-\(sets.count)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let data = QuadrantBatches(localBatch: 8, frames: 4, size: 32)
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(), trainData: data)
        return try trainer.run().lastLoss
    }

    func testAIMSwinAdaptersLearn() throws {
        let loss = try train(["model.backbone=swin2d", "model.window_size=4", "model.tune=adapters",
                              "model.drop_path_rate=0.1", "model.head_dropout=0.1"], steps: 120)
        XCTAssertLessThan(loss, 0.7, "AIM-Swin loss after 120 steps")
    }

    func testVideoSwinLearns() throws {
        let loss = try train(["model.backbone=videoswin", "model.window_size=[2, 4, 4]", "model.tune=all", "model.adapters=[]",
                              "model.drop_path_rate=0.1", "model.head_dropout=0"], steps: 60)
        XCTAssertLessThan(loss, 0.7, "Video Swin loss after 60 steps")
    }
}
