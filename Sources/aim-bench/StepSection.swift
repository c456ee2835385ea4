import AIMModel
import AIMTensor
import Foundation

/// One training step (forward, cross-entropy, backward, no optimizer) of ViT-B/16 with 8 frames
/// of 224², batch 1, random weights: AIM adapters, full finetuning and frozen space-only, side by
/// side, without the optimizer. TorchComparisonSection times the full step (with AdamW) against
/// PyTorch and the sgemm roofline.
struct StepSection: BenchSection {
    let title = "Training step: ViT-B/16 CLIP, 8×224², batch 1"
    let summary = "Forward + cross-entropy + backward of one clip (weight gradients only for tunable parameters), random weights and input; min / median / max over rounds, one model after another."

    func run(_ context: BenchContext) throws -> [BenchTable] {
        let models: [(String, (inout ModelConfig) -> Void)] = [
            ("AIM (adapters tunable)", { _ in }),
            ("full finetuning (space-only, all tunable)", { $0.adapters = []; $0.tune = .all }),
            ("frozen space-only (ln_post + head)", { $0.adapters = [] }),
        ]
        let precisions: [ModelConfig.Precision] = BF16Support.isAvailable ? [.fp32, .bf16] : [.fp32]
        let variants = precisions.flatMap { precision in
            models.map { name, edit in ("\(name) \(precision.rawValue)", { (c: inout ModelConfig) in edit(&c); c.precision = precision }) }
        }
        var table = BenchTable(title: "Step time", columns: ["model", "tunable params", "forward s", "backward s", "step s (min / median / max)",
                                                             "activations kept MB", "scratch MB"])
        let rounds = max(1, min(context.repeats, 5))
        for (name, edit) in variants {
            var c = ModelConfig()
            c.dropPathRate = 0; c.headDropout = 0
            edit(&c)
            let model = try Recognizer(config: c, seed: 1)
            model.releaseFrozenFP32Weights()   // as the trainer does in bf16
            let per = 3 * c.numFrames * c.inputResolution * c.inputResolution
            let video = Buffer(per, seed: 7)
            let labels = [3]
            let dLogits = Tensor([1, c.numClasses])
            var fwd: [Double] = [], bwd: [Double] = [], total: [Double] = []
            for round in 0...rounds {
                var logits = Tensor([1])
                let f = try seconds { logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true, step: UInt64(round))) }
                let b = try seconds {
                    labels.withUnsafeBufferPointer {
                        crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: 1, classes: c.numClasses)
                    }
                    model.store.zeroGrads()
                    try model.backward(dLogits: dLogits.data)
                }
                if round > 0 { fwd.append(f); bwd.append(b); total.append(f + b) }   // round 0 warms up
                context.log("  \(name): round \(round) forward \(fixed(f, 2)) s, backward \(fixed(b, 2)) s")
            }
            let t = Timing(samples: total)
            table.rows.append([name, String(model.tunableParameterCount), fixed(Timing(samples: fwd).median, 2),
                               fixed(Timing(samples: bwd).median, 2),
                               "\(fixed(t.min, 2)) / \(fixed(t.median, 2)) / \(fixed(t.max, 2))",
                               fixed(Double(model.keptBytes) / 1e6, 0), fixed(Double(model.scratchBytes) / 1e6, 0)])
        }
        if let reason = BF16Support.unavailableReason { table.notes.append("bf16 rows skipped: \(reason).") }
        table.notes.append("\(rounds) timed rounds after one warm-up per model; models run one after another, so their ratio carries the machine's drift.")
        return [table]
    }
}
