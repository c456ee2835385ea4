import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// Batches whose class is visible in every frame (the colour of a square: red, green, blue or
/// white), so even a ViT trained from scratch separates them at once: any working training loop
/// must drive the loss down. (Where the square is would be a poor test: a randomly initialised
/// ViT's class token is close to the mean of its patches and first sits on a long plateau.)
final class QuadrantBatches: BatchSource {
    let localBatch: Int, frames: Int, size: Int
    let stepsPerEpoch = 4
    init(localBatch: Int, frames: Int, size: Int) { self.localBatch = localBatch; self.frames = frames; self.size = size }
    func batch(epoch: Int, step: Int) -> LocalBatch {
        let S = size, T = frames
        let t = Tensor([localBatch, 3, T, S, S])
        var labels: [Int] = []
        var g = RandomGenerator(keys: UInt64(epoch), UInt64(step))
        for b in 0..<localBatch {
            let q = g.int(below: 4); labels.append(q)
            let x0 = g.int(below: S / 2), y0 = g.int(below: S / 2)
            for c in 0..<3 { for f in 0..<T { for y in 0..<S { for x in 0..<S {
                let inside = x >= x0 && x < x0 + S / 2 && y >= y0 && y < y0 + S / 2
                let lit = inside && (q == 3 || q == c)
                t[(((b * 3 + c) * T + f) * S + y) * S + x] = (lit ? 1.5 : -1) + 0.1 * Float(g.normal())
            } } } }
        }
        return LocalBatch(video: t, labels: labels, viewsPerSample: 1, isPadding: Array(repeating: false, count: localBatch))
    }
    var skipped: [String: String] { [:] }
    var skipEvents: Int { 0 }
}

final class TrainerLearnsTests: XCTestCase {
    func testLossFallsOnAnEasyTask() throws {
        var config = Config(name: "learns")
        for s in ["model.input_resolution=16", "model.patch_size=8", "model.width=32", "model.layers=2", "model.heads=4",
                  "model.num_frames=2", "model.num_classes=4", "model.tune=all", "model.adapters=[]", "model.drop_path_rate=0",
                  "model.head_dropout=0", "train.batch_size=8", "train.micro_batch=4", "train.epochs=20", "train.lr=3e-3",
                  "train.warmup_epochs=0", "train.log_interval=1000", "checkpoint.interval=1000"] {
            try config.apply(overrides: [s])
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("learns-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = TrainOptions(); options.workDir = dir; options.threads = 2
        let data = QuadrantBatches(localBatch: 8, frames: 2, size: 16)
        let trainer = try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(), trainData: data)
        let summary = try trainer.run()
        XCTAssertLessThan(summary.lastLoss, 0.6, "loss after 80 steps through the trainer (grad accumulation over 2 micro-batches)")
    }
}

/// The same task without the trainer: forward, cross-entropy, backward, AdamW by hand.
final class ManualLoopTests: XCTestCase {
    func testOverfitOneBatch() throws {
        Threads.set(2)
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 2; c.heads = 4; c.numFrames = 2; c.numClasses = 4
        c.tune = .all; c.adapters = []; c.dropPathRate = 0; c.headDropout = 0
        let model = try Recognizer(config: c, seed: 1)
        let opt = AdamWOptimizer(store: model.store, weightDecay: 0, rules: [])
        let batch = QuadrantBatches(localBatch: 8, frames: 2, size: 16).batch(epoch: 0, step: 0)
        var losses: [Float] = []
        for step in 0..<60 {
            model.store.zeroGrads()
            let logits = try model.forward(video: batch.video.data, context: PassContext(batch: 8, training: true, step: UInt64(step)))
            let loss = batch.labels.withUnsafeBufferPointer { crossEntropyForward(logits: logits.data, labels: $0.baseAddress!, batch: 8, classes: 4) }
            let d = Tensor([8, 4])
            batch.labels.withUnsafeBufferPointer { crossEntropyBackward(dLogits: d.data, logits: logits.data, labels: $0.baseAddress!, batch: 8, classes: 4) }
            try model.backward(dLogits: d.data)
            opt.update(lr: 3e-3)
            losses.append(loss)
        }
        XCTAssertLessThan(losses.last!, 0.3, "from ln 4 = 1.386")
    }
}
