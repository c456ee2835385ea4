import AIMTensor

/// A ViT block with AIM's adaptations (docs/MODEL_REFERENCE.md §1 and §2), in the official order:
/// (a) temporal — the block's own frozen `ln_1` and attention applied across the T frames of each
///     token, then `T_Adapter` (no skip; optional `T_Adapter_in` with skip before the attention),
///     added with drop-path;
/// (b) spatial — `x + S_Adapter(attn(ln_1(x)))`;
/// (c) joint — `x + mlp(ln_2(x)) + drop_path(scale · MLP_Adapter(ln_2(x)))`.
/// Without adapters it is the plain image-model block. Rows are `(b, t, n)`.
final class AIMBlock: TransformerBlock, ClassRowsBlock {
    let index: Int
    let ln1: LayerNormLayer
    let attn: AttentionLayer
    let ln2: LayerNormLayer
    let mlp: MLPLayer
    let tAdapterIn: AdapterLayer?
    let tAdapter: AdapterLayer?
    let sAdapter: AdapterLayer?
    let mlpAdapter: AdapterLayer?
    let adapterScale: Float
    let dropPath: Float
    /// CLIP runs seq-first, so timm's DropPath draws one decision per token index n;
    /// the timm ViT runs batch-first and draws one per frame (b, t).
    let dropPathPerToken: Bool
    private let activations = KeptActivations()
    private var kept: Arena { activations.arena }
    private var temporalScales: [Float] = []
    private var jointScales: [Float] = []
    /// Set on the last block of a backbone that reads only each frame's class token after it
    /// (ln_post → x[:, 0]): from the spatial attention's queries on, the block runs on those rows
    /// alone. The MLP, the S/MLP adapters and out_proj are per row, so the other tokens' rows there
    /// feed nothing; the attention still reads every token as key and value. `out` then holds the
    /// class rows only; its other rows are left as they were.
    var classRowsOnly = false

    /// Rows from the spatial attention's queries on: the class rows alone, or all.
    private func rowsAfterAttention(_ dims: Dims) -> Int { classRowsOnly ? dims.frames : dims.rows }

    init(store: ParameterStore, prefix: String, index: Int, config c: ModelConfig) {
        self.index = index
        let D = c.width, clip = c.isCLIPStyle, eps = c.layerNormEps
        let hasT = c.blockHas(.temporal, index), hasS = c.blockHas(.spatial, index), hasJ = c.blockHas(.joint, index)
        let ah = c.adapterHidden
        // Registration order = PyTorch named_parameters() order of the official modules.
        func adapter(_ name: String, _ on: Bool, skip: Bool) -> AdapterLayer? {
            on ? AdapterLayer(store, prefix + name, width: D, hidden: ah, skip: skip) : nil
        }
        if clip {
            attn = AttentionLayer.clip(store, prefix + "attn", width: D, heads: c.heads)
            ln1 = LayerNormLayer(store, prefix + "ln_1", channels: D, eps: eps)
            mlp = MLPLayer(store, prefix + "mlp", width: D, hidden: c.mlpHidden, clipNames: true)
            ln2 = LayerNormLayer(store, prefix + "ln_2", channels: D, eps: eps)
            mlpAdapter = adapter("MLP_Adapter", hasJ, skip: false)
            sAdapter = adapter("S_Adapter", hasS, skip: true)
            tAdapter = adapter("T_Adapter", hasT, skip: false)
            tAdapterIn = adapter("T_Adapter_in", hasT && c.numTAdapter == 2, skip: true)
        } else {
            ln1 = LayerNormLayer(store, prefix + "norm1", channels: D, eps: eps)
            attn = AttentionLayer.timm(store, prefix + "attn", width: D, heads: c.heads)
            mlpAdapter = adapter("MLP_Adapter", hasJ, skip: false)
            sAdapter = adapter("S_Adapter", hasS, skip: true)
            tAdapter = adapter("T_Adapter", hasT, skip: false)
            tAdapterIn = adapter("T_Adapter_in", hasT && c.numTAdapter == 2, skip: true)
            ln2 = LayerNormLayer(store, prefix + "norm2", channels: D, eps: eps)
            mlp = MLPLayer(store, prefix + "mlp", width: D, hidden: c.mlpHidden, clipNames: false)
        }
        adapterScale = c.adapterScale
        dropPath = c.dropPath(block: index)
        dropPathPerToken = clip
    }

    var parameters: [Parameter] {
        ln1.parameters + attn.parameters + ln2.parameters + mlp.parameters
            + [tAdapterIn, tAdapter, sAdapter, mlpAdapter].compactMap { $0 }.flatMap(\.parameters)
    }
    var keptBytes: Int { activations.bytes }
    /// A tunable bf16 linear's input, kept as the bf16 operand its weight gradient reads (nil otherwise).
    private func keptBF16(_ layer: LinearLayer, _ key: String, _ count: Int) -> UnsafeMutablePointer<UInt16>? {
        layer.keepsInputInBF16 ? kept.bf16Buffer(key, count) : nil
    }
    /// An adapter's input as the forward kept it for backward: bf16 under `key` + "16" for a bf16
    /// adapter (`keepsInputInBF16`), fp32 under `key` otherwise.
    private func keptAdapterInput(_ a: AdapterLayer, _ key: String, _ count: Int) -> (x: UnsafePointer<Float>?, xBF16: UnsafePointer<UInt16>?) {
        a.keepsInputInBF16 ? (nil, UnsafePointer(kept.bf16Buffer(key + "16", count))) : (UnsafePointer(kept.buffer(key, count)), nil)
    }
    /// Whether a linear's input is kept in fp32 for its weight gradient (a tunable fp32 linear).
    private func keepsFP32Input(_ layer: LinearLayer) -> Bool { layer.needsInput && !layer.keepsInputInBF16 }
    func keepActivations(_ keep: Bool, shared: Arena, lent: Tensor?) { activations.select(keep: keep, shared: shared, lent: lent) }
    var keptLentBytes: Int { activations.lentBytes }
    func releaseKept() { activations.releaseAfterBackward() }

    /// Whether the temporal branch runs in frame layout [(b t), n] throughout (no permutation into
    /// token layout and back): where its attention is the short bf16 kernel, which reads each
    /// token's frames where they lie, and nothing else in the branch depends on row order (no
    /// T_Adapter_in, whose fp32 path keeps its input in token layout).
    private func temporalInFrameLayout(_ T: Int) -> Bool { tAdapterIn == nil && attn.runsShortInBF16(T) }

    /// The projection weight the fold reads in fp32, where there is a fold.
    var foldedProjectionWeight: Parameter? { temporalFold?.proj.weight }

    /// The temporal branch's out_proj folded into T_Adapter's fc1 (`ProjectionFold`), where that
    /// applies: nothing but fc1 reads out_proj's output (T_Adapter has no skip), out_proj frozen.
    private var temporalFold: ProjectionFold? {
        guard let tAdapter, !tAdapter.skip, ProjectionFold.applies(proj: attn.proj, fc1: tAdapter.fc1) else { return nil }
        return ProjectionFold(proj: attn.proj, fc1: tAdapter.fc1)
    }

    private func rowScales(_ dims: Dims, _ context: PassContext, site: UInt64) -> [Float] {
        guard context.training && dropPath > 0 else { return [] }
        let key = UInt64(index) << 8 | site, N = dims.N, T = dims.T
        // Per token n for the sequence-first CLIP block (shared by the clips of one official
        // forward); per frame, keyed by the sample, for the batch-first IN-21K block.
        return dropPathPerToken
            ? sequenceFirstDropPathScales(rows: dims.rows, count: N, p: dropPath, context: context, site: key) { $0 % N }
            : dropPathRowScales(rows: dims.rows, groups: dims.frames, p: dropPath,
                                rngFor: { f in context.rng(site: key, sample: f / T, sub: UInt64(f % T)) }) { $0 / N }
    }

    func forward(out: FloatPtr, input x0: UnsafePointer<Float>, dims: Dims, context: PassContext, scratch: Arena) {
        let R = dims.rows, D = dims.D, N = dims.N, T = dims.T, B = dims.B, H = attn.heads
        let J = rowsAfterAttention(dims)
        var x1: UnsafePointer<Float> = x0
        // The largest kept buffer is asked for first: lent gradient memory is carved first-fit in
        // request order, and the smaller buffers then fill what it leaves.
        mlp.reserveKept(kept, rows: J)

        // Each section's temporaries are released at its end (scratch.rewind), so the next reuses them.
        if let tAdapter {
            let section = scratch.mark()
            defer { scratch.rewind(to: section) }
            // (a) temporal: LN over rows commutes with the row permutation, so normalise in
            // frame layout and permute the result into token layout [(b n), t, D] — or, where the
            // attention reads each token's frames where they lie, stay in frame layout throughout.
            let inFrameLayout = temporalInFrameLayout(T)
            var attnIn: UnsafePointer<Float>?, attnIn16: UnsafePointer<UInt16>?
            if tAdapterIn == nil && attn.readsOnlyRoundedInput {
                // Only the frozen bf16 in_proj reads ln_1's output: written in bf16 (permuted as such
                // unless the branch stays in frame layout).
                let u16 = scratch.bf16Buffer("t.u16", R * D)
                ln1.forward(roundedOutput: u16, x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R)
                attnIn16 = UnsafePointer(u16)
                if !inFrameLayout {
                    let xt16 = scratch.bf16Buffer("t.xt16", R * D)
                    swapMiddleAxes(out: xt16, input: u16, outer: B, p: T, q: N, rowLength: D)
                    attnIn16 = UnsafePointer(xt16)
                }
            } else {
                let u0 = scratch.buffer("t.u0", R * D)
                ln1.forward(u0, x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R)
                // Kept only when backward reads it (T_Adapter_in's input, or a tunable qkv's input); a bf16
                // T_Adapter_in keeps bf16(xt) instead.
                let xt16 = tAdapterIn.flatMap { keptBF16($0.fc1, "t.xt16", R * D) }
                let xt = (tAdapterIn != nil && xt16 == nil) || keepsFP32Input(attn.qkv) ? kept.buffer("t.xt", R * D) : scratch.buffer("t.xt", R * D)
                swapMiddleAxes(out: xt, input: u0, outer: B, p: T, q: N, rowLength: D)
                attnIn = UnsafePointer(xt)
                if let tAdapterIn {
                    let tin = keepsFP32Input(attn.qkv) ? kept.buffer("t.in", R * D) : scratch.buffer("t.in", R * D)
                    tAdapterIn.forward(tin, xt, h: kept.buffer("t.in.h", R * tAdapterIn.hidden), scratch: scratch, rows: R, keepInput: xt16)
                    attnIn = UnsafePointer(tin)
                }
            }
            let tOut = scratch.buffer("t.out", R * D)
            let qkvBuf = attn.keptQKV(kept, "t.qkv", rows: R, length: T), probs = attn.probabilities(kept, "t.probs", B * N * H * T * T, length: T)
            let h = kept.buffer("t.ad.h", R * tAdapter.hidden)
            if let fold = temporalFold {
                // out_proj folded into T_Adapter's fc1: the attention's output is what backward reads
                // (in bf16 for a bf16 model, as the folded product reads it).
                let a16 = fold.inBF16 ? kept.bf16Buffer("t.fold.a16", R * D) : nil
                let a = fold.inBF16 ? scratch.buffer("t.a", R * D) : kept.buffer("t.a", R * D)
                attn.forward(nil, attnIn, xBF16: attnIn16, qkvBuf: qkvBuf, probs: probs, attnOut: a, sequences: B * N, length: T,
                             interleaved: inFrameLayout ? N : 1, scratch: scratch, attnOutKeep: a16)
                let w = kept.buffer("t.fold.w", fold.outFeatures * fold.inFeatures), b = kept.buffer("t.fold.b", fold.outFeatures)
                fold.fold(weight: w, bias: b)
                fold.forward(h, fold.inBF16 ? nil : UnsafePointer(a), aBF16: a16.map { UnsafePointer($0) }, weight: w, bias: b, rows: R)
                tAdapter.output(tOut, h: h, scratch: scratch, rows: R)
            } else {
                let o16 = keptBF16(tAdapter.fc1, "t.o16", R * D)   // T_Adapter's input: fp32 kept, or bf16 for a bf16 adapter
                let o = o16 == nil ? kept.buffer("t.o", R * D) : scratch.buffer("t.o", R * D)
                attn.forward(o, attnIn, xBF16: attnIn16, qkvBuf: qkvBuf, probs: probs,
                             attnOut: keepsFP32Input(attn.proj) ? kept.buffer("t.a", R * D) : scratch.buffer("t.a", R * D), sequences: B * N, length: T,
                             interleaved: inFrameLayout ? N : 1, scratch: scratch,
                             xKeep: keptBF16(attn.qkv, "t.ain16", R * D), attnOutKeep: keptBF16(attn.proj, "t.a16", R * D))
                tAdapter.forward(tOut, o, h: h, scratch: scratch, rows: R, keepInput: o16)
            }
            var tBack = UnsafePointer(tOut)
            if !inFrameLayout {
                let back = scratch.buffer("t.back", R * D)
                swapMiddleAxes(out: back, input: tOut, outer: B, p: N, q: T, rowLength: D)
                tBack = UnsafePointer(back)
            }
            let x1m = kept.buffer("x1", R * D)
            temporalScales = rowScales(dims, context, site: 1)
            addRowScaled(temporalScales, out: x1m, base: x0, tBack, rows: R, cols: D)
            x1 = UnsafePointer(x1m)
        }

        // (b) spatial, per frame over N tokens. Its output x2 goes straight into `out`, where the
        // joint branch adds to it (with class rows only, into a [frames, D] buffer scattered into
        // `out` at the end).
        let x2 = classRowsOnly ? scratch.buffer("s.x2c", J * D) : out
        var section = scratch.mark()
        // ln_1's output (q|k|v's input) is rebuilt from x1 in backward when a tunable in_proj needs it
        // (same bits; why: keeping it cost 4 bytes a value in fp32, 2 in bf16, for one LayerNorm pass).
        // Only a frozen bf16 in_proj reads it: then it is written in bf16.
        var h1: UnsafeMutablePointer<Float>?, h1BF16: UnsafeMutablePointer<UInt16>?
        if attn.readsOnlyRoundedInput {
            h1BF16 = scratch.bf16Buffer("s.h16", R * D)
            ln1.forward(roundedOutput: h1BF16!, x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R)
        } else {
            h1 = scratch.buffer("s.h", R * D)
            ln1.forward(h1!, x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R)
        }
        let o16 = sAdapter.flatMap { keptBF16($0.fc1, "s.o16", J * D) }   // S_Adapter's input as kept: fp32, or bf16
        let keepsO = sAdapter != nil && o16 == nil
        let o = keepsO ? kept.buffer("s.o", J * D) : scratch.buffer("s.o", J * D)
        attn.forward(o, h1.map { UnsafePointer($0) }, xBF16: h1BF16.map { UnsafePointer($0) }, qkvBuf: attn.keptQKV(kept, "s.qkv", rows: R, length: N), probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", dims.frames * H * N * N, length: N),
                     attnOut: keepsFP32Input(attn.proj) ? kept.buffer("s.a", J * D) : scratch.buffer("s.a", J * D), sequences: dims.frames, length: N, scratch: scratch,
                     attnOutKeep: keptBF16(attn.proj, "s.a16", J * D), classQueries: classRowsOnly)
        var x1J = x1
        if classRowsOnly {
            let x1c = scratch.buffer("s.x1c", J * D)
            gatherRows(out: x1c, input: x1, rows: J, every: N, width: D)
            x1J = UnsafePointer(x1c)
        }
        if let sAdapter {
            sAdapter.forward(x2, o, h: kept.buffer("s.ad.h", J * sAdapter.hidden), scratch: scratch, rows: J, keepInput: o16)
            addInPlace(x2, x1J, count: J * D)
        } else {
            add(out: x2, x1J, o, count: J * D)
        }

        scratch.rewind(to: section)

        // (c) joint: the MLP and, beside it, the scaled MLP adapter.
        section = scratch.mark()
        defer { scratch.rewind(to: section) }
        // ln_2's backward reads x̂ (kept) instead of x2; the weight gradients of c_fc and of the MLP
        // adapter read ln_2's output, rebuilt from x̂ in backward (same bits; why: not kept twice).
        // A bf16 MLP adapter keeps bf16(h2) for its weight gradient; c_fc reads the same operand, so
        // h2 is rounded once for both (before: once by each product, and rebuilt in backward). When
        // only bf16 products read h2 (a frozen bf16 c_fc, a bf16 adapter or none), ln_2 writes it in
        // bf16 alone.
        let h16 = mlpAdapter.flatMap { keptBF16($0.fc1, "j.h16", J * D) }
        let onlyRounded = mlp.keepsPreInBF16 && !mlp.fc1.needsInput && (mlpAdapter == nil || h16 != nil)
        var h2: UnsafeMutablePointer<Float>?, rounded: UnsafeMutablePointer<UInt16>?
        if onlyRounded {
            rounded = h16 ?? scratch.bf16Buffer("j.h16", J * D)
            ln2.forward(roundedOutput: rounded!, x2, mean: nil, rstd: kept.buffer("j.rstd", J), normalized: kept.buffer("j.xhat", J * D), rows: J)
        } else {
            h2 = scratch.buffer("j.h", J * D)
            ln2.forward(h2!, x2, mean: nil, rstd: kept.buffer("j.rstd", J), normalized: kept.buffer("j.xhat", J * D), rows: J)
            if let h16 { StepProfile.measure(.frozenGEMM) { toBF16(h16, h2!, count: J * D) } }
            rounded = mlp.keepsPreInBF16 ? h16 : nil
        }
        mlp.forward(x2, h2.map { UnsafePointer($0) }, kept: kept, scratch: scratch, rows: J, accumulate: true,
                    roundedInput: rounded.map { UnsafePointer($0) })
        if let mlpAdapter {
            var s = rowScales(dims, context, site: 2)
            if classRowsOnly { s = classRowScales(s, rows: R, every: N) }
            jointScales = s.isEmpty ? [Float](repeating: adapterScale, count: J) : s.map { $0 * adapterScale }
            if s.isEmpty && mlpAdapter.scalesInside {
                // Without drop-path, scale · MLP_Adapter goes straight into x2 from its fc2 (no [rows, D] temporary).
                mlpAdapter.forward(x2, h2.map { UnsafePointer($0) }, h: kept.buffer("j.ad.h", J * mlpAdapter.hidden), scratch: scratch, rows: J,
                                   accumulate: true, scale: adapterScale, roundedInput: h16.map { UnsafePointer($0) })
            } else {
                let m = scratch.buffer("j.ad.out", J * D)
                mlpAdapter.forward(m, h2.map { UnsafePointer($0) }, h: kept.buffer("j.ad.h", J * mlpAdapter.hidden), scratch: scratch, rows: J,
                                   roundedInput: h16.map { UnsafePointer($0) })
                scaleRows(out: x2, input: m, rowScales: jointScales, rows: J, cols: D, accumulate: true)
            }
        }
        if classRowsOnly { scatterRows(out: out, input: x2, rows: J, every: N, width: D) }
    }

    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, input x0: UnsafePointer<Float>, dims: Dims, scratch: Arena) {
        let R = dims.rows, D = dims.D, N = dims.N, T = dims.T, B = dims.B
        let J = rowsAfterAttention(dims)
        let hasT = tAdapter != nil
        let x1: UnsafePointer<Float> = hasT ? UnsafePointer(kept.buffer("x1", R * D)) : x0

        // With class rows only, the joint and S_Adapter backward run on those rows: dOut's other
        // rows are zero (nothing read them), and so are those of d x2.
        var dOutJ = dOut
        let dxJ = classRowsOnly ? scratch.buffer("j.dx.c", J * D) : dx
        if classRowsOnly {
            let d = scratch.buffer("j.dout.c", J * D)
            gatherRows(out: d, input: dOut, rows: J, every: N, width: D)
            dOutJ = UnsafePointer(d)
        }

        // (c) joint. dx accumulates the gradient of the block input through every residual, starting
        // with ln_2's backward, which adds dOut (the joint residual) as it writes dx.
        var section = scratch.mark()
        let dh2 = scratch.buffer("j.dh", J * D)
        let xhat2 = kept.buffer("j.xhat", J * D)
        var h2: UnsafeMutablePointer<Float>?
        let h16 = mlpAdapter.flatMap { keptBF16($0.fc1, "j.h16", J * D) }
        if mlp.fc1.needsInput || (mlpAdapter != nil && h16 == nil) {
            h2 = scratch.buffer("j.h", J * D)
            ln2.output(h2!, normalized: xhat2, rows: J)
        }
        mlp.backward(dInput: dh2, dOut: dOutJ, x: h2, kept: kept,
                     scratch: scratch, rows: J, accumulateInput: false)
        if let mlpAdapter {
            let dm = scratch.buffer("j.ad.dout", J * D)
            scaleRows(out: dm, input: dOutJ, rowScales: jointScales, rows: J, cols: D)
            mlpAdapter.backward(dInput: dh2, dOut: dm, x: h2.map { UnsafePointer($0) }, xBF16: h16.map { UnsafePointer($0) },
                                h: kept.buffer("j.ad.h", J * mlpAdapter.hidden),
                                scratch: scratch, rows: J, accumulateInput: true)
        }
        ln2.backward(dInput: dxJ, dOut: dh2, normalized: xhat2, rstd: kept.buffer("j.rstd", J), rows: J, accumulateInput: false, addend: dOutJ)
        scratch.rewind(to: section)

        // (b) spatial: dx now holds d x2 = d x1 through the residual.
        section = scratch.mark()
        var dO: UnsafePointer<Float> = UnsafePointer(dxJ)
        if let sAdapter {
            let dOm = scratch.buffer("s.do", J * D)
            let o = keptAdapterInput(sAdapter, "s.o", J * D)
            sAdapter.backward(dInput: dOm, dOut: dxJ, x: o.x, xBF16: o.xBF16, h: kept.buffer("s.ad.h", J * sAdapter.hidden),
                              scratch: scratch, rows: J, accumulateInput: false)
            dO = UnsafePointer(dOm)
        }
        if classRowsOnly {
            // Back to every row for the residual (the attention takes the class rows' dO alone).
            dx.update(repeating: 0, count: R * D)
            scatterRows(out: dx, input: dxJ, rows: J, every: N, width: D)
        }
        let dh1 = scratch.buffer("s.dh", R * D)
        var h1: UnsafeMutablePointer<Float>?
        if attn.qkv.needsInput {
            h1 = scratch.buffer("s.h", R * D)
            ln1.forward(h1!, x1, mean: nil, rstd: nil, rows: R)
        }
        attn.backward(dInput: dh1, dOut: dO, x: h1.map { UnsafePointer($0) }, qkvBuf: attn.keptQKV(kept, "s.qkv", rows: R, length: N),
                      probs: classRowsOnly ? nil : attn.probabilities(kept, "s.probs", dims.frames * attn.heads * N * N, length: N), attnOut: keepsFP32Input(attn.proj) ? kept.buffer("s.a", J * D) : nil,
                      sequences: dims.frames, length: N, scratch: scratch,
                      attnOutBF16: keptBF16(attn.proj, "s.a16", J * D), classQueries: classRowsOnly)
        ln1.backward(dInput: dx, dOut: dh1, input: x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R),
                     rows: R, accumulateInput: true)
        scratch.rewind(to: section)

        // (a) temporal: dx holds d x1 = d x0 through the residual.
        guard let tAdapter else { return }
        // Without drop-path the temporal branch's gradient is dx itself (no scaled copy).
        var dBack: UnsafePointer<Float> = UnsafePointer(dx)
        if !temporalScales.isEmpty {
            let scaled = scratch.buffer("t.dback", R * D)
            applyRowScales(temporalScales, out: scaled, dx, rows: R, cols: D)
            dBack = UnsafePointer(scaled)
        }
        let inFrameLayout = temporalInFrameLayout(T)
        var dTOut = dBack
        if !inFrameLayout {
            let d = scratch.buffer("t.dout", R * D)
            swapMiddleAxes(out: d, input: dBack, outer: B, p: T, q: N, rowLength: D)
            dTOut = UnsafePointer(d)
        }
        // dOt: the gradient of T_Adapter's input (out_proj's output), or with the fold of out_proj's input.
        let dOt = scratch.buffer("t.do", R * D)
        let h = kept.buffer("t.ad.h", R * tAdapter.hidden)
        let fold = temporalFold
        if let fold {
            let dh = tAdapter.hiddenGradient(dOut: dTOut, h: h, scratch: scratch, rows: R)
            fold.backward(dInput: dOt, dh: dh, a: fold.inBF16 ? nil : UnsafePointer(kept.buffer("t.a", R * D)),
                          aBF16: fold.inBF16 ? UnsafePointer(kept.bf16Buffer("t.fold.a16", R * D)) : nil,
                          weight: kept.buffer("t.fold.w", fold.outFeatures * fold.inFeatures), rows: R, scratch: scratch)
        } else {
            let o = keptAdapterInput(tAdapter, "t.o", R * D)
            tAdapter.backward(dInput: dOt, dOut: dTOut, x: o.x, xBF16: o.xBF16, h: h, scratch: scratch, rows: R, accumulateInput: false)
        }
        let dAttnIn = scratch.buffer("t.dain", R * D)
        let attnIn: UnsafePointer<Float>? = !keepsFP32Input(attn.qkv) ? nil
            : UnsafePointer(tAdapterIn != nil ? kept.buffer("t.in", R * D) : kept.buffer("t.xt", R * D))
        attn.backward(dInput: dAttnIn, dOut: dOt, x: attnIn, qkvBuf: attn.keptQKV(kept, "t.qkv", rows: R, length: T),
                      probs: attn.probabilities(kept, "t.probs", B * N * attn.heads * T * T, length: T),
                      attnOut: fold == nil && keepsFP32Input(attn.proj) ? kept.buffer("t.a", R * D) : nil,
                      sequences: B * N, length: T, interleaved: inFrameLayout ? N : 1, scratch: scratch,
                      xBF16: keptBF16(attn.qkv, "t.ain16", R * D), attnOutBF16: keptBF16(attn.proj, "t.a16", R * D), projection: fold == nil)
        var dXt: UnsafePointer<Float> = UnsafePointer(dAttnIn)
        if let tAdapterIn {
            let dxt = scratch.buffer("t.dxt", R * D)
            let xt = keptAdapterInput(tAdapterIn, "t.xt", R * D)
            tAdapterIn.backward(dInput: dxt, dOut: dAttnIn, x: xt.x, xBF16: xt.xBF16, h: kept.buffer("t.in.h", R * tAdapterIn.hidden),
                                scratch: scratch, rows: R, accumulateInput: false)
            dXt = UnsafePointer(dxt)
        }
        var dU0 = dXt
        if !inFrameLayout {
            let d = scratch.buffer("t.du0", R * D)
            swapMiddleAxes(out: d, input: dXt, outer: B, p: N, q: T, rowLength: D)
            dU0 = UnsafePointer(d)
        }
        ln1.backward(dInput: dx, dOut: dU0, input: x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R),
                     rows: R, accumulateInput: true)
    }

    func flops(dims: Dims) -> Int {
        let R = dims.rows, D = dims.D
        var f = attn.macs(sequences: dims.frames, length: dims.N) + mlp.macs(rows: R) + 2 * 5 * R * D
        if let tAdapter {
            f += 5 * R * D + attn.macs(sequences: dims.B * dims.N, length: dims.T) + tAdapter.macs(rows: R)
        }
        for a in [tAdapterIn, sAdapter, mlpAdapter].compactMap({ $0 }) { f += a.macs(rows: R) }
        return f
    }
}
