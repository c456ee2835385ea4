import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// What a checkpoint gives back: weights, both AdamW moments, AdamW's step count (its bias
/// correction), and the whole training position including the best top-1 so far (which decides
/// whether a later validation becomes `best.safetensors`).
final class CheckpointRoundTripTests: XCTestCase {
    func tinyModel() throws -> Recognizer {
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 1; c.heads = 4; c.numFrames = 2; c.numClasses = 3
        c.tune = .all; c.adapters = []
        return try Recognizer(config: c, seed: 1)
    }

    func testRestoreGivesBackWeightsMomentsAndPosition() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-roundtrip-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try tinyModel()
        let opt = AdamWOptimizer(store: model.store, weightDecay: 0.05, rules: [])
        var g = RandomGenerator(keys: 11)
        for _ in 0..<3 {
            for p in model.store.tunableParameters { for i in 0..<p.count { p.grad!.data[i] = Float(g.normal()) } }
            opt.update(lr: 1e-3)
        }
        let store = CheckpointStore(workDir: dir, keepLast: 2)
        store.log = { _ in }
        let state = TrainingState(step: 12, epoch: 2, stepInEpoch: 4, bestTop1: 0.625)
        let (file, _) = try store.save(model: model, optimizer: opt, state: state, config: "name: x\n", worldSize: 1, isBest: true)

        let fresh = try tinyModel()
        let freshOpt = AdamWOptimizer(store: fresh.store, weightDecay: 0.05, rules: [])
        let (back, config) = try store.restore(file, model: fresh, optimizer: freshOpt)
        XCTAssertEqual(back, state)
        XCTAssertEqual(back.bestTop1, 0.625)
        XCTAssertEqual(config, "name: x\n")
        XCTAssertEqual(freshOpt.step, 3, "AdamW's step count (bias correction) comes back")
        XCTAssertEqual(fresh.store.tunableValues.array, model.store.tunableValues.array)
        XCTAssertEqual(freshOpt.m.array, opt.m.array)
        XCTAssertEqual(freshOpt.v.array, opt.v.array)
        // The next update is then the one the uninterrupted run makes.
        for (a, b) in zip(model.store.tunableParameters, fresh.store.tunableParameters) {
            for i in 0..<a.count { let x = Float(g.normal()); a.grad!.data[i] = x; b.grad!.data[i] = x }
        }
        opt.update(lr: 1e-3); freshOpt.update(lr: 1e-3)
        XCTAssertEqual(fresh.store.tunableValues.array, model.store.tunableValues.array)
    }

    func testPruningKeepsTheNewestSteps() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-prune-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try tinyModel()
        let opt = AdamWOptimizer(store: model.store, weightDecay: 0, rules: [])
        let store = CheckpointStore(workDir: dir, keepLast: 2)
        store.log = { _ in }
        for step in [1, 2, 10, 3] {
            try store.save(model: model, optimizer: opt, state: TrainingState(step: step), config: "", worldSize: 1, isBest: false)
        }
        XCTAssertEqual(store.stepFiles().map(\.lastPathComponent), ["step_00000010.safetensors", "step_00000003.safetensors"])
    }
}
