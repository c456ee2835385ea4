import AIMConfig
import AIMData
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// aim-eval and aim-predict read a checkpoint's head by the class names it records: a label map
/// with the same names in another order reorders the rows (a list's labels mean what data.classes
/// says), one with other names is refused, and without a map the checkpoint's names are printed.
/// Before, the rows were taken in the file's order: every name permuted, top-1 0 on a trained model.
final class CheckpointClassesTests: XCTestCase {
    let names = ["move_right", "move_left", "move_down", "move_up"]

    lazy var maps: URL = {
        let dir = freshScratch("checkpoint-classes-maps")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    func map(_ name: String, _ names: [String]) throws -> String {
        let path = maps.appendingPathComponent(name).path
        try (names.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func headRows(_ model: Recognizer) -> [[Float]] {
        let w = model.store["cls_head.fc_cls.weight"]!, d = w.shape[1]
        return (0..<w.shape[0]).map { Array(UnsafeBufferPointer(start: w.data + $0 * d, count: d)) }
    }

    func testTheHeadIsReadByTheNamesTheCheckpointRecords() throws {
        let trainedMap = try map("trained.txt", names)
        let config = try tinyAIMConfig("checkpoint-classes", ["checkpoint.interval=1000", "data.classes=\(trainedMap)"])
        let dir = freshScratch("checkpoint-classes")
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        _ = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                        trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16)).run()
        let file = dir.appendingPathComponent("latest.safetensors").path
        let same = try Launch.loadModel(config: config, checkpoint: file, classes: LabelMap.fromConfig(config))
        XCTAssertNil(same.note)
        XCTAssertEqual(same.classes?.names, names)

        // The same names in another order: the rows follow the names.
        let reversed = try LabelMap.load(path: try map("reversed.txt", names.reversed()))
        let reordered = try Launch.loadModel(config: config, checkpoint: file, classes: reversed)
        XCTAssertEqual(headRows(reordered.model), headRows(same.model).reversed())
        XCTAssertTrue(reordered.note?.contains("reordered") ?? false, "\(reordered.note ?? "no note")")

        // Other names: refused, naming the class that differs.
        let other = try LabelMap.load(path: try map("other.txt", ["grow", "move_left", "move_down", "move_up"]))
        XCTAssertThrowsError(try Launch.loadModel(config: config, checkpoint: file, classes: other)) {
            XCTAssertTrue("\($0)".contains("other.txt") && "\($0)".contains("move_right"), "\($0)")
        }

        // No label map: the checkpoint's own names.
        XCTAssertEqual(try Launch.loadModel(config: config, checkpoint: file, classes: nil).classes?.names, names)
    }
}
