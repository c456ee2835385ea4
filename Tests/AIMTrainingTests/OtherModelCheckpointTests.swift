import AIMConfig
import AIMDistributed
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// aim-eval and aim-predict given a checkpoint of another architecture name its first differing
/// weight: an AIM checkpoint with a space-only config (it loaded its head alone and printed the
/// figures of another model, status 0), and another backbone's checkpoint (it was blamed on the
/// frozen weights, pointing at model.pretrained).
final class OtherModelCheckpointTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func aimCheckpoint() throws -> (Config, URL) {
        let config = try tinyAIMConfig("other-model", ["checkpoint.interval=1000"])
        let dir = freshScratch("other-model")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        _ = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                        trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16)).run()
        return (config, dir.appendingPathComponent("latest.safetensors"))
    }

    func testAnAIMCheckpointWithASpaceOnlyConfigIsRefused() throws {
        let (config, file) = try aimCheckpoint()
        XCTAssertNoThrow(try Launch.loadModel(config: config, checkpoint: file.path))
        var spaceOnly = config
        try spaceOnly.apply(overrides: ["model.adapters=[]"])
        XCTAssertThrowsError(try Launch.loadModel(config: spaceOnly, checkpoint: file.path)) {
            XCTAssertTrue("\($0)".contains("the file holds the tunable weight backbone.") && "\($0)".contains("Adapter")
                          && "\($0)".contains("which this config's model does not have"), "\($0)")
        }
    }

    func testAnotherBackbonesCheckpointNamesTheWeightNotTheFrozenWeights() throws {
        let (_, file) = try aimCheckpoint()
        let swin = try Config.load(path: Self.root.appendingPathComponent("configs/debug/tiny_swin_aim.yaml").path, overrides: ["model.pretrained="])
        XCTAssertThrowsError(try Launch.loadModel(config: swin, checkpoint: file.path)) {
            XCTAssertTrue("\($0)".contains("this config's tunable weight") && "\($0)".contains("is not in the file"), "\($0)")
            XCTAssertFalse("\($0)".contains("frozen weights"), "\($0)")
        }
    }
}
