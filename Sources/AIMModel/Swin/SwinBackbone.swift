import AIMTensor

/// The Swin family up to the pooled feature the I3D head reads (docs/MODEL_REFERENCE.md §5–§6):
/// PatchEmbed3D (Conv3d, patch (2,4,4), then patch norm) → stages of SwinBlocks with PatchMerging
/// between them → norm → mean over (T', H', W'). `model.backbone: swin2d` is AIM on Swin
/// (SwinTransformer2D_Adapter), `videoswin` the full-finetuning Video Swin (SwinTransformer3D).
final class SwinBackbone: VideoBackbone {
    let config: ModelConfig
    let store: ParameterStore
    let patchWeight: Parameter
    let patchBias: Parameter
    let patchNorm: LayerNormLayer
    let stages: [[SwinBlock]]
    let mergings: [PatchMergingLayer]
    let norm: LayerNormLayer

    private let kept = Arena()
    private let scratch = Arena()
    private let blockScratch = Arena(transient: true)
    private let unkept = Arena()
    private var batch = 0
    private var mergeIndices: [[Int32]] = [], indexBatch = -1
    var releaseKept = false
    var lendsGradientMemory = true
    /// Each block's gradients (forward order over all stages) as one span of the gradient buffer.
    private lazy var gradientSpans: [Range<Int>?] = stages.joined().map { store.gradientSpan(of: $0.parameters) }

    var featureWidth: Int { config.swinFeatureWidth }
    /// The head pools every token of the last stage: every row is read.
    var skipsUnreadRows: Bool { get { false } set {} }

    init(config c: ModelConfig, store: ParameterStore) {
        config = c
        self.store = store
        let bb = "backbone.", C0 = c.embedDim, p = c.swinPatch
        // PyTorch's Conv3d default init (kaiming-uniform a=√5): U(±1/√fan_in) for weight and bias.
        let bound = 1 / Float(3 * p[0] * p[1] * p[2]).squareRoot()
        patchWeight = store.register(bb + "patch_embed.proj.weight", [C0, 3, p[0], p[1], p[2]], .uniform(bound: bound))
        patchBias = store.register(bb + "patch_embed.proj.bias", [C0], .uniform(bound: bound))
        patchNorm = LayerNormLayer(store, bb + "patch_embed.norm", channels: C0, eps: 1e-5)
        var stages: [[SwinBlock]] = [], mergings: [PatchMergingLayer] = []
        var index = 0
        for s in 0..<c.depths.count {
            var blocks: [SwinBlock] = []
            for j in 0..<c.depths[s] {
                blocks.append(SwinBlock(store: store, prefix: bb + "layers.\(s).blocks.\(j).", config: c, stage: s, block: j, index: index))
                index += 1
            }
            stages.append(blocks)
            if s < c.depths.count - 1 {
                mergings.append(PatchMergingLayer(store, bb + "layers.\(s).downsample.", resolution: c.swinResolution(stage: s), channels: c.swinWidth(stage: s)))
            }
        }
        self.stages = stages; self.mergings = mergings
        norm = LayerNormLayer(store, bb + "norm", channels: c.swinFeatureWidth, eps: 1e-5)
        let all = [patchWeight, patchBias] + patchNorm.parameters + stages.joined().flatMap(\.parameters)
            + mergings.flatMap(\.parameters) + norm.parameters
        backboneTunable = all.contains { $0.tunable }
    }

    /// Whether the patch embedding or its norm trains (videoswin): only then does the first block pass a gradient back.
    private var patchTunable: Bool { patchNorm.weight.tunable || patchWeight.tunable }

    /// Whether backward goes into the backbone at all (not for a frozen space-only Swin: head only).
    private let backboneTunable: Bool

    private var T: Int { config.swinTemporalTokens }
    private func rows(stage s: Int) -> Int { batch * T * config.swinResolution(stage: s) * config.swinResolution(stage: s) }
    /// The Conv3d's sizes on the padded clip (= the clip when it is a patch multiple).
    private var patchSizes: Patch3DSizes {
        let p = config.swinPatch, side = config.swinResolution(stage: 0) * p[1]
        return Patch3DSizes(batch: batch, channels: 3, frames: T * p[0], height: side, width: side, patch: p, outChannels: config.embedDim)
    }

    func forward(video: UnsafePointer<Float>, context: PassContext) -> UnsafePointer<Float> {
        batch = context.batch
        // bf16: the tunable weights' bf16 copies follow the last optimizer step (the frozen ones never change).
        if config.precision == .bf16 { store.refreshTunableBF16Copies() }
        if indexBatch != batch {
            mergeIndices = mergings.map { $0.index(frames: batch * T) }
            indexBatch = batch
        }
        let keep = context.saveForBackward && backboneTunable
        let arena = keep ? kept : unkept
        let R0 = rows(stage: 0), C0 = config.embedDim
        // The patch norm's input is read again only by its own backward (videoswin); otherwise it is a
        // temporary of this first cycle.
        blockScratch.beginCycle()
        let emb = keep && patchNorm.weight.tunable ? kept.buffer("emb", R0 * C0) : blockScratch.buffer("emb", R0 * C0)
        // The Conv3d weight gradient reads the clip after the caller's buffer may be gone: kept as a copy
        // (zero-padded to patch multiples when the clip is not one, as the official PatchEmbed3D pads).
        let keepClip = keep && patchWeight.tunable, sizes = patchSizes
        lastVideo = video
        if config.swinPadsClip {
            let padded = (keepClip ? kept : blockScratch).buffer("video", batch * 3 * sizes.T * sizes.H * sizes.W)
            padVideoEnd(out: padded, video: video, batch: batch, channels: 3,
                        from: (config.numFrames, config.inputResolution, config.inputResolution), to: (sizes.T, sizes.H, sizes.W))
            lastVideo = UnsafePointer(padded)
        } else if keepClip {
            let count = batch * 3 * sizes.T * sizes.H * sizes.W
            let copy = kept.buffer("video", count)
            copy.update(from: video, count: count)
            lastVideo = UnsafePointer(copy)
        }
        patchEmbed3DForward(out: emb, video: lastVideo!, weight: patchWeight.data, bias: patchBias.data, sizes: sizes)
        var x = arena.buffer("in.0.0", R0 * C0)
        patchNorm.forward(x, emb, mean: arena.buffer("pn.mean", R0), rstd: arena.buffer("pn.rstd", R0), rows: R0)
        // As the ViT: a block keeps its buffers first in the previous block's gradients (zero now,
        // written only after this block's backward).
        let lends = keep && lendsGradientMemory && store.gradientsAreZero
        if !lends { store.reclaimAll() }
        var flat = 0
        for (s, blocks) in stages.enumerated() {
            let R = rows(stage: s), C = config.swinWidth(stage: s)
            for (j, block) in blocks.enumerated() {
                let lent = lends && flat > 0 ? gradientSpans[flat - 1].map { store.lend($0) } : nil
                flat += 1
                block.keepActivations(keep, shared: unkept, lent: lent)
                let out = arena.buffer(j + 1 < blocks.count ? "in.\(s).\(j + 1)" : "out.\(s)", R * C)
                blockScratch.beginCycle()
                block.forward(out: out, input: x, batch: batch, context: context, scratch: blockScratch)
                x = out
            }
            if s < mergings.count {
                let next = arena.buffer("in.\(s + 1).0", rows(stage: s + 1) * 2 * C)
                blockScratch.beginCycle()
                mergings[s].forward(next, x, index: mergeIndices[s], frames: batch * T, kept: arena, scratch: blockScratch)
                x = next
            }
        }
        // Final norm on every token, then the I3D head's average pool over (T', H', W').
        let last = stages.count - 1, R = rows(stage: last), C = featureWidth, per = R / batch
        let z = scratch.buffer("norm.z", R * C)
        norm.forward(z, x, mean: arena.buffer("norm.mean", R), rstd: arena.buffer("norm.rstd", R), rows: R)
        let pooled = arena.buffer("pool", batch * C)
        pooled.update(repeating: 0, count: batch * C)
        sumRowsPerSample(pooled, z, samples: batch, rows: per, width: C)
        scale(pooled, by: 1 / Float(per), count: batch * C)
        return UnsafePointer(pooled)
    }

    private func sumRowsPerSample(_ out: FloatPtr, _ x: UnsafePointer<Float>, samples: Int, rows: Int, width: Int) {
        for b in 0..<samples { for r in 0..<rows { addInPlace(out + b * width, x + (b * rows + r) * width, count: width) } }
    }

    func backward(dPooled: UnsafePointer<Float>, gradientsReady: (([Parameter]) -> Void)?) {
        defer { store.reclaimAll() }
        guard backboneTunable else { return }
        let last = stages.count - 1, R = rows(stage: last), C = featureWidth, per = R / batch
        let dz = scratch.buffer("norm.dz", R * C)
        for r in 0..<R {
            let dst = dz + r * C, src = dPooled + (r / per) * C
            for j in 0..<C { dst[j] = src[j] / Float(per) }
        }
        var dCur = scratch.buffer("grad.a", rows(stage: 0) * C0)
        var dNext = scratch.buffer("grad.b", rows(stage: 0) * C0)
        norm.backward(dInput: dCur, dOut: dz, input: kept.buffer("out.\(last)", R * C), mean: kept.buffer("norm.mean", R),
                      rstd: kept.buffer("norm.rstd", R), rows: R, accumulateInput: false)
        gradientsReady?(norm.parameters.filter(\.tunable))
        var flat = gradientSpans.count   // the blocks' index over all stages, counted down
        for s in stride(from: last, through: 0, by: -1) {
            let Rs = rows(stage: s), Cs = config.swinWidth(stage: s)
            if s < mergings.count {
                blockScratch.beginCycle()
                mergings[s].backward(dInput: dNext, dOut: dCur, index: mergeIndices[s], frames: batch * T, kept: kept, scratch: blockScratch)
                gradientsReady?(mergings[s].parameters.filter(\.tunable))
                swap(&dCur, &dNext)
            }
            for j in stride(from: stages[s].count - 1, through: 0, by: -1) {
                let input = kept.buffer("in.\(s).\(j)", Rs * Cs)
                flat -= 1
                if let span = gradientSpans[flat] { store.reclaim(span) }   // the next block's kept buffers are dead now
                blockScratch.beginCycle()
                stages[s][j].backward(dInput: dNext, dOut: dCur, input: input, batch: batch, scratch: blockScratch,
                                      inputGradient: s > 0 || j > 0 || patchTunable)
                if releaseKept { stages[s][j].releaseKept() }
                gradientsReady?(stages[s][j].parameters.filter(\.tunable))
                swap(&dCur, &dNext)
            }
        }
        // Patch norm and the Conv3d: only when they train (videoswin).
        let R0 = rows(stage: 0)
        guard patchTunable else { return }
        let demb = scratch.buffer("emb.d", R0 * C0)
        patchNorm.backward(dInput: demb, dOut: dCur, input: kept.buffer("emb", R0 * C0), mean: kept.buffer("pn.mean", R0),
                           rstd: kept.buffer("pn.rstd", R0), rows: R0, accumulateInput: false)
        if patchWeight.tunable {
            patchEmbed3DBackward(dVideo: nil, dWeight: patchWeight.gradData, dBias: patchBias.gradData, dOut: demb, video: lastVideo!,
                                 weight: patchWeight.data, sizes: patchSizes)
        }
        gradientsReady?((patchNorm.parameters + [patchWeight, patchBias]).filter(\.tunable))
    }
    private var C0: Int { config.embedDim }
    private var lastVideo: UnsafePointer<Float>?

    var keptBytes: Int { kept.bytes + stages.joined().reduce(0) { $0 + $1.keptBytes } }
    var lentBytes: Int { stages.joined().reduce(0) { $0 + $1.keptLentBytes } }
    var unkeptBytes: Int { unkept.bytes }
    var scratchBytes: Int { scratch.bytes + blockScratch.bytes }

    var frozenWeightsReadInFP32: [Parameter] { stages.joined().compactMap(\.foldedProjectionWeight) }

    func moduleCounts() -> [ModuleCount] {
        let frames = T, p = config.swinPatch
        let (ep, et) = parameterCounts([patchWeight, patchBias] + patchNorm.parameters)
        let R0 = frames * config.swinResolution(stage: 0) * config.swinResolution(stage: 0)
        var out = [ModuleCount(module: "patch_embed", parameters: ep, tunable: et, flops: R0 * C0 * 3 * p[0] * p[1] * p[2] + 5 * R0 * C0)]
        for (s, blocks) in stages.enumerated() {
            for (j, b) in blocks.enumerated() {
                let (bp, bt) = parameterCounts(b.parameters)
                out.append(ModuleCount(module: "layers.\(s).blocks.\(j)", parameters: bp, tunable: bt, flops: b.flops()))
            }
            if s < mergings.count {
                let (mp, mt) = parameterCounts(mergings[s].parameters)
                out.append(ModuleCount(module: "layers.\(s).downsample", parameters: mp, tunable: mt, flops: mergings[s].flops(frames: frames)))
            }
        }
        let Rf = frames * config.swinResolution(stage: stages.count - 1) * config.swinResolution(stage: stages.count - 1)
        let (np, nt) = parameterCounts(norm.parameters)
        out.append(ModuleCount(module: "norm", parameters: np, tunable: nt, flops: 5 * Rf * featureWidth))
        return out
    }
}
