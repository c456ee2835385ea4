import AIMTensor

/// facebookresearch/TimeSformer's divided space-time block on the IN-21K ViT
/// (docs/MODEL_REFERENCE.md §4). The input is video-level: per video one class token followed by
/// the L·T patch tokens in `(h w t)` order, i.e. rows `[b][0]` and `[b][1 + n·T + t]`.
/// Drop-path is batch-first here: per (b, n) in the temporal branch, per frame (b, t) in the
/// spatial one, per video b on the MLP.
final class TimeSformerBlock: TransformerBlock, ClassRowsBlock {
    let index: Int
    let norm1: LayerNormLayer
    let attn: AttentionLayer
    let tNorm: LayerNormLayer
    let tAttn: AttentionLayer
    let tFC: LinearLayer
    let norm2: LayerNormLayer
    let mlp: MLPLayer
    let dropPath: Float
    private let activations = KeptActivations()
    private var kept: Arena { activations.arena }
    private var scalesT: [Float] = [], scalesS: [Float] = [], scalesM: [Float] = []
    /// The last block: norm2 and the MLP on each video's class token alone (`ClassRowsBlock`).
    var classRowsOnly = false
    private var tail: ResidualMLP { ResidualMLP(norm: norm2, mlp: mlp) }

    init(store: ParameterStore, prefix: String, index: Int, config c: ModelConfig) {
        self.index = index
        let D = c.width, eps = c.layerNormEps
        norm1 = LayerNormLayer(store, prefix + "norm1", channels: D, eps: eps)
        attn = AttentionLayer.timm(store, prefix + "attn", width: D, heads: c.heads)
        tNorm = LayerNormLayer(store, prefix + "temporal_norm1", channels: D, eps: eps)
        tAttn = AttentionLayer.timm(store, prefix + "temporal_attn", width: D, heads: c.heads)
        // Zero except in block 0, so every later block starts as the image model.
        let z: Initialization = index == 0 ? .truncatedNormal(std: 0.02) : .zeros
        tFC = LinearLayer(store, prefix + "temporal_fc", in: D, out: D, weightInit: z)
        norm2 = LayerNormLayer(store, prefix + "norm2", channels: D, eps: eps)
        mlp = MLPLayer(store, prefix + "mlp", width: D, hidden: c.mlpHidden, clipNames: false)
        dropPath = c.dropPath(block: index)
    }

    var parameters: [Parameter] {
        norm1.parameters + attn.parameters + tNorm.parameters + tAttn.parameters + tFC.parameters + norm2.parameters + mlp.parameters
    }
    var keptBytes: Int { activations.bytes }
    func keepActivations(_ keep: Bool, shared: Arena, lent: Tensor?) { activations.select(keep: keep, shared: shared, lent: lent) }
    var keptLentBytes: Int { activations.lentBytes }
    func releaseKept() { activations.releaseAfterBackward() }

    /// Batch-first: every group belongs to one video, so decisions are keyed by that sample.
    /// `perVideo` groups subdivide each video (L positions, T frames, or 1).
    private func scales(_ rows: Int, _ context: PassContext, site: UInt64, groups: Int, perVideo: Int, _ groupOf: (Int) -> Int) -> [Float] {
        guard context.training && dropPath > 0 else { return [] }
        let key = UInt64(index) << 8 | site
        return dropPathRowScales(rows: rows, groups: groups, p: dropPath,
                                 rngFor: { g in context.rng(site: key, sample: g / perVideo, sub: UInt64(g % perVideo)) }, groupOf: groupOf)
    }

    func forward(out: FloatPtr, input x0: UnsafePointer<Float>, dims: Dims, context: PassContext, scratch: Arena) {
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D, L = N - 1, V = 1 + L * T, H = attn.heads
        let P = B * L * T, F = B * T
        // Temporal attention over the T frames of each patch position.
        let xtIn = kept.buffer("t.in", P * D)
        for b in 0..<B { (xtIn + b * L * T * D).update(from: x0 + (b * V + 1) * D, count: L * T * D) }
        let u = kept.buffer("t.u", P * D)
        tNorm.forward(u, xtIn, mean: kept.buffer("t.mean", P), rstd: kept.buffer("t.rstd", P), rows: P)
        let o = scratch.buffer("t.o", P * D)
        tAttn.forward(o, u, qkvBuf: tAttn.keptQKV(kept, "t.qkv", rows: P, length: T), probs: tAttn.probabilities(kept, "t.probs", B * L * H * T * T, length: T),
                      attnOut: kept.buffer("t.a", P * D), sequences: B * L, length: T, scratch: scratch)
        scalesT = scales(P, context, site: 1, groups: B * L, perVideo: L) { $0 / T }
        let od = kept.buffer("t.od", P * D)
        applyRowScales(scalesT, out: od, o, rows: P, cols: D)
        let xtNew = kept.buffer("t.new", P * D)
        xtNew.update(from: xtIn, count: P * D)
        tFC.forward(xtNew, od, rows: P, accumulate: true)

        // Spatial attention per frame, each frame with a copy of the video's class token.
        let xs = kept.buffer("s.x", F * N * D)
        for bt in 0..<F {
            let b = bt / T, t = bt % T
            (xs + bt * N * D).update(from: x0 + b * V * D, count: D)
            for n in 0..<L { (xs + (bt * N + 1 + n) * D).update(from: xtNew + ((b * L + n) * T + t) * D, count: D) }
        }
        let h1 = kept.buffer("s.h", F * N * D)
        norm1.forward(h1, xs, mean: kept.buffer("s.mean", F * N), rstd: kept.buffer("s.rstd", F * N), rows: F * N)
        // With class rows only, nothing reads x2's patch rows: the frames' class tokens are the only queries.
        let Q = classRowsOnly ? 1 : N   // query rows per frame
        let s = scratch.buffer("s.o", F * Q * D)
        attn.forward(s, h1, qkvBuf: attn.keptQKV(kept, "s.qkv", rows: F * N, length: N),
                     probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", F * H * N * N, length: N),
                     attnOut: kept.buffer("s.a", F * Q * D), sequences: F, length: N, scratch: scratch, classQueries: classRowsOnly)
        scalesS = scales(F * N, context, site: 2, groups: F, perVideo: T) { $0 / N }
        let sd = scratch.buffer("s.od", F * Q * D)
        applyRowScales(classRowsOnly ? classRowScales(scalesS, rows: F * N, every: N) : scalesS, out: sd, s, rows: F * Q, cols: D)
        // x = cat(c0, xt) + cat(mean_t s_cls, s_patches).
        let every = classRowsOnly ? V : nil
        let x2 = tail.input(kept: kept, scratch: scratch, rows: B * V, width: D, every: every)
        for b in 0..<B {
            let c = x2 + b * V * D
            c.update(from: x0 + b * V * D, count: D)
            for t in 0..<T {
                let sc = sd + (b * T + t) * Q * D
                for j in 0..<D { c[j] += sc[j] / Float(T) }
            }
            if classRowsOnly { continue }
            for n in 0..<L { for t in 0..<T {
                let dst = x2 + (b * V + 1 + n * T + t) * D
                let a = xtNew + ((b * L + n) * T + t) * D, p = sd + ((b * T + t) * N + 1 + n) * D
                for j in 0..<D { dst[j] = a[j] + p[j] }
            } }
        }
        // MLP, on every row or on the videos' class rows alone.
        scalesM = tail.forward(out: out, input: x2, rows: B * V, width: D, every: every,
                               scales: scales(B * V, context, site: 3, groups: B, perVideo: 1) { $0 / V }, kept: kept, scratch: scratch)
    }

    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, input x0: UnsafePointer<Float>, dims: Dims, scratch: Arena) {
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D, L = N - 1, V = 1 + L * T, H = attn.heads
        let P = B * L * T, F = B * T, R = B * V
        // MLP: dx (in video layout) receives d x2.
        tail.backward(dInput: dx, dOut: dOut, rows: R, width: D, every: classRowsOnly ? V : nil, scales: scalesM, kept: kept, scratch: scratch)
        // Split d x2 into the spatial output, the temporal output and the class token (with class rows
        // only, the spatial output is the class queries': dx's patch rows are zero but for the residual).
        let Q = classRowsOnly ? 1 : N
        let dsd = scratch.buffer("s.dsd", F * Q * D)
        let dxtNew = scratch.buffer("t.dnew", P * D)
        for b in 0..<B {
            for t in 0..<T {
                let dc = dsd + (b * T + t) * Q * D, g = dx + b * V * D
                for j in 0..<D { dc[j] = g[j] / Float(T) }
                if classRowsOnly { continue }
                for n in 0..<L { (dsd + ((b * T + t) * N + 1 + n) * D).update(from: dx + (b * V + 1 + n * T + t) * D, count: D) }
            }
            (dxtNew + b * L * T * D).update(from: dx + (b * V + 1) * D, count: L * T * D)
        }
        let ds = scratch.buffer("s.ds", F * Q * D)
        applyRowScales(classRowsOnly ? classRowScales(scalesS, rows: F * N, every: N) : scalesS, out: ds, dsd, rows: F * Q, cols: D)
        let dh1 = scratch.buffer("s.dh", F * N * D)
        attn.backward(dInput: dh1, dOut: ds, x: kept.buffer("s.h", F * N * D), qkvBuf: attn.keptQKV(kept, "s.qkv", rows: F * N, length: N),
                      probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", F * H * N * N, length: N),
                      attnOut: kept.buffer("s.a", F * Q * D), sequences: F, length: N, scratch: scratch, classQueries: classRowsOnly)
        let dxs = scratch.buffer("s.dxs", F * N * D)
        norm1.backward(dInput: dxs, dOut: dh1, input: kept.buffer("s.x", F * N * D), mean: kept.buffer("s.mean", F * N),
                       rstd: kept.buffer("s.rstd", F * N), rows: F * N, accumulateInput: false)
        for bt in 0..<F {
            let b = bt / T, t = bt % T
            addInPlace(dx + b * V * D, dxs + bt * N * D, count: D)   // the class token of video b
            for n in 0..<L { addInPlace(dxtNew + ((b * L + n) * T + t) * D, dxs + (bt * N + 1 + n) * D, count: D) }
        }
        // Temporal: xtNew = xtIn + temporal_fc(drop_path(temporal_attn(temporal_norm1(xtIn)))).
        let dod = scratch.buffer("t.dod", P * D)
        tFC.backward(dInput: dod, dOut: dxtNew, input: kept.buffer("t.od", P * D), rows: P)
        let dO = scratch.buffer("t.dO", P * D)
        applyRowScales(scalesT, out: dO, dod, rows: P, cols: D)
        let du = scratch.buffer("t.du", P * D)
        tAttn.backward(dInput: du, dOut: dO, x: kept.buffer("t.u", P * D), qkvBuf: tAttn.keptQKV(kept, "t.qkv", rows: P, length: T),
                       probs: tAttn.probabilities(kept, "t.probs", B * L * H * T * T, length: T), attnOut: kept.buffer("t.a", P * D),
                       sequences: B * L, length: T, scratch: scratch)
        tNorm.backward(dInput: dxtNew, dOut: du, input: kept.buffer("t.in", P * D), mean: kept.buffer("t.mean", P),
                       rstd: kept.buffer("t.rstd", P), rows: P, accumulateInput: true)
        for b in 0..<B { (dx + (b * V + 1) * D).update(from: dxtNew + b * L * T * D, count: L * T * D) }
    }

    func flops(dims: Dims) -> Int {
        let B = dims.B, T = dims.T, N = dims.N, D = dims.D, L = N - 1, V = 1 + L * T
        return tAttn.macs(sequences: B * L, length: T) + tFC.macs(rows: B * L * T) + 5 * B * L * T * D
            + attn.macs(sequences: B * T, length: N) + 5 * B * T * N * D
            + mlp.macs(rows: B * V) + 5 * B * V * D
    }
}
