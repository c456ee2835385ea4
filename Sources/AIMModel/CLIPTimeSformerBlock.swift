import AIMTensor

/// The official repo's CLIP TimeSformer block (docs/MODEL_REFERENCE.md §3), the paper's
/// "TimeSformer, CLIP" baseline: its own temporal attention `t_attn` and `t_norm`, and a plain
/// linear `T_Adapter` after the temporal attention; then the CLIP spatial block.
/// Drop-path follows the seq-first layouts of the official code: per frame index t in the
/// temporal branch (`[t, (b n), d]`), per token n in the spatial and MLP branches (`[n, (b t), d]`).
final class CLIPTimeSformerBlock: TransformerBlock, ClassRowsBlock {
    let index: Int
    let attn: AttentionLayer
    let ln1: LayerNormLayer
    let mlp: MLPLayer
    let ln2: LayerNormLayer
    let tAttn: AttentionLayer
    let tNorm: LayerNormLayer
    let tLinear: LinearLayer
    let dropPath: Float
    private let activations = KeptActivations()
    private var kept: Arena { activations.arena }
    private var scalesT: [Float] = [], scalesS: [Float] = [], scalesM: [Float] = []
    /// The last block: ln_2 and the MLP on each frame's class token alone (`ClassRowsBlock`).
    var classRowsOnly = false
    private var tail: ResidualMLP { ResidualMLP(norm: ln2, mlp: mlp) }

    init(store: ParameterStore, prefix: String, index: Int, config c: ModelConfig) {
        self.index = index
        let D = c.width, eps = c.layerNormEps
        attn = AttentionLayer.clip(store, prefix + "attn", width: D, heads: c.heads)
        ln1 = LayerNormLayer(store, prefix + "ln_1", channels: D, eps: eps)
        mlp = MLPLayer(store, prefix + "mlp", width: D, hidden: c.mlpHidden, clipNames: true)
        ln2 = LayerNormLayer(store, prefix + "ln_2", channels: D, eps: eps)
        tAttn = AttentionLayer.clip(store, prefix + "t_attn", width: D, heads: c.heads)
        tNorm = LayerNormLayer(store, prefix + "t_norm", channels: D, eps: eps)
        tLinear = LinearLayer(store, prefix + "T_Adapter", in: D, out: D)
        dropPath = c.dropPath(block: index)
    }

    var parameters: [Parameter] {
        attn.parameters + ln1.parameters + mlp.parameters + ln2.parameters + tAttn.parameters + tNorm.parameters + tLinear.parameters
    }
    var keptBytes: Int { activations.bytes }
    func keepActivations(_ keep: Bool, shared: Arena, lent: Tensor?) { activations.select(keep: keep, shared: shared, lent: lent) }
    var keptLentBytes: Int { activations.lentBytes }
    func releaseKept() { activations.releaseAfterBackward() }

    /// Decisions per frame index or per token index, shared by the clips of one official forward
    /// (the official block runs sequence-first).
    private func scales(_ dims: Dims, _ context: PassContext, site: UInt64, groups: Int, _ groupOf: (Int) -> Int) -> [Float] {
        guard context.training && dropPath > 0 else { return [] }
        return sequenceFirstDropPathScales(rows: dims.rows, count: groups, p: dropPath, context: context,
                                           site: UInt64(index) << 8 | site, indexOf: groupOf)
    }

    func forward(out: FloatPtr, input x0: UnsafePointer<Float>, dims: Dims, context: PassContext, scratch: Arena) {
        let R = dims.rows, D = dims.D, N = dims.N, T = dims.T, B = dims.B, H = attn.heads
        // Temporal, in token layout [(b n), t, D].
        let u0 = scratch.buffer("u0", R * D)
        tNorm.forward(u0, x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R)
        let xt = kept.buffer("t.xt", R * D)
        swapMiddleAxes(out: xt, input: u0, outer: B, p: T, q: N, rowLength: D)
        let o = scratch.buffer("t.o", R * D)
        tAttn.forward(o, xt, qkvBuf: tAttn.keptQKV(kept, "t.qkv", rows: R, length: T), probs: tAttn.probabilities(kept, "t.probs", B * N * H * T * T, length: T),
                      attnOut: kept.buffer("t.a", R * D), sequences: B * N, length: T, scratch: scratch)
        scalesT = scales(dims, context, site: 1, groups: T) { $0 % T }
        let od = kept.buffer("t.od", R * D)
        applyRowScales(scalesT, out: od, o, rows: R, cols: D, accumulate: false)
        let lin = scratch.buffer("t.lin", R * D)
        tLinear.forward(lin, od, rows: R)
        let x1 = kept.buffer("x1", R * D)
        swapMiddleAxes(out: x1, input: lin, outer: B, p: N, q: T, rowLength: D)
        addInPlace(x1, x0, count: R * D)

        // Spatial; with class rows only, the attention's queries are the class tokens alone (J rows).
        let h1 = kept.buffer("s.h", R * D)
        ln1.forward(h1, x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R)
        let J = classRowsOnly ? dims.frames : R
        let so = scratch.buffer("s.o", J * D)
        attn.forward(so, h1, qkvBuf: attn.keptQKV(kept, "s.qkv", rows: R, length: N),
                     probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", dims.frames * H * N * N, length: N),
                     attnOut: kept.buffer("s.a", J * D), sequences: dims.frames, length: N, scratch: scratch, classQueries: classRowsOnly)
        scalesS = scales(dims, context, site: 2, groups: N) { $0 % N }
        let every = classRowsOnly ? N : nil
        let x2 = tail.input(kept: kept, scratch: scratch, rows: R, width: D, every: every)
        if classRowsOnly {
            // Only x2's class rows are read (by the MLP tail); the others are left unwritten.
            let x2c = scratch.buffer("s.x2c", J * D)
            gatherRows(out: x2c, input: x1, rows: J, every: N, width: D)
            applyRowScales(classRowScales(scalesS, rows: R, every: N), out: x2c, so, rows: J, cols: D, accumulate: true)
            scatterRows(out: x2, input: x2c, rows: J, every: N, width: D)
        } else {
            x2.update(from: x1, count: R * D)
            applyRowScales(scalesS, out: x2, so, rows: R, cols: D, accumulate: true)
        }

        // MLP, on every row or on the frames' class rows alone.
        scalesM = tail.forward(out: out, input: x2, rows: R, width: D, every: every,
                               scales: scales(dims, context, site: 3, groups: N) { $0 % N }, kept: kept, scratch: scratch)
    }

    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, input x0: UnsafePointer<Float>, dims: Dims, scratch: Arena) {
        let R = dims.rows, D = dims.D, N = dims.N, T = dims.T, B = dims.B, H = attn.heads
        tail.backward(dInput: dx, dOut: dOut, rows: R, width: D, every: classRowsOnly ? N : nil, scales: scalesM, kept: kept, scratch: scratch)
        // Spatial (with class rows only, dx's other rows are zero but for the residual: the class queries' dO).
        let J = classRowsOnly ? dims.frames : R
        let dso = scratch.buffer("s.dso", J * D)
        if classRowsOnly {
            let dxc = scratch.buffer("s.dxc", J * D)
            gatherRows(out: dxc, input: dx, rows: J, every: N, width: D)
            applyRowScales(classRowScales(scalesS, rows: R, every: N), out: dso, dxc, rows: J, cols: D, accumulate: false)
        } else {
            applyRowScales(scalesS, out: dso, dx, rows: R, cols: D, accumulate: false)
        }
        let dh1 = scratch.buffer("s.dh", R * D)
        attn.backward(dInput: dh1, dOut: dso, x: kept.buffer("s.h", R * D), qkvBuf: attn.keptQKV(kept, "s.qkv", rows: R, length: N),
                      probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", dims.frames * H * N * N, length: N),
                      attnOut: kept.buffer("s.a", J * D), sequences: dims.frames, length: N, scratch: scratch, classQueries: classRowsOnly)
        ln1.backward(dInput: dx, dOut: dh1, input: kept.buffer("x1", R * D), mean: kept.buffer("s.mean", R),
                     rstd: kept.buffer("s.rstd", R), rows: R, accumulateInput: true)
        // Temporal.
        let dlin = scratch.buffer("t.dlin", R * D)
        swapMiddleAxes(out: dlin, input: dx, outer: B, p: T, q: N, rowLength: D)
        let dod = scratch.buffer("t.dod", R * D)
        tLinear.backward(dInput: dod, dOut: dlin, input: kept.buffer("t.od", R * D), rows: R)
        let dO = scratch.buffer("t.dO", R * D)
        applyRowScales(scalesT, out: dO, dod, rows: R, cols: D, accumulate: false)
        let dxt = scratch.buffer("t.dxt", R * D)
        let xt = kept.buffer("t.xt", R * D)
        tAttn.backward(dInput: dxt, dOut: dO, x: xt, qkvBuf: tAttn.keptQKV(kept, "t.qkv", rows: R, length: T),
                       probs: tAttn.probabilities(kept, "t.probs", B * N * H * T * T, length: T), attnOut: kept.buffer("t.a", R * D),
                       sequences: B * N, length: T, scratch: scratch)
        let du0 = scratch.buffer("t.du0", R * D)
        swapMiddleAxes(out: du0, input: dxt, outer: B, p: N, q: T, rowLength: D)
        tNorm.backward(dInput: dx, dOut: du0, input: x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R),
                       rows: R, accumulateInput: true)
    }

    func flops(dims: Dims) -> Int {
        let R = dims.rows, D = dims.D
        return attn.macs(sequences: dims.frames, length: dims.N) + mlp.macs(rows: R) + 3 * 5 * R * D
            + tAttn.macs(sequences: dims.B * dims.N, length: dims.T) + tLinear.macs(rows: R)
    }
}
