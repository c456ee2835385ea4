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

/// mmcv's `CosineAnnealing` (min_lr 0) with linear warmup (`warmup_ratio` 0.1), as the official
/// configs set it: `warmup_by_epoch=True, warmup_iters=2.5`, so warmup lasts 2.5 × the epoch's
/// steps (not rounded: mmcv compares the step with that product). The cosine advances per
/// optimizer step, or, with `stepsPerEpoch` given (`train.lr_by_epoch`), once per epoch as mmcv's
/// default `by_epoch=True` does: epoch e of E runs at min + (base − min)·(1 + cos(π·e/E))/2, and
/// warmup scales that epoch's value.
public struct LearningRateSchedule: Sendable {
    public let baseLR: Double
    public let totalSteps: Int
    /// Warmup length in optimizer steps (`warmup_epochs` × steps per epoch, possibly fractional).
    public let warmupSteps: Double
    public let minLR: Double
    public let warmupRatio: Double
    /// Steps per epoch when the cosine advances per epoch (mmcv `by_epoch=True`); nil: per step.
    public let stepsPerEpoch: Int?

    public init(baseLR: Double, totalSteps: Int, warmupSteps: Double, minLR: Double = 0, warmupRatio: Double = 0.1,
                stepsPerEpoch: Int? = nil) {
        self.baseLR = baseLR; self.totalSteps = max(1, totalSteps); self.warmupSteps = max(0, warmupSteps)
        self.minLR = minLR; self.warmupRatio = warmupRatio
        self.stepsPerEpoch = stepsPerEpoch.map { max(1, $0) }
    }

    /// Learning rate for the optimizer step that starts at `step` (0-based).
    public func lr(at step: Int) -> Double {
        guard let perEpoch = stepsPerEpoch else {
            // mmcv by_epoch=False: the cosine per step; warmup while step < warmup_iters.
            let regular = cosine(Double(min(step, totalSteps)) / Double(totalSteps))
            return Double(step) < warmupSteps ? warmed(regular, step) : regular
        }
        // mmcv by_epoch=True: before each epoch the regular lr is set; before each step, warmup
        // while step < warmup_iters, the regular lr at step == warmup_iters, and after that
        // nothing is set, so a fractional warmup end leaves its last warmup lr until the epoch ends.
        let epoch = step / perEpoch
        let regular = cosine(min(Double(epoch) * Double(perEpoch), Double(totalSteps)) / Double(totalSteps))
        let s = Double(step)
        if s < warmupSteps { return warmed(regular, step) }
        if s == warmupSteps { return regular }
        let lastWarm = Int(warmupSteps.rounded(.down))
        if Double(lastWarm) < warmupSteps && lastWarm >= epoch * perEpoch { return warmed(regular, lastWarm) }
        return regular
    }

    private func cosine(_ progress: Double) -> Double { minLR + (baseLR - minLR) * (1 + cos(Double.pi * progress)) / 2 }

    private func warmed(_ regular: Double, _ step: Int) -> Double {
        regular * (1 - (1 - Double(step) / warmupSteps) * (1 - warmupRatio))
    }
}
