import Foundation
import XCTest
import AIMModel
import AIMTensor

/// What a bf16 full-finetuning step holds (docs/PERFORMANCE.md, "What each byte of a bf16
/// full-finetuning step is"): no bf16 copy of a tunable weight, and the inputs kept for the
/// tunable linears' weight gradients in bf16 (2 bytes a value, the operand the product reads),
/// as autocast keeps them. Checked from the model's own accounting (`Recognizer.keptBytes`,
/// `ParameterStore.bf16CopyBytes`), so a change that keeps something twice makes these fail.
final class BF16MemoryTests: XCTestCase {
    override func setUpWithError() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
    }

    private func fullFinetuning(_ precision: ModelConfig.Precision, small: Bool) -> ModelConfig {
        var c = ModelConfig()
        if small { c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3 }
        c.adapters = []; c.tune = .all; c.precision = precision
        c.dropPathRate = 0; c.headDropout = 0
        return c
    }

    /// One forward + backward on random frames; the model after it (its arenas hold the step's buffers).
    private func step(_ c: ModelConfig) throws -> Recognizer {
        Threads.set(2)
        let model = try Recognizer(config: c, seed: 1)
        let video = Tensor([1, 3, c.numFrames, c.inputResolution, c.inputResolution])
        var rng = RandomGenerator(seed: 3)
        for i in 0..<video.count { video[i] = Float(rng.normal()) }
        let logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true))
        let dLogits = Tensor([1, c.numClasses])
        for i in 0..<dLogits.count { dLogits[i] = logits[i] * 1e-2 }
        model.store.zeroGrads()
        try model.backward(dLogits: dLogits.data)
        return model
    }

    /// Per block, in floats, what a full-finetuning space-only block keeps (R rows, D wide, 4D hidden):
    /// fp32: ln_1 mean/rstd and ln_2 rstd (3R), q|k|v (3RD), attention output (RD), ln_2's x̂ (RD),
    /// c_fc's output (4RD) = 9RD + 3R. bf16: the attention output (out_proj's input) in bf16 (RD/2)
    /// and c_fc's output in bf16 (2RD), as autocast keeps both = 6.5RD + 3R. Not kept in either, rebuilt in backward bit for bit: ln_1's output (from the
    /// block input), ln_2's output (from x̂), QuickGELU's output (from c_fc's output).
    func testSmallModelKeepsBF16InputsAndNoTunableCopies() throws {
        let fp32 = try step(fullFinetuning(.fp32, small: true))
        let bf16 = try step(fullFinetuning(.bf16, small: true))
        let c = fullFinetuning(.bf16, small: true)
        let R = c.numFrames * c.tokensPerFrame, D = c.width, L = c.layers
        XCTAssertEqual(bf16.store.bf16CopyBytes(tunable: true), 0, "tunable weights are rounded per use, not kept in bf16")
        // Exactly out_proj's kept input (RD values) and c_fc's output (4RD) narrow from 4 to 2 bytes a value;
        // the last block's out_proj and c_fc run on the T class rows alone (`AIMBlock.classRowsOnly`).
        let rows = (L - 1) * R + c.numFrames
        XCTAssertEqual(fp32.keptBytes - bf16.keptBytes, 2 * (rows * D + 4 * rows * D), "bf16 keeps out_proj's input and c_fc's output in bf16")
        // Besides the blocks: block outputs (L − 1), x0 and the embedding sum (RD each), frames, ln_pre's
        // mean and rstd, and the head's class-token rows (c, z: 2TD; mean, rstd: 2T; pooled: D).
        let outside = (L - 1 + 2) * R * D + c.numFrames * 3 * c.inputResolution * c.inputResolution + 2 * R
            + 2 * c.numFrames * D + 2 * c.numFrames + D
        // Sequences this short (N = 5 ≤ attentionProbabilitiesKeptMaxLength) keep their attention
        // probabilities too (ViT-B/16's 197 tokens recompute them): frames · heads · N² per block.
        let N = c.tokensPerFrame, probs = N <= attentionProbabilitiesKeptMaxLength ? c.numFrames * c.heads * N * N : 0
        XCTAssertLessThanOrEqual(fp32.keptBytes, 4 * (L * (9 * R * D + 3 * R + probs) + outside))
        XCTAssertLessThanOrEqual(bf16.keptBytes, 2 * (L * (13 * R * D + 6 * R + 2 * probs) + 2 * outside))
    }

    /// ViT-B/16 CLIP, 8×224², batch 1, full finetuning in bf16: the accounted bytes of the step
    /// (fp32 weights, gradients, AdamW's m and v, kept activations, scratch, bf16 operand buffers)
    /// stay below 1700 MiB (1950 before kept buffers went into lent gradient memory, 2440 when tunable
    /// weights kept bf16 copies and every kept input was fp32).
    func testViTB16FullFinetuningAccounting() throws {
        let c = fullFinetuning(.bf16, small: false)
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)   // reset VmHWM
        let rssBefore = Self.statusKB("VmRSS")
        let model = try step(c)
        let peakKB = Self.statusKB("VmHWM")
        let MiB = Double(1 << 20)
        let values = model.store.tunableValues.bytes + model.store.frozenValues.bytes
        let fixed = values + 3 * model.store.tunableGrads.bytes   // gradients, AdamW m and v (allocated by the optimizer)
        let copies = model.store.bf16CopyBytes(tunable: true) + model.store.bf16CopyBytes(tunable: false)
        let work = model.scratchBytes + model.unkeptBytes + bf16OperandBytes
        // Kept buffers in lent gradient memory (`Recognizer.lendsGradientMemory`) are counted once, as gradients.
        let total = fixed + copies + model.keptBytes - model.lentBytes + work
        print(String(format: "bf16 full finetuning ViT-B/16 8f: weights+grads+AdamW %.0f MiB, bf16 copies %.0f, kept %.0f (%.0f of it in gradient memory), "
                     + "workspace %.0f, accounted %.0f MiB; forward+backward peak RSS growth %.0f MiB (no AdamW buffers here)",
                     Double(fixed) / MiB, Double(copies) / MiB, Double(model.keptBytes) / MiB, Double(model.lentBytes) / MiB, Double(work) / MiB,
                     Double(total) / MiB, Double(peakKB - rssBefore) / 1024))
        XCTAssertEqual(copies, 0, "full finetuning: every linear weight is tunable, none keeps a bf16 copy")
        XCTAssertLessThanOrEqual(Double(model.keptBytes) / MiB, 550, "kept activations (896 MiB with fp32 kept inputs)")
        XCTAssertLessThanOrEqual(Double(total) / MiB, 1700, "1950 before kept buffers went into lent gradient memory")
    }

    /// `releasesStepMemory` changes where bytes live, not a bit of the result: two steps (gradients
    /// zeroed by page release, kept buffers re-made after each backward) give the same gradients
    /// and weights as with it off, in fp32 and bf16. The gradient buffer (6 MB) is large enough for
    /// the page-release path.
    func testReleasingStepMemoryGivesTheSameGradients() throws {
        for precision in [ModelConfig.Precision.fp32, .bf16] {
            var c = fullFinetuning(precision, small: true)
            c.width = 256; c.heads = 4; c.inputResolution = 32
            var results: [[Float]] = []
            for release in [false, true] {
                Threads.set(2)
                let model = try Recognizer(config: c, seed: 1)
                model.releasesStepMemory = release
                let video = Tensor([1, 3, c.numFrames, c.inputResolution, c.inputResolution])
                var rng = RandomGenerator(seed: 3)
                for i in 0..<video.count { video[i] = Float(rng.normal()) }
                let dLogits = Tensor([1, c.numClasses])
                for t in 1...2 {
                    model.store.zeroGrads()
                    let logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true, step: UInt64(t)))
                    for i in 0..<dLogits.count { dLogits[i] = logits[i] * 1e-2 + 0.1 }
                    try model.backward(dLogits: dLogits.data)
                    let g = model.store.tunableGrads, w = model.store.tunableValues
                    for i in 0..<w.count { w[i] -= 0.01 * g[i] }
                }
                results.append(model.store.tunableGrads.array + model.store.tunableValues.array)
            }
            XCTAssertEqual(results[0], results[1], "\(precision): releasing step memory changed the result")
        }
    }

    private static func statusKB(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
