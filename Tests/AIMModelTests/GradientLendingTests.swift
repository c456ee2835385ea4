import Foundation
import XCTest
import AIMModel
import AIMTensor

/// `Recognizer.lendsGradientMemory`: a training forward after `zeroGrads()` keeps each block's
/// activations first in the (still zero) gradients of the block below it. It changes where bytes
/// live, never a result: every order a caller may use (zero before or after the forward, two
/// micro-batches accumulating, a forward repeated before its backward, an evaluation forward in
/// between) must give bit-identical gradients and weights with it on and off.
final class GradientLendingTests: XCTestCase {
    private func vit(_ precision: ModelConfig.Precision, adapters: Bool) -> ModelConfig {
        var c = ModelConfig()
        c.inputResolution = 32; c.patchSize = 8; c.width = 64; c.layers = 3; c.heads = 2; c.numFrames = 3; c.numClasses = 5
        if adapters { c.tune = .adapters } else { c.adapters = []; c.tune = .all }
        c.precision = precision
        c.dropPathRate = 0.1; c.headDropout = 0.2
        return c
    }

    private func swin(_ backbone: ModelConfig.Backbone) -> ModelConfig {
        var c = ModelConfig()
        c.backbone = backbone; c.embedDim = 8; c.depths = [2, 2]; c.numHeads = [1, 2]; c.inputResolution = 32
        c.numFrames = 4; c.numClasses = 3
        if backbone == .videoswin { c.windowSize = [2, 4, 4]; c.tune = .all; c.adapters = [] } else { c.windowSize = [4] }
        return c
    }

    private enum Order: CaseIterable { case zeroFirst, zeroAfterForward, twoMicroBatches, forwardTwice, evaluationBetween }

    /// Two steps in `order`, each followed by an SGD update; the final gradients and weights, and
    /// the largest `lentBytes` seen after a training forward.
    private func run(_ c: ModelConfig, lending: Bool, order: Order) throws -> (result: [Float], lent: Int) {
        Threads.set(2)
        let model = try Recognizer(config: c, seed: 1)
        model.lendsGradientMemory = lending
        let video = Tensor([2, 3, c.numFrames, c.inputResolution, c.inputResolution])
        var rng = RandomGenerator(seed: 3)
        for i in 0..<video.count { video[i] = Float(rng.normal()) }
        let frame = video.count / 2
        var lent = 0
        func pass(_ t: Int, sample: Int) throws -> Tensor {
            let logits = try model.forward(video: video.data + sample * frame,
                                           context: PassContext(batch: 1, training: true, step: UInt64(t), sampleKeys: [UInt64(sample)]))
            lent = max(lent, model.lentBytes)
            return logits
        }
        func backward(_ logits: Tensor) throws {
            let d = Tensor([1, c.numClasses])
            for i in 0..<d.count { d[i] = logits[i] * 1e-2 + 0.1 }
            try model.backward(dLogits: d.data)
        }
        for t in 1...2 {
            switch order {
            case .zeroFirst:
                model.store.zeroGrads(); try backward(try pass(t, sample: 0))
            case .zeroAfterForward:
                let logits = try pass(t, sample: 0); model.store.zeroGrads(); try backward(logits)
            case .twoMicroBatches:
                model.store.zeroGrads(); try backward(try pass(t, sample: 0)); try backward(try pass(t, sample: 1))
            case .forwardTwice:
                model.store.zeroGrads(); _ = try pass(t, sample: 1); try backward(try pass(t, sample: 0))
            case .evaluationBetween:
                model.store.zeroGrads(); _ = try pass(t, sample: 1)
                _ = try model.forward(video: video.data, context: PassContext(batch: 1, training: false))
                model.store.zeroGrads(); try backward(try pass(t, sample: 0))
            }
            let g = model.store.tunableGrads, w = model.store.tunableValues
            for i in 0..<w.count { w[i] -= 0.01 * g[i] }
        }
        return (model.store.tunableGrads.array + model.store.tunableValues.array, lent)
    }

    private func check(_ c: ModelConfig, _ name: String, expectLending: Bool) throws {
        for order in Order.allCases {
            let off = try run(c, lending: false, order: order), on = try run(c, lending: true, order: order)
            XCTAssertEqual(off.lent, 0)
            XCTAssertEqual(off.result, on.result, "\(name), \(order): lending gradient memory changed the result")
            if expectLending && order != .zeroAfterForward {
                XCTAssertGreaterThan(on.lent, 0, "\(name), \(order): nothing was kept in gradient memory")
            }
        }
    }

    func testViTFullFinetuning() throws {
        try check(vit(.fp32, adapters: false), "ViT full finetuning fp32", expectLending: true)
        if BF16Support.unavailableReason == nil {
            try check(vit(.bf16, adapters: false), "ViT full finetuning bf16", expectLending: true)
        }
    }

    func testViTAdapters() throws {
        try check(vit(.fp32, adapters: true), "AIM ViT", expectLending: true)
    }

    func testSwin() throws {
        try check(swin(.swin2d), "AIM Swin", expectLending: true)
        try check(swin(.videoswin), "Video Swin", expectLending: true)
    }

    /// The point of it: a full-finetuning block's kept buffers sit in lent gradient memory, so
    /// the bytes of its own the model holds between forward and backward drop by most of a
    /// block's gradients per block above the first.
    func testLentBytesOfViTB16FullFinetuning() throws {
        var c = ModelConfig()
        c.adapters = []; c.tune = .all; c.dropPathRate = 0; c.headDropout = 0
        let model = try Recognizer(config: c, seed: 1)
        let video = Tensor([1, 3, c.numFrames, c.inputResolution, c.inputResolution])
        Threads.set(2)
        _ = try model.forward(video: video.data, context: PassContext(batch: 1, training: true))
        let blockGradients = 12 * 768 * 768 + 13 * 768   // in_proj, out_proj, c_fc, c_proj, two LayerNorms
        let lent = Double(model.lentBytes), perBlock = Double(blockGradients * 4)
        print(String(format: "ViT-B/16 full finetuning 8f fp32: kept %.0f MiB, %.0f MiB of it in lent gradient memory (%.0f%% of 11 blocks' gradients)",
                     Double(model.keptBytes) / 1048576, lent / 1048576, 100 * lent / (11 * perBlock)))
        XCTAssertGreaterThan(lent, 0.8 * 11 * perBlock)   // what first-fit packs: c_fc's output, then what fits
        XCTAssertLessThanOrEqual(lent, 11 * perBlock)
    }
}
