import Foundation
import XCTest
import AIMModel
import AIMTensor

/// A bf16 model gives back the fp32 values of frozen linear weights once their bf16 copies exist
/// (`Recognizer.releaseFrozenFP32Weights`, which the trainer calls after loading): the results
/// stay the same bit for bit, the pages go back, the fold's projections keep theirs, and a later
/// load into a released weight is refused with the weight named.
final class BF16FrozenReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
    }

    /// Small enough to run in a second, large enough that frozen values are a mapping of their own
    /// (≥ 1 MiB) and each linear weight spans whole pages.
    private func config(_ backbone: ModelConfig.Backbone, spaceOnly: Bool = false) -> ModelConfig {
        var c = ModelConfig()
        if spaceOnly { c.adapters = [] }
        c.precision = .bf16; c.dropPathRate = 0; c.headDropout = 0; c.numClasses = 5
        switch backbone {
        case .swin2d:
            c.backbone = .swin2d; c.numFrames = 4; c.inputResolution = 32; c.swinPatch = [2, 4, 4]; c.windowSize = [4]
            c.embedDim = 64; c.depths = [2, 2]; c.numHeads = [2, 4]
        default:
            c.backbone = backbone; c.inputResolution = 32; c.patchSize = 16; c.width = 128; c.layers = 2; c.heads = 4; c.numFrames = 3
        }
        return c
    }

    /// Logits and tunable gradients of two training steps (the second after an optimizer-free
    /// change of the tunable weights, so the bf16 copies are used twice).
    private func run(_ model: Recognizer, _ c: ModelConfig) throws -> [Float] {
        let video = Tensor([1, 3, c.numFrames, c.inputResolution, c.inputResolution])
        var rng = RandomGenerator(seed: 3)
        for i in 0..<video.count { video[i] = Float(rng.normal()) }
        var out: [Float] = []
        for step in 0..<2 {
            model.store.zeroGrads()
            let logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true, step: UInt64(step)))
            out += (0..<logits.count).map { logits[$0] }
            let dLogits = Tensor([1, c.numClasses])
            for i in 0..<dLogits.count { dLogits[i] = logits[i] * 0.1 + Float(i == 2 ? -1 : 0) }
            try model.backward(dLogits: dLogits.data)
            let g = model.store.tunableGrads
            out += (0..<g.count).map { g[$0] }
            let w = model.store.tunableValues
            for i in 0..<w.count { w[i] -= 0.01 * g[i] }
        }
        return out
    }

    private func check(_ backbone: ModelConfig.Backbone, spaceOnly: Bool = false) throws {
        Threads.set(2)
        let c = config(backbone, spaceOnly: spaceOnly)
        let kept = try Recognizer(config: c, seed: 1)
        let released = try Recognizer(config: c, seed: 1)
        let frozenLinear = released.store.parameters.filter { !$0.tunable && $0.reducedPrecision }
        XCTAssertFalse(frozenLinear.isEmpty)
        let bytes = released.releaseFrozenFP32Weights()
        let linearBytes = frozenLinear.reduce(0) { $0 + 4 * $1.count }
        let stillFP32 = frozenLinear.filter { !$0.fp32Released }
        // The AIM models fold each temporal projection into T_Adapter's fc1, which reads it in fp32.
        let folded = !spaceOnly && (backbone == .swin2d || backbone == .clip)
        XCTAssertEqual(stillFP32.isEmpty, !folded, "\(backbone): \(stillFP32.map(\.name))")
        XCTAssertTrue(stillFP32.allSatisfy { $0.name.hasSuffix("out_proj.weight") || $0.name.hasSuffix("attn.proj.weight") }, "\(stillFP32.map(\.name))")
        let keptBytes = stillFP32.reduce(0) { $0 + 4 * $1.count }
        XCTAssertGreaterThan(bytes, (linearBytes - keptBytes) * 9 / 10, "\(backbone): whole pages of the released weights go back")
        XCTAssertEqual(released.store.frozenFP32Bytes, released.store.frozenValues.bytes - bytes)
        XCTAssertEqual(kept.store.frozenFP32Bytes, kept.store.frozenValues.bytes)
        XCTAssertEqual(try run(kept, c), try run(released, c), "\(backbone): the same results bit for bit")
    }

    func testCLIPAIM() throws { try check(.clip) }
    func testSwinAIM() throws { try check(.swin2d) }

    func testFrozenSpaceOnly() throws { try check(.clip, spaceOnly: true) }

    func testLoadingIntoAReleasedWeightIsRefused() throws {
        let c = config(.clip)
        let source = try Recognizer(config: c, seed: 2)
        var writer = SafetensorsWriter()
        source.addWeights(to: &writer)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("release-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try writer.save(to: file.path)
        let model = try Recognizer(config: c, seed: 1)
        XCTAssertGreaterThan(model.releaseFrozenFP32Weights(), 0)
        XCTAssertThrowsError(try model.loadWeights(path: file.path, strict: false, ignoring: [])) { error in
            XCTAssertTrue("\(error)".contains("given back for its bf16 copy"), "\(error)")
        }
    }
}
