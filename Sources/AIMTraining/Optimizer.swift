import AIMModel
import AIMTensor
import Foundation

/// Per-parameter learning-rate and weight-decay multipliers, chosen like mmcv's
/// `DefaultOptimizerConstructor` with `paramwise_cfg.custom_keys`: keys are tried longest first
/// (ties alphabetically) and the first one contained in the parameter name applies.
public struct ParamwiseRule: Sendable, Equatable {
    public var key: String
    public var lrMult: Float = 1
    public var decayMult: Float = 1

    /// The official AIM rules: no decay for `noDecayKeys`, and (ViT-L/14 on K400) a learning-rate
    /// multiplier for every `backbone` parameter — which, being the longer key, also overrides
    /// `ln_post`'s no-decay there, exactly as mmcv does.
    public static func official(noDecayKeys: [String], backboneLRMult: Float) -> [ParamwiseRule] {
        var rules = noDecayKeys.map { ParamwiseRule(key: $0, lrMult: 1, decayMult: 0) }
        if backboneLRMult != 1 { rules.append(ParamwiseRule(key: "backbone", lrMult: backboneLRMult, decayMult: 1)) }
        return rules
    }

    public static func match(_ name: String, _ rules: [ParamwiseRule]) -> ParamwiseRule? {
        let ordered = rules.sorted { $0.key.count != $1.key.count ? $0.key.count > $1.key.count : $0.key < $1.key }
        return ordered.first { name.contains($0.key) }
    }
}

/// AdamW (torch.optim.AdamW semantics) over the flat tunable buffer; the two moment buffers
/// have the same layout as the parameters, so a checkpoint stores them under the same keys.
public final class AdamWOptimizer {
    public struct Group { public let parameter: Parameter; public let lrMult: Float; public let weightDecay: Float }
    public let groups: [Group]
    public let m: Tensor
    public let v: Tensor
    public var beta1: Float, beta2: Float, eps: Float
    public private(set) var step = 0

    public init(store: ParameterStore, weightDecay: Float, rules: [ParamwiseRule], betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8) {
        groups = store.tunableParameters.map { p in
            let rule = ParamwiseRule.match(p.name, rules)
            return Group(parameter: p, lrMult: rule?.lrMult ?? 1, weightDecay: weightDecay * (rule?.decayMult ?? 1))
        }
        m = Tensor([store.tunableCount]); v = Tensor([store.tunableCount])
        beta1 = betas.0; beta2 = betas.1; self.eps = eps
    }

    /// One update with base learning rate `lr`; frozen parameters are not in any group. Returns
    /// whether any tunable value or moment it wrote (it writes all of them) is inf or NaN.
    @discardableResult
    public func update(lr: Float) -> Bool {
        step += 1
        var nonFinite = false
        for g in groups {
            let p = g.parameter, o = p.offset
            let bad = adamWStep(params: p.data, grads: p.grad!.data, m: m.data + o, v: v.data + o, count: p.count,
                                lr: lr * g.lrMult, beta1: beta1, beta2: beta2, eps: eps, weightDecay: g.weightDecay, step: step)
            nonFinite = nonFinite || bad
        }
        return nonFinite
    }

    /// Restores the step counter from a checkpoint (the moments are loaded into `m`/`v`).
    public func restore(step: Int) { self.step = step }
}

/// Rescales gradients so their global L2 norm is at most `maxNorm` (torch clip_grad_norm_);
/// returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ grads: Tensor, maxNorm: Float) -> Float {
    let norm = Float(sumOfSquares(grads.data, count: grads.count).squareRoot())
    if maxNorm > 0 && norm > maxNorm { scale(grads.data, by: maxNorm / (norm + 1e-6), count: grads.count) }
    return norm
}

/// mmcv `CosineAnnealing` (min_lr 0) with linear warmup (`warmup_ratio` 0.1, by epoch),
/// evaluated per optimizer step.
public struct LearningRateSchedule: Sendable {
    public let baseLR: Double
    public let totalSteps: Int
    public let warmupSteps: Int
    public let minLR: Double
    public let warmupRatio: Double

    public init(baseLR: Double, totalSteps: Int, warmupSteps: Int, minLR: Double = 0, warmupRatio: Double = 0.1) {
        self.baseLR = baseLR; self.totalSteps = max(1, totalSteps); self.warmupSteps = warmupSteps
        self.minLR = minLR; self.warmupRatio = warmupRatio
    }

    /// Learning rate for the optimizer step that starts at `step` (0-based).
    public func lr(at step: Int) -> Double {
        let progress = Double(min(step, totalSteps)) / Double(totalSteps)
        let regular = minLR + (baseLR - minLR) * (1 + cos(Double.pi * progress)) / 2
        guard step < warmupSteps else { return regular }
        let k = (1 - Double(step) / Double(warmupSteps)) * (1 - warmupRatio)
        return regular * (1 - k)
    }
}
