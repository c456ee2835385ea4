import AIMTensor
import Foundation

/// The ViT family (CLIP / IN-21K ViT with AIM adapters, and the TimeSformer baselines) up to the
/// pooled feature the I3D head reads: ln_post (norm) on the class tokens, mean over frames.
/// Frozen parameters get no gradient; the backward skips every weight gradient of a frozen layer
/// and stops at the first layer nothing before it needs.
final class ViTBackbone: VideoBackbone {
    let config: ModelConfig
    let store: ParameterStore
    let blocks: [TransformerBlock]
    let patchWeight: Parameter
    let patchBias: Parameter?
    let classToken: Parameter
    let positional: Parameter
    let temporal: Parameter?
    let lnPre: LayerNormLayer?
    let lnPost: LayerNormLayer
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

    var featureWidth: Int { config.width }
    /// Nothing after the last block reads more than each frame's (in video layout, each video's)
    /// class token (pooledForward), so the block there runs its last per-row layers on those rows
    /// alone (`ClassRowsBlock`).
    var skipsUnreadRows: Bool {
        get { (blocks.last as? ClassRowsBlock)?.classRowsOnly ?? false }
        set { (blocks.last as? ClassRowsBlock)?.classRowsOnly = newValue }
    }
    var releaseKept = false
    /// Whether a training forward after `zeroGrads()` keeps activations in gradient memory (`Recognizer.lendsGradientMemory`).
    var lendsGradientMemory = true
    /// Each block's gradients as one span of the gradient buffer (nil: none, or not contiguous).
    private lazy var gradientSpans: [Range<Int>?] = blocks.map { store.gradientSpan(of: $0.parameters) }
    /// Bytes of block outputs released during the last backward (still counted in `keptBytes`).
    private var releasedKeptBytes = 0

    /// Registers the backbone's parameters (keys `backbone.…`) in `store`, in the official order.
    init(config c: ModelConfig, store: ParameterStore) {
        config = c
        self.store = store
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
        case .swinAIM, .videoSwin:
            preconditionFailure("ViTBackbone built for a Swin config (Recognizer builds SwinBackbone)")
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
            case .swinAIM, .videoSwin: break
            }
        }
        self.blocks = blocks
        lnPost = LayerNormLayer(store, bb + (arch == .imagenetTimeSformer ? "norm" : "ln_post"), channels: D, eps: eps)
        skipsUnreadRows = true
    }

    // MARK: - Forward

    func forward(video: UnsafePointer<Float>, context: PassContext) -> UnsafePointer<Float> {
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
        // Block i's kept buffers go first into block i − 1's gradients: zero now, and not written
        // before block i's backward is done (backward runs from the last block down).
        let lends = lendsGradientMemory && context.saveForBackward && store.gradientsAreZero
        if !lends { store.reclaimAll() }
        var x: UnsafePointer<Float> = UnsafePointer(x0)
        for (i, block) in blocks.enumerated() {
            let lent = lends && i > keepFrom ? gradientSpans[i - 1].map { store.lend($0) } : nil
            block.keepActivations(i >= keepFrom, shared: unkept, lent: lent)
            // A block's output is kept only as the input of a block that will run backward.
            let out = i + 1 >= keepFrom && i + 1 < blocks.count ? kept.buffer("block.\(i)", rows * D)
                : unkept.buffer("pingpong.\(i % 2)", rows * D)
            blockScratch.beginCycle()
            block.forward(out: out, input: x, dims: dims, context: context, scratch: blockScratch)
            x = UnsafePointer(out)
        }
        return pooledForward(x)
    }

    /// Rows of the token tensor the blocks run on.
    private var tokenRows: Int {
        videoLayout ? dims.B * (1 + (dims.N - 1) * dims.T) : dims.rows
    }

    /// ln_post on the class tokens only (it is per token, so this equals the official
    /// all-token ln_post followed by `x[:, 0]`), then the mean over frames: the head's input [B, D].
    private func pooledForward(_ x: UnsafePointer<Float>) -> UnsafePointer<Float> {
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D
        let m = videoLayout ? B : B * T
        let c = kept.buffer("head.c", m * D)
        gatherRows(out: c, input: x, rows: m, every: videoLayout ? 1 + (N - 1) * T : N, width: D)
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
        return UnsafePointer(pooled)
    }

    // MARK: - Backward

    /// Accumulates the backbone's tunable gradients from d(loss)/d(pooled) `[B, D]`.
    func backward(dPooled dPool: UnsafePointer<Float>, gradientsReady: (([Parameter]) -> Void)?) {
        precondition(lastContext.saveForBackward, "Recognizer.backward after a forward with saveForBackward: false")
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D
        let rows = tokenRows
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
        defer { store.reclaimAll() }
        guard firstNeeded < blocks.count || embeddingTunable else { return }

        var dCur = scratch.buffer("grad.a", rows * D)
        var dNext = scratch.buffer("grad.b", rows * D)
        dCur.update(repeating: 0, count: rows * D)
        scatterRows(out: dCur, input: dc, rows: m, every: videoLayout ? 1 + (N - 1) * T : N, width: D)
        for i in stride(from: blocks.count - 1, through: firstNeeded, by: -1) {
            let input: UnsafePointer<Float> = i == 0 ? UnsafePointer(kept.buffer("x0", rows * D)) : UnsafePointer(kept.buffer("block.\(i - 1)", rows * D))
            if let span = gradientSpans[i] { store.reclaim(span) }   // block i + 1's kept buffers are dead now
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
        if embeddingTunable { embeddingBackward(dCur, gradientsReady: gradientsReady) }
    }

    private func embeddingBackward(_ dx0: UnsafeMutablePointer<Float>, gradientsReady: (([Parameter]) -> Void)?) {
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

    var keptBytes: Int { kept.bytes + releasedKeptBytes + blocks.reduce(0) { $0 + $1.keptBytes } }
    var lentBytes: Int { blocks.reduce(0) { $0 + $1.keptLentBytes } }
    var unkeptBytes: Int { unkept.bytes }
    var scratchBytes: Int { scratch.bytes + blockScratch.bytes }

    var frozenWeightsReadInFP32: [Parameter] { blocks.compactMap { ($0 as? AIMBlock)?.foldedProjectionWeight } }
}
