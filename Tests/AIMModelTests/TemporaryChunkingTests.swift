import XCTest
import AIMModel
import AIMTensor

/// Large inputs go through the MLP and Swin's window attention in row chunks
/// (TemporaryChunking.maxFloats). Forcing chunks of a few rows (one window) on small models must
/// give the logits and every gradient of the unchunked pass, up to
/// rounding: the GEMM libraries pick other kernels for a few rows than for many, and the weight
/// gradients add the chunks' sums in another order.
final class TemporaryChunkingTests: XCTestCase {
    override func tearDown() { TemporaryChunking.maxFloats = 1 << 23 }

    func pass(_ c: ModelConfig) throws -> (logits: [Float], grads: [String: [Float]]) {
        Threads.set(2)
        let B = 2
        let (model, video) = try perturbedModelAndClips(c, batch: B)
        let labels = [0, 2]
        let logits = try model.forward(video: video.data, context: PassContext(batch: B, training: true, seed: 5, step: 1))
        let d = Tensor([B, c.numClasses])
        labels.withUnsafeBufferPointer { crossEntropyBackward(dLogits: d.data, logits: logits.data, labels: $0.baseAddress!, batch: B, classes: c.numClasses) }
        model.store.zeroGrads()
        try model.backward(dLogits: d.data)
        var grads: [String: [Float]] = [:]
        for p in model.store.tunableParameters { grads[p.name] = p.grad!.array }
        return (logits.array, grads)
    }

    func check(_ c: ModelConfig, _ tag: String) throws {
        TemporaryChunking.maxFloats = 1 << 23
        let whole = try pass(c)
        TemporaryChunking.maxFloats = 1   // chunks of 16 rows, the last one partial
        let chunked = try pass(c)
        for (a, b) in zip(whole.logits, chunked.logits) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(a)), "\(tag): logits") }
        XCTAssertFalse(whole.grads.isEmpty)
        for (name, g) in whole.grads {
            let h = chunked.grads[name]!
            let scale = max(1e-6, g.map { abs($0) }.max()!)
            let worst = zip(g, h).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst / scale, 1e-5, "\(tag): \(name)")
        }
    }

    func testViTAIM() throws {
        var c = ModelConfig()
        c.inputResolution = 32; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        try check(c, "ViT AIM")
    }

    /// bf16 keeps the MLP's fc1 output in bf16 and widens it chunk by chunk in backward.
    func testViTFullFinetuningBF16() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
        var c = ModelConfig()
        c.inputResolution = 32; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        c.adapters = []; c.tune = .all; c.precision = .bf16
        try check(c, "ViT full finetuning bf16")
    }

    func testSwinAIMAndVideoSwin() throws {
        var c = ModelConfig()
        c.backbone = .swin2d; c.numFrames = 4; c.inputResolution = 56; c.swinPatch = [2, 4, 4]
        c.embedDim = 16; c.depths = [2, 2]; c.numHeads = [2, 4]; c.windowSize = [7]; c.numClasses = 3
        c.tune = .adapters
        try check(c, "AIM Swin")
        c.backbone = .videoswin; c.windowSize = [2, 7, 7]; c.adapters = []; c.tune = .all
        try check(c, "VideoSwin")
    }
}
