import Foundation
import XCTest
import AIMModel
import AIMTensor

/// `Recognizer.skipsUnreadRows`: the last AIM block runs its attention's queries, out_proj, MLP and
/// S/MLP adapters on each frame's class token alone, since ln_post and the head read nothing else. It must change no result:
/// logits and every tunable gradient equal (to float rounding: the products run on fewer rows)
/// to computing every row, in training (drop-path on, two clips) and in evaluation, while the
/// step keeps fewer bytes.
final class UnreadRowsTests: XCTestCase {
    private func config(_ backbone: ModelConfig.Backbone, tune: ModelConfig.Tune, precision: ModelConfig.Precision = .fp32) -> ModelConfig {
        var c = ModelConfig()
        c.backbone = backbone
        c.inputResolution = 32; c.patchSize = 8; c.width = 64; c.layers = 3; c.heads = 2; c.numFrames = 3; c.numClasses = 5
        if tune == .all { c.adapters = [] }
        c.tune = tune; c.precision = precision
        c.dropPathRate = 0.2; c.headDropout = 0
        return c
    }

    private struct Outcome { let logits: [Float]; let evaluation: [Float]; let grads: [Float]; let kept: Int }

    private func run(_ c: ModelConfig, skipping: Bool) throws -> Outcome {
        Threads.set(2)
        let model = try Recognizer(config: c, seed: 1)
        model.skipsUnreadRows = skipping
        XCTAssertEqual(model.skipsUnreadRows, skipping)
        var rng = RandomGenerator(seed: 3)
        // The adapters' up-projections start at zero: moved off it so every adapter's output counts.
        let w = model.store.tunableValues
        for i in 0..<w.count { w[i] += 0.05 * Float(rng.normal()) }
        let B = 2
        let video = Tensor([B, 3, c.numFrames, c.inputResolution, c.inputResolution])
        for i in 0..<video.count { video[i] = Float(rng.normal()) }
        let evaluation = try model.forward(video: video.data, context: PassContext(batch: B, training: false)).array
        // Two steps: the second one's buffers hold what the first left in them.
        var logits = Tensor([B, c.numClasses]), kept = 0
        for step in [4, 5] as [UInt64] {
            model.store.zeroGrads()
            logits = try model.forward(video: video.data, context: PassContext(batch: B, training: true, step: step, sampleKeys: [7, 9]))
            kept = model.keptBytes
            let d = Tensor([B, c.numClasses])
            for i in 0..<d.count { d[i] = logits[i] * 0.1 + Float(i % 3) - 1 }
            try model.backward(dLogits: d.data)
        }
        return Outcome(logits: logits.array, evaluation: evaluation, grads: model.store.tunableGrads.array, kept: kept)
    }

    /// Largest difference relative to the largest magnitude of `a`.
    private func relative(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        let scale = max(a.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    private func check(_ c: ModelConfig, _ name: String, tolerance: Float) throws {
        let all = try run(c, skipping: false), skipped = try run(c, skipping: true)
        XCTAssertLessThanOrEqual(relative(all.logits, skipped.logits), tolerance, "\(name): training logits")
        XCTAssertLessThanOrEqual(relative(all.evaluation, skipped.evaluation), tolerance, "\(name): evaluation logits")
        XCTAssertLessThanOrEqual(relative(all.grads, skipped.grads), tolerance, "\(name): tunable gradients")
        XCTAssertGreaterThan(all.grads.map(abs).max() ?? 0, 0, "\(name): no gradient reached the blocks")
        XCTAssertLessThan(skipped.kept, all.kept, "\(name): computing the class rows alone should keep less")
    }

    func testCLIPAdaptersAreUnchanged() throws {
        try check(config(.clip, tune: .adapters), "CLIP AIM", tolerance: 1e-5)
    }

    /// The timm ViT draws drop-path per frame (CLIP per token): the class rows' decisions are picked from either.
    func testImageNetAdaptersAreUnchanged() throws {
        try check(config(.imagenet, tune: .adapters), "IN-21K AIM", tolerance: 1e-5)
    }

    func testTwoTemporalAdaptersAreUnchanged() throws {
        var c = config(.clip, tune: .adapters)
        c.numTAdapter = 2
        try check(c, "CLIP AIM, T_Adapter_in", tolerance: 1e-5)
    }

    /// Full finetuning: the last block's MLP weight gradients come from the class rows alone.
    func testFullFinetuningIsUnchanged() throws {
        try check(config(.clip, tune: .all), "CLIP full finetuning", tolerance: 1e-5)
    }

    /// The CLIP TimeSformer baseline (all tunable): its last ln_2 and MLP on the class rows.
    /// Its last spatial attention on the frames' class queries: drop-path high enough that the
    /// frames' decisions differ (at 0.2 they could all keep, and a class row's scale taken from
    /// the wrong row would pass).
    func testCLIPTimeSformerIsUnchanged() throws {
        var c = config(.timesformer, tune: .all)
        c.dropPathRate = 0.6
        try check(c, "CLIP TimeSformer", tolerance: 1e-5)
    }

    /// The IN-21K TimeSformer: one class token per video, tokens in video layout `(h w t)`.
    func testImageNetTimeSformerIsUnchanged() throws {
        var c = config(.imagenet, tune: .all)
        c.dividedSpaceTime = true; c.dropPathRate = 0.6
        try check(c, "IN-21K TimeSformer", tolerance: 1e-5)
    }

    /// In bf16 at three frame lengths: 17 tokens (the fp32 attention), 65 (the bf16 attention where
    /// it runs, whose roundings the class queries repeat) and 10 (the short-sequence kernel where it
    /// runs, which reads q | k | v in bf16). Measured on a Zen 4: logits equal, gradients within
    /// 1e-8; class queries without the bf16 roundings of probabilities and gradients put the full
    /// finetuning gradients 2.5e-4 off.
    func testBF16IsUnchanged() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
        for resolution in [32, 64, 24] {
            var adapters = config(.clip, tune: .adapters, precision: .bf16), full = config(.clip, tune: .all, precision: .bf16)
            adapters.inputResolution = resolution; full.inputResolution = resolution
            try check(adapters, "CLIP AIM bf16, \(resolution)²", tolerance: 1e-4)
            try check(full, "CLIP full finetuning bf16, \(resolution)²", tolerance: 1e-4)
        }
        // Both TimeSformers' class queries in bf16, at the bf16 attention's length (65 tokens).
        var clip = config(.timesformer, tune: .all, precision: .bf16), imagenet = config(.imagenet, tune: .all, precision: .bf16)
        imagenet.dividedSpaceTime = true
        clip.inputResolution = 64; imagenet.inputResolution = 64
        try check(clip, "CLIP TimeSformer bf16", tolerance: 1e-4)
        try check(imagenet, "IN-21K TimeSformer bf16", tolerance: 1e-4)
    }

    /// The Swin family pools every token: nothing to skip, and the switch stays off.
    func testSwinReadsEveryRow() throws {
        var c = ModelConfig()
        c.backbone = .swin2d; c.embedDim = 8; c.depths = [2, 2]; c.numHeads = [1, 2]; c.inputResolution = 32
        c.numFrames = 4; c.numClasses = 3; c.windowSize = [4]
        let model = try Recognizer(config: c, seed: 1)
        model.skipsUnreadRows = true
        XCTAssertFalse(model.skipsUnreadRows)
    }
}
