import AIMTensor
import Foundation

/// Backbone + I3D-style head, with an explicit forward and backward (docs/MODEL_REFERENCE.md).
///
/// Parameters live in a `ParameterStore` under the official recognizer keys (`backbone.…`,
/// `cls_head.fc_cls.…`). Frozen parameters get no gradient; the backward skips every weight
/// gradient of a frozen layer and stops at the first layer nothing before it needs.
public final class Recognizer {
    public let config: ModelConfig
    public let store: ParameterStore
    let blocks: [TransformerBlock]
    let patchWeight: Parameter
    let patchBias: Parameter?
    let classToken: Parameter
    let positional: Parameter
    let temporal: Parameter?
    let lnPre: LayerNormLayer?
    let lnPost: LayerNormLayer
    let head: LinearLayer
    /// IN-21K TimeSformer: one class token per video, tokens `(h w t)` (§4).
    let videoLayout: Bool

    private let kept = Arena()
    private let scratch = Arena()
    /// Temporaries of one block call at a time (forward or backward).
    private let blockScratch = Arena(transient: true)
    /// Shared by the blocks (and buffers) no backward will read: frozen blocks below the first
    /// tunable one, and everything in a forward without backward.
    private let unkept = Arena()
    private var dims = Dims(B: 0, T: 0, N: 0, D: 0)
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
        get { releaseKept }
        set { releaseKept = newValue; store.releasesGradientPages = newValue }
    }
    private var releaseKept = false
    /// Bytes of block outputs released during the last backward (still counted in `keptBytes`).
    private var releasedKeptBytes = 0

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
        let D = c.width, P = c.patchSize, N = c.tokensPerFrame, eps = c.layerNormEps
        let fanIn = Float(3 * P * P), convBound = 1 / fanIn.squareRoot()
        let arch = c.architecture
        videoLayout = arch == .imagenetTimeSformer
        let bb = "backbone."
        switch arch {
        case .clipAIM, .clipTimeSformer:
            patchWeight = store.register(bb + "conv1.weight", [D, 3, P, P], .uniform(bound: convBound))
            patchBias = nil
            let s = 1 / Float(D).squareRoot()
            classToken = store.register(bb + "class_embedding", [D], .normal(std: s))
            positional = store.register(bb + "positional_embedding", [N, D], .normal(std: s))
            lnPre = LayerNormLayer(store, bb + "ln_pre", channels: D, eps: eps)
            temporal = c.hasTemporalEmbedding ? store.register(bb + "temporal_embedding", [1, c.numFrames, D], .zeros) : nil
        case .imagenetAIM, .imagenetTimeSformer:
            patchWeight = store.register(bb + "patch_embed.proj.weight", [D, 3, P, P], .uniform(bound: convBound))
            patchBias = store.register(bb + "patch_embed.proj.bias", [D], .uniform(bound: convBound))
            classToken = store.register(bb + "cls_token", [1, 1, D], .truncatedNormal(std: 0.02))
            positional = store.register(bb + "pos_embed", [1, N, D], .truncatedNormal(std: 0.02))
            lnPre = nil
            if arch == .imagenetTimeSformer {
                temporal = store.register(bb + "time_embed", [1, c.numFrames, D], .zeros)
            } else {
                temporal = c.hasTemporalEmbedding ? store.register(bb + "temporal_embedding", [1, c.numFrames, D], .zeros) : nil
            }
        }
        var blocks: [TransformerBlock] = []
        for i in 0..<c.layers {
            switch arch {
            case .clipAIM:
                blocks.append(AIMBlock(store: store, prefix: bb + "transformer.resblocks.\(i).", index: i, config: c))
            case .imagenetAIM:
                blocks.append(AIMBlock(store: store, prefix: bb + "blocks.\(i).", index: i, config: c))
            case .clipTimeSformer:
                blocks.append(CLIPTimeSformerBlock(store: store, prefix: bb + "transformer.resblocks.\(i).", index: i, config: c))
            case .imagenetTimeSformer:
                blocks.append(TimeSformerBlock(store: store, prefix: bb + "blocks.\(i).", index: i, config: c))
            }
        }
        self.blocks = blocks
        lnPost = LayerNormLayer(store, bb + (arch == .imagenetTimeSformer ? "norm" : "ln_post"), channels: D, eps: eps)
        head = LinearLayer(store, "cls_head.fc_cls", in: D, out: c.numClasses, weightInit: .normal(std: 0.01))
        store.finalize()
        if initialize { store.initialize(seed: seed) }
        if ProcessInfo.processInfo.environment["AIM_RELEASE_STEP_MEMORY"] == "1" { releasesStepMemory = true }
        if c.precision == .bf16 {   // every linear [out, in] weight but the classifier's, as autocast (head kept fp32: tiny)
            for p in store.parameters where p.shape.count == 2 && p.name.hasSuffix("weight") && p !== head.weight {
                p.reducedPrecision = true
            }
        }
    }

    // MARK: - Forward

    /// Logits `[B, K]` for `video` `[B, 3, T, H, W]` (normalised). Keeps what backward needs.
    /// Throws what a kernel failed with (oneDNN's bf16 products), after the pass has run out.
    public func forward(video: UnsafePointer<Float>, context: PassContext) throws -> Tensor {
        let logits = runForward(video: video, context: context)
        try PassFailure.rethrow()
        return logits
    }

    private func runForward(video: UnsafePointer<Float>, context: PassContext) -> Tensor {
        let c = config, B = context.batch, T = c.numFrames, N = c.tokensPerFrame, D = c.width
        let L = N - 1, HW = c.inputResolution * c.inputResolution
        dims = Dims(B: B, T: T, N: N, D: D)
        lastContext = context
        releasedKeptBytes = 0
        if c.precision == .bf16 { store.refreshTunableBF16Copies() }
        let F = B * T
        let keepFrom = context.saveForBackward ? firstBlockNeedingBackward : blocks.count
        let keepEmbedding = context.saveForBackward && embeddingTunable
        let frames = (keepEmbedding ? kept : unkept).buffer("frames", F * 3 * HW)
        videoToFrames(out: frames, video: video, batch: B, channels: 3, frames: T, pixels: HW)
        let patches = scratch.buffer("patches", F * L * D)
        patchEmbedForward(out: patches, input: frames, weight: patchWeight.data, bias: patchBias?.data, images: F,
                          channels: 3, height: c.inputResolution, width: c.inputResolution, patch: c.patchSize, outChannels: D)
        let rows = tokenRows
        let x0 = (keepFrom == 0 ? kept : unkept).buffer("x0", rows * D)
        let cls = classToken.data, pos = positional.data
        if videoLayout {
            let V = 1 + L * T, time = temporal!.data
            for b in 0..<B {
                let r0 = x0 + b * V * D
                for j in 0..<D { r0[j] = cls[j] + pos[j] }
                for n in 0..<L { for t in 0..<T {
                    let dst = x0 + (b * V + 1 + n * T + t) * D, src = patches + ((b * T + t) * L + n) * D
                    let p = pos + (1 + n) * D, tm = time + t * D
                    for j in 0..<D { dst[j] = src[j] + p[j] + tm[j] }
                } }
            }
        } else {
            let emb = lnPre != nil ? (keepEmbedding ? kept : unkept).buffer("emb", rows * D) : x0
            for bt in 0..<F {
                let t = bt % T
                let tm = temporal.map { $0.data + t * D }
                for n in 0..<N {
                    let dst = emb + (bt * N + n) * D, p = pos + n * D
                    let src: UnsafePointer<Float> = n == 0 ? UnsafePointer(cls) : UnsafePointer(patches + (bt * L + n - 1) * D)
                    for j in 0..<D { dst[j] = src[j] + p[j] }
                    if let tm { for j in 0..<D { dst[j] += tm[j] } }
                }
            }
            if let lnPre {
                lnPre.forward(x0, emb, mean: kept.buffer("pre.mean", rows), rstd: kept.buffer("pre.rstd", rows), rows: rows)
            }
        }
        var x: UnsafePointer<Float> = UnsafePointer(x0)
        for (i, block) in blocks.enumerated() {
            block.keepActivations(i >= keepFrom, shared: unkept)
            // A block's output is kept only as the input of a block that will run backward.
            let out = i + 1 >= keepFrom && i + 1 < blocks.count ? kept.buffer("block.\(i)", rows * D)
                : unkept.buffer("pingpong.\(i % 2)", rows * D)
            blockScratch.beginCycle()
            block.forward(out: out, input: x, dims: dims, context: context, scratch: blockScratch)
            x = UnsafePointer(out)
        }
        return headForward(x, context: context)
    }

    /// Rows of the token tensor the blocks run on.
    private var tokenRows: Int {
        videoLayout ? dims.B * (1 + (dims.N - 1) * dims.T) : dims.rows
    }

    /// ln_post on the class tokens only (it is per token, so this equals the official
    /// all-token ln_post followed by `x[:, 0]`), mean over frames, dropout, fc_cls.
    private func headForward(_ x: UnsafePointer<Float>, context: PassContext) -> Tensor {
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D, K = config.numClasses
        let m = videoLayout ? B : B * T
        let stride = videoLayout ? (1 + (N - 1) * T) * D : N * D
        let c = kept.buffer("head.c", m * D)
        for i in 0..<m { (c + i * D).update(from: x + i * stride, count: D) }
        let z = kept.buffer("head.z", m * D)
        lnPost.forward(z, c, mean: kept.buffer("head.mean", m), rstd: kept.buffer("head.rstd", m), rows: m)
        let pooled = kept.buffer("head.pool", B * D)
        if videoLayout { pooled.update(from: z, count: B * D) } else {
            for b in 0..<B {
                let p = pooled + b * D
                p.update(repeating: 0, count: D)
                for t in 0..<T { addInPlace(p, z + (b * T + t) * D, count: D) }
                scale(p, by: 1 / Float(T), count: D)
            }
        }
        var feat: UnsafePointer<Float> = UnsafePointer(pooled)
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
        let logits = Tensor([B, K])
        head.forward(logits.data, feat, rows: B)
        return logits
    }

    // MARK: - Backward

    /// Accumulates the gradients of every tunable parameter from d(loss)/d(logits) `[B, K]`
    /// of the last forward. Throws what a kernel failed with, as `forward`.
    public func backward(dLogits: UnsafePointer<Float>) throws {
        runBackward(dLogits: dLogits)
        try PassFailure.rethrow()
    }

    private func runBackward(dLogits: UnsafePointer<Float>) {
        precondition(lastContext.saveForBackward, "Recognizer.backward after a forward with saveForBackward: false")
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D
        let rows = tokenRows
        let feat: UnsafePointer<Float> = UnsafePointer(dropoutMask != nil ? kept.buffer("head.drop", B * D) : kept.buffer("head.pool", B * D))
        let dFeat = scratch.buffer("head.dfeat", B * D)
        head.backward(dInput: dFeat, dOut: dLogits, input: feat, rows: B)
        gradientsReady?(head.parameters)
        let dPool = scratch.buffer("head.dpool", B * D)
        if let mask = dropoutMask { dropoutBackward(dInput: dPool, dOut: dFeat, mask: mask, count: B * D) }
        else { dPool.update(from: dFeat, count: B * D) }
        let m = videoLayout ? B : B * T
        let dz = scratch.buffer("head.dz", m * D)
        if videoLayout { dz.update(from: dPool, count: B * D) } else {
            for bt in 0..<m {
                let dst = dz + bt * D, src = dPool + (bt / T) * D
                for j in 0..<D { dst[j] = src[j] / Float(T) }
            }
        }
        let dc = scratch.buffer("head.dc", m * D)
        lnPost.backward(dInput: dc, dOut: dz, input: kept.buffer("head.c", m * D), mean: kept.buffer("head.mean", m),
                        rstd: kept.buffer("head.rstd", m), rows: m, accumulateInput: false)
        gradientsReady?(lnPost.parameters)

        // Only go as deep as the first block (from the input) that has a tunable parameter,
        // or into the embeddings if they need gradients.
        let firstNeeded = firstBlockNeedingBackward
        guard firstNeeded < blocks.count || embeddingTunable else { return }

        var dCur = scratch.buffer("grad.a", rows * D)
        var dNext = scratch.buffer("grad.b", rows * D)
        dCur.update(repeating: 0, count: rows * D)
        let rowStride = videoLayout ? (1 + (N - 1) * T) * D : N * D
        for i in 0..<m { (dCur + i * rowStride).update(from: dc + i * D, count: D) }
        for i in stride(from: blocks.count - 1, through: firstNeeded, by: -1) {
            let input: UnsafePointer<Float> = i == 0 ? UnsafePointer(kept.buffer("x0", rows * D)) : UnsafePointer(kept.buffer("block.\(i - 1)", rows * D))
            blockScratch.beginCycle()
            blocks[i].backward(dInput: dNext, dOut: dCur, input: input, dims: dims, scratch: blockScratch)
            if releaseKept {
                blocks[i].releaseKept()
                if i > 0 {   // this block's input, read by nothing after its backward
                    releasedKeptBytes += rows * D * MemoryLayout<Float>.stride
                    kept.release("block.\(i - 1)")
                }
            }
            gradientsReady?(blocks[i].parameters.filter(\.tunable))
            swap(&dCur, &dNext)
        }
        if embeddingTunable { embeddingBackward(dCur) }
    }

    private func embeddingBackward(_ dx0: UnsafeMutablePointer<Float>) {
        let c = config, B = dims.B, T = dims.T, N = dims.N, D = dims.D, L = N - 1, F = B * T
        let rows = tokenRows
        var demb: UnsafePointer<Float> = UnsafePointer(dx0)
        if let lnPre {
            let d = scratch.buffer("emb.d", rows * D)
            lnPre.backward(dInput: d, dOut: dx0, input: kept.buffer("emb", rows * D), mean: kept.buffer("pre.mean", rows),
                           rstd: kept.buffer("pre.rstd", rows), rows: rows, accumulateInput: false)
            demb = UnsafePointer(d)
        }
        let dPatches = scratch.buffer("emb.dpatch", F * L * D)
        let dCls = classToken.gradData, dPos = positional.gradData, dTime = temporal?.gradData
        if videoLayout {
            let V = 1 + L * T
            for b in 0..<B {
                let r0 = demb + b * V * D
                if let dCls { addInPlace(dCls, r0, count: D) }
                if let dPos { addInPlace(dPos, r0, count: D) }
                for n in 0..<L { for t in 0..<T {
                    let g = demb + (b * V + 1 + n * T + t) * D
                    (dPatches + ((b * T + t) * L + n) * D).update(from: g, count: D)
                    if let dPos { addInPlace(dPos + (1 + n) * D, g, count: D) }
                    if let dTime { addInPlace(dTime + t * D, g, count: D) }
                } }
            }
        } else {
            for bt in 0..<F {
                let t = bt % T
                for n in 0..<N {
                    let g = demb + (bt * N + n) * D
                    if n == 0 { if let dCls { addInPlace(dCls, g, count: D) } }
                    else { (dPatches + (bt * L + n - 1) * D).update(from: g, count: D) }
                    if let dPos { addInPlace(dPos + n * D, g, count: D) }
                    if let dTime { addInPlace(dTime + t * D, g, count: D) }
                }
            }
        }
        if patchWeight.tunable {
            patchEmbedBackward(dInput: nil, dWeight: patchWeight.gradData, dBias: patchBias?.gradData, dOut: dPatches,
                               input: kept.buffer("frames", F * 3 * c.inputResolution * c.inputResolution),
                               weight: patchWeight.data, images: F, channels: 3, height: c.inputResolution,
                               width: c.inputResolution, patch: c.patchSize, outChannels: D)
        }
        gradientsReady?([patchWeight, patchBias, classToken, positional, temporal].compactMap { $0 }.filter(\.tunable)
                        + (lnPre?.parameters.filter(\.tunable) ?? []))
    }

    /// Whether the embeddings (patch, class, position, temporal) need gradients.
    var embeddingTunable: Bool {
        [patchWeight, classToken, positional].contains { $0.tunable } || (temporal?.tunable ?? false)
    }

    /// The first block backward must run through (blocks below it, and their activations, are
    /// not needed): 0 when the embeddings train, `blocks.count` when no block has tunable weights.
    var firstBlockNeedingBackward: Int {
        embeddingTunable ? 0 : (blocks.firstIndex { $0.parameters.contains(where: \.tunable) } ?? blocks.count)
    }

    // MARK: - Accounting

    /// Bytes of activations kept between forward and backward (all arenas but scratch).
    public var keptBytes: Int { kept.bytes + releasedKeptBytes + blocks.reduce(0) { $0 + $1.keptBytes } }
    /// Buffers of the last forward that no backward reads (frozen prefix, evaluation).
    public var unkeptBytes: Int { unkept.bytes }
    public var scratchBytes: Int { scratch.bytes + blockScratch.bytes }
}
