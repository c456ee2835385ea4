import AIMTensor
import Foundation

/// Backbone + I3D-style head, with an explicit forward and backward (docs/MODEL_REFERENCE.md).
///
/// Parameters live in a `ParameterStore` under the official recognizer keys (`backbone.…`,
/// `cls_head.fc_cls.…`). The backbone (ViT or Swin family, `VideoBackbone`) ends in the pooled
/// feature; the head is dropout + fc_cls, as mmaction2's I3DHead.
public final class Recognizer {
    public let config: ModelConfig
    public let store: ParameterStore
    let backbone: VideoBackbone
    let head: LinearLayer

    private let kept = Arena()
    private let scratch = Arena()
    private var batch = 0
    private var lastContext = PassContext(batch: 0, training: false)
    private var dropoutMask: UnsafeMutablePointer<Float>?

    /// Called during backward with parameters whose gradients are final (last layer first),
    /// so a communicator can start reducing them while backward goes on.
    public var gradientsReady: (([Parameter]) -> Void)?

    /// Off by default. When on, each block's kept activations (and its input) are returned to the
    /// system right after its backward, and `zeroGrads()` releases the gradient pages, so a step's peak
    /// is weights + AdamW + activations instead of + gradients too, when gradients are zeroed before
    /// the forward (as the trainer does). Costs about one page fault per 4 KiB kept or accumulated,
    /// every step. `AIM_RELEASE_STEP_MEMORY=1` turns it on for a process.
    public var releasesStepMemory: Bool {
        get { backbone.releaseKept }
        set { backbone.releaseKept = newValue; store.releasesGradientPages = newValue }
    }

    /// Whether the ViT backbones' last block runs its MLP (and AIM's S/MLP adapters) on the class
    /// tokens alone, the only rows ln_post and the head read (on by default; off computes every
    /// row, as the official code does, for comparisons). The Swin family pools every token.
    public var skipsUnreadRows: Bool {
        get { backbone.skipsUnreadRows }
        set { backbone.skipsUnreadRows = newValue }
    }

    /// On by default. A training forward that follows `zeroGrads()` keeps each block's activations
    /// in the gradients of the block below it first (zero until that block's backward, which runs
    /// after this block's), so a step's peak holds those bytes once instead of twice, with no page
    /// faults (as `releasesStepMemory` would cost). Bit-identical results either way.
    public var lendsGradientMemory: Bool {
        get { backbone.lendsGradientMemory }
        set { backbone.lendsGradientMemory = newValue }
    }

    public static let tunableKeywords = ["temporal_embedding", "ln_post", "cls_head", "Adapter"]

    /// The official freezing rule (tools/train.py) and our `tune: all | head` alternatives.
    public static func isTunable(_ name: String, tune: ModelConfig.Tune) -> Bool {
        switch tune {
        case .all: return true
        case .head: return name.hasPrefix("cls_head.")
        case .adapters: return tunableKeywords.contains { name.contains($0) }
        }
    }

    /// `initialize: false` leaves parameters at zero (for counting, or before loading weights).
    public init(config c: ModelConfig, seed: UInt64 = 0, initialize: Bool = true) throws {
        try c.validate()
        if c.precision == .bf16 { try BF16Support.check() }
        config = c
        let tune = c.tune
        store = ParameterStore { Recognizer.isTunable($0, tune: tune) }
        if c.isSwin {
            backbone = SwinBackbone(config: c, store: store)
        } else {
            backbone = ViTBackbone(config: c, store: store)
        }
        head = LinearLayer(store, "cls_head.fc_cls", in: backbone.featureWidth, out: c.numClasses, weightInit: .normal(std: 0.01))
        store.finalize()
        if initialize { store.initialize(seed: seed) }
        if ProcessInfo.processInfo.environment["AIM_RELEASE_STEP_MEMORY"] == "1" { releasesStepMemory = true }
        if c.precision == .bf16 {   // every linear [out, in] weight but the classifier's, as autocast (head kept fp32: tiny)
            for p in store.parameters where p.shape.count == 2 && p.name.hasSuffix("weight") && p !== head.weight {
                p.reducedPrecision = true
            }
        }
    }

    /// model.precision bf16: gives back the fp32 values of the frozen linear weights that only bf16
    /// products read (`ParameterStore.releaseFrozenFP32`); the same results bit for bit. Call once
    /// the frozen weights are loaded; returns the bytes given back (0 in fp32).
    @discardableResult
    public func releaseFrozenFP32Weights() -> Int {
        guard config.precision == .bf16 else { return 0 }
        return store.releaseFrozenFP32(keeping: Set(backbone.frozenWeightsReadInFP32.map(ObjectIdentifier.init)))
    }

    // MARK: - Forward

    /// Logits `[B, K]` for `video` `[B, 3, T, H, W]` (normalised). Keeps what backward needs.
    /// Throws what a kernel failed with (oneDNN's bf16 products), after the pass has run out.
    public func forward(video: UnsafePointer<Float>, context: PassContext) throws -> Tensor {
        batch = context.batch
        lastContext = context
        let pooled = backbone.forward(video: video, context: context)
        let logits = headForward(pooled, context: context)
        try PassFailure.rethrow()
        return logits
    }

    /// Dropout (training) and fc_cls on the pooled feature.
    private func headForward(_ pooled: UnsafePointer<Float>, context: PassContext) -> Tensor {
        let B = context.batch, D = backbone.featureWidth, K = config.numClasses
        var feat = pooled
        dropoutMask = nil
        if context.training && config.headDropout > 0 {
            let mask = kept.buffer("head.mask", B * D), dropped = kept.buffer("head.drop", B * D)
            for b in 0..<B {
                var rng = context.rng(site: 0xFFFF, sample: b)
                dropoutForward(out: dropped + b * D, input: pooled + b * D, mask: mask + b * D, count: D, p: config.headDropout, rng: &rng)
            }
            dropoutMask = mask
            feat = UnsafePointer(dropped)
        }
        headInput = feat
        let logits = Tensor([B, K])
        head.forward(logits.data, feat, rows: B)
        return logits
    }
    private var headInput: UnsafePointer<Float>?

    // MARK: - Backward

    /// Accumulates the gradients of every tunable parameter from d(loss)/d(logits) `[B, K]`
    /// of the last forward. Throws what a kernel failed with, as `forward`.
    public func backward(dLogits: UnsafePointer<Float>) throws {
        precondition(lastContext.saveForBackward, "Recognizer.backward after a forward with saveForBackward: false")
        store.gradientsAreZero = false
        let B = batch, D = backbone.featureWidth
        let dFeat = scratch.buffer("head.dfeat", B * D)
        head.backward(dInput: dFeat, dOut: dLogits, input: headInput!, rows: B)
        gradientsReady?(head.parameters)
        let dPool = scratch.buffer("head.dpool", B * D)
        if let mask = dropoutMask { dropoutBackward(dInput: dPool, dOut: dFeat, mask: mask, count: B * D) }
        else { dPool.update(from: dFeat, count: B * D) }
        backbone.backward(dPooled: dPool, gradientsReady: gradientsReady)
        try PassFailure.rethrow()
    }

    // MARK: - Accounting

    /// Bytes of activations kept between forward and backward (all arenas but scratch).
    public var keptBytes: Int { kept.bytes + backbone.keptBytes }
    /// The part of `keptBytes` held in lent gradient memory (not memory of its own).
    public var lentBytes: Int { backbone.lentBytes }
    /// Buffers of the last forward that no backward reads (frozen prefix, evaluation).
    public var unkeptBytes: Int { backbone.unkeptBytes }
    public var scratchBytes: Int { scratch.bytes + backbone.scratchBytes }
}
