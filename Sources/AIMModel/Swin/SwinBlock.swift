import AIMTensor

/// One block of the Swin family on tokens `[B·T·H·W, C]` in (b, t, h, w) order.
///
/// `aim` (swin2d, SwinTransformer2D_Adapter's SwinTransformerBlock):
///   even blocks first: x = x + T_Adapter(attn_temporal(norm1(x)))  — over the T tokens of each
///     position, with the temporal relative-position bias, frozen norm1/qkv/proj reused
///   x = x + reverse(S_Adapter2(attn(window(norm1(x)))))              — S_Adapter2 has a skip
///   x = x + mlp(norm2 x) + 0.5 · S_Adapter(norm2 x)
///   (drop-path on the temporal branch and on the scaled S_Adapter only, as the official code).
/// otherwise (videoswin, SwinTransformerBlock3D):
///   x = x + crop(attn(window(pad(norm1 x))));  x = x + mlp(norm2 x)  — drop-path on both branches;
///   pad/crop: zeros at the end of T, H, W up to window multiples (official forward_part1).
/// Windows are gathered rows (`spatialIndex`, padding rows are zero rows: index −1)
/// and read back with the inverse gather (`spatialInverse`), which is also the crop.
final class SwinBlock {
    let index: Int
    let aim: Bool
    let T: Int, H: Int, W: Int, C: Int
    let tAdapter: AdapterLayer?
    let norm1: LayerNormLayer
    let attn: SwinWindowAttention
    let spatialTable: Parameter
    let temporalTable: Parameter?
    let norm2: LayerNormLayer
    let mlp: MLPLayer
    let sAdapter: AdapterLayer?
    let sAdapter2: AdapterLayer?
    let spatial: WindowGeometry
    let temporal: WindowGeometry?
    let dropPath: Float
    private let activations = KeptActivations()
    private var kept: Arena { activations.arena }
    private var spatialIndex: [Int32] = [], spatialInverse: [Int32] = [], temporalIndex: [Int32] = [], indexBatch = -1
    private var temporalScales: [Float] = [], spatialScales: [Float] = [], mlpScales: [Float] = []

    /// `index`: the block's position over all stages (drop-path rate and random keys).
    init(store: ParameterStore, prefix: String, config c: ModelConfig, stage: Int, block: Int, index: Int) {
        self.index = index
        aim = c.backbone == .swin2d
        T = c.swinTemporalTokens; H = c.swinResolution(stage: stage); W = H; C = c.swinWidth(stage: stage)
        let heads = c.numHeads[stage], eps: Float = 1e-5, ah = Int(Double(C) * c.adapterMLPRatio)
        // model.adapters picks the official adapters: temporal = T_Adapter (and the temporal pass it
        // belongs to, even blocks), spatial = S_Adapter2, joint = S_Adapter; [] = the frozen image Swin.
        let hasT = aim && block % 2 == 0 && c.adapters.contains(.temporal)
        tAdapter = hasT ? AdapterLayer(store, prefix + "T_Adapter", width: C, hidden: ah, skip: false) : nil
        norm1 = LayerNormLayer(store, prefix + "norm1", channels: C, eps: eps)
        if aim {
            let (w, s) = c.swin2dWindow(stage: stage)
            let shift = block % 2 == 1 ? s : 0
            spatial = WindowGeometry(volume: [1, H, W], window: [1, w, w], shift: [0, shift, shift], tableWindow: [1, w, w])
            temporal = hasT ? WindowGeometry(volume: [T, H, W], window: [T, 1, 1], shift: [0, 0, 0], tableWindow: [T, 1, 1]) : nil
        } else {
            let (w, s) = c.videoSwinWindow(stage: stage)
            spatial = WindowGeometry(volume: [T, H, W], window: w, shift: block % 2 == 1 ? s : [0, 0, 0], tableWindow: c.windowSize)
            temporal = nil
        }
        spatialTable = store.register(prefix + "attn.relative_position_bias_table", [spatial.tableRows, heads], .truncatedNormal(std: 0.02))
        attn = SwinWindowAttention(qkv: LinearLayer(store, prefix + "attn.qkv", in: C, out: 3 * C),
                                   proj: LinearLayer(store, prefix + "attn.proj", in: C, out: C), heads: heads)
        temporalTable = temporal.map { store.register(prefix + "attn.temporal_position_bias_table", [$0.tableRows, heads], .truncatedNormal(std: 0.02)) }
        norm2 = LayerNormLayer(store, prefix + "norm2", channels: C, eps: eps)
        mlp = MLPLayer(store, prefix + "mlp", width: C, hidden: c.mlpHidden(width: C), clipNames: false)
        sAdapter = aim && c.adapters.contains(.joint) ? AdapterLayer(store, prefix + "S_Adapter", width: C, hidden: ah, skip: false) : nil
        sAdapter2 = aim && c.adapters.contains(.spatial) ? AdapterLayer(store, prefix + "S_Adapter2", width: C, hidden: ah, skip: true) : nil
        let total = c.depths.reduce(0, +)
        dropPath = total <= 1 ? 0 : c.dropPathRate * Float(index) / Float(total - 1)
    }

    var parameters: [Parameter] {
        (tAdapter?.parameters ?? []) + norm1.parameters + [spatialTable] + attn.parameters + (temporalTable.map { [$0] } ?? [])
            + norm2.parameters + mlp.parameters + (sAdapter?.parameters ?? []) + (sAdapter2?.parameters ?? [])
    }
    var keptBytes: Int { activations.bytes }
    func keepActivations(_ keep: Bool, shared: Arena, lent: Tensor?) { activations.select(keep: keep, shared: shared, lent: lent) }
    var keptLentBytes: Int { activations.lentBytes }
    func releaseKept() { activations.releaseAfterBackward() }

    private func indices(batch B: Int) {
        guard indexBatch != B else { return }
        spatialIndex = spatial.index(samples: aim ? B * T : B)
        spatialInverse = spatial.inverse(samples: aim ? B * T : B)
        temporalIndex = temporal?.index(samples: B) ?? []
        indexBatch = B
    }

    /// Drop-path scales per row; `group(row)` → (sample, sub-key) of the official per-sample decision.
    private func rowScales(_ B: Int, _ context: PassContext, site: UInt64, groups: Int, groupOf: @escaping (Int) -> Int,
                           key: @escaping (Int) -> (Int, Int)) -> [Float] {
        guard context.training && dropPath > 0 else { return [] }
        let site = UInt64(0x5000 + index) << 8 | site
        return dropPathRowScales(rows: B * T * H * W, groups: groups, p: dropPath,
                                 rngFor: { g in let (b, s) = key(g); return context.rng(site: site, sample: b, sub: UInt64(s)) }, groupOf: groupOf)
    }

    /// `out` (distinct from the input) holds x1 and then x2 as the residual sums build up, instead of
    /// a copy per branch (why: each copy was an [R, C] memory pass and an [R, C] scratch buffer).
    func forward(out: FloatPtr, input x0: UnsafePointer<Float>, batch B: Int, context: PassContext, scratch: Arena) {
        indices(batch: B)
        let N = H * W, R = B * T * N
        var x1: UnsafePointer<Float> = x0
        if let tAdapter, let temporal, let temporalTable {
            // x1 is not kept: backward rebuilds it from x0 and the T_Adapter's kept hidden values.
            let section = scratch.mark()
            defer { scratch.rewind(to: section) }
            // Only the frozen qkv reads norm1's output: in a bf16 model it is written and gathered in
            // bf16, the operand the product reads.
            let u = scratch.buffer("t.u", R * C)
            var ut: UnsafePointer<Float>?, ut16: UnsafePointer<UInt16>?
            if attn.readsOnlyRoundedInput {
                let u16 = scratch.bf16Buffer("t.u16", R * C), g16 = scratch.bf16Buffer("t.ut16", R * C)
                norm1.forward(roundedOutput: u16, x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R)
                temporalIndex.withUnsafeBufferPointer { gatherRows(out: g16, input: u16, index: $0.baseAddress!, rows: R, width: C) }
                ut16 = UnsafePointer(g16)
            } else {
                let g = scratch.buffer("t.ut", R * C)
                norm1.forward(u, x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R)
                temporalIndex.withUnsafeBufferPointer { gatherRows(out: g, input: u, index: $0.baseAddress!, rows: R, width: C) }
                ut = UnsafePointer(g)
            }
            let tOut = scratch.buffer("t.out", R * C), h = kept.buffer("t.ad.h", R * tAdapter.hidden)
            if let fold = temporalFold {
                // proj folded into T_Adapter's fc1: the attention's output is what backward reads (in
                // bf16 for a bf16 model, as the folded product reads it; u is free until the scatter).
                let a = fold.inBF16 ? u : kept.buffer("t.a", R * C)
                attn.forward(nil, ut, xBF16: ut16, table: temporalTable, geometry: temporal, kept: attn.kept(kept, "t", rows: R, length: temporal.tokens),
                             rows: R, scratch: scratch, attention: a)
                let a16 = fold.inBF16 ? kept.bf16Buffer("t.fold.a16", R * C) : nil
                if let a16 { toBF16(a16, a, count: R * C) }
                let w = kept.buffer("t.fold.w", fold.outFeatures * fold.inFeatures), b = kept.buffer("t.fold.b", fold.outFeatures)
                fold.fold(weight: w, bias: b)
                fold.forward(h, fold.inBF16 ? nil : UnsafePointer(a), aBF16: a16.map { UnsafePointer($0) }, weight: w, bias: b, rows: R)
                tAdapter.output(tOut, h: h, scratch: scratch, rows: R)
            } else {
                let o = kept.buffer("t.o", R * C)
                attn.forward(o, ut, xBF16: ut16, table: temporalTable, geometry: temporal, kept: attn.kept(kept, "t", rows: R, length: temporal.tokens),
                             rows: R, scratch: scratch)
                tAdapter.forward(tOut, o, h: h, scratch: scratch, rows: R)
            }
            temporalIndex.withUnsafeBufferPointer { scatterRows(out: u, input: tOut, index: $0.baseAddress!, rows: R, width: C) }
            // DropPath on '(b n) t c': one decision per (sample, position).
            temporalScales = rowScales(B, context, site: 1, groups: B * N, groupOf: { r in (r / (self.T * N)) * N + r % N }, key: { g in (g / N, g % N) })
            addRowScaled(temporalScales, out: out, base: x0, u, rows: R, cols: C)
            x1 = UnsafePointer(out)
        }

        // Spatial (shifted, padded) windows; x2 = x1 + attention branch, in `out`. Rw window rows ≥ R.
        // x2 is not kept: norm2's backward reads its x̂ instead (one [R, C] tensor for both x2 and norm2's output).
        let x2 = out, Rw = spatialIndex.count
        var section = scratch.mark()
        do {
            let o = sAdapter2 != nil ? kept.buffer("s.o", Rw * C) : scratch.buffer("s.o", Rw * C)
            let attnKept = attn.kept(kept, "s", rows: Rw, length: spatial.tokens)
            if attn.readsOnlyRoundedInput {
                // Only the frozen bf16 qkv reads norm1's output: written, gathered and read in bf16.
                let inputs = scratch.mark()
                let h16 = scratch.bf16Buffer("s.h16", R * C), hw16 = scratch.bf16Buffer("s.hw16", Rw * C)
                norm1.forward(roundedOutput: h16, x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R)
                spatialIndex.withUnsafeBufferPointer { gatherRows(out: hw16, input: h16, index: $0.baseAddress!, rows: Rw, width: C) }
                attn.forward(o, nil, xBF16: hw16, table: spatialTable, geometry: spatial, kept: attnKept, rows: Rw, scratch: scratch)
                scratch.rewind(to: inputs)
            } else {
                let inputs = scratch.mark()
                let h = scratch.buffer("s.h", R * C), hw = scratch.buffer("s.hw", Rw * C)
                norm1.forward(h, x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R)
                spatialIndex.withUnsafeBufferPointer { gatherRows(out: hw, input: h, index: $0.baseAddress!, rows: Rw, width: C) }
                attn.forward(o, hw, table: spatialTable, geometry: spatial, kept: attnKept, rows: Rw, scratch: scratch)
                scratch.rewind(to: inputs)
            }
            let h1 = scratch.buffer("s.h", R * C)
            var branch: UnsafePointer<Float> = UnsafePointer(o)
            if let sAdapter2 {
                let hw = scratch.buffer("s.hw", Rw * C)
                sAdapter2.forward(hw, o, h: kept.buffer("s.ad2.h", Rw * sAdapter2.hidden), scratch: scratch, rows: Rw)
                branch = UnsafePointer(hw)
            }
            spatialInverse.withUnsafeBufferPointer { gatherRows(out: h1, input: branch, index: $0.baseAddress!, rows: R, width: C) }
            // videoswin: DropPath per sample; swin2d: none on this branch (commented out officially).
            spatialScales = aim ? [] : rowScales(B, context, site: 2, groups: B, groupOf: { r in r / (self.T * N) }, key: { ($0, 0) })
            if x1 != UnsafePointer(x2) { addRowScaled(spatialScales, out: x2, base: x1, h1, rows: R, cols: C) }
            else { applyRowScales(spatialScales, out: x2, h1, rows: R, cols: C, accumulate: true) }
        }
        scratch.rewind(to: section)

        // MLP (and swin2d's scaled S_Adapter beside it).
        section = scratch.mark()
        defer { scratch.rewind(to: section) }
        // Where only bf16 products read norm2's output (a frozen bf16 fc1, and the S_Adapter's bf16
        // fc1), it is written in bf16 alone; backward rebuilds it from x̂ either way.
        let onlyRounded = aim && mlp.keepsPreInBF16 && !mlp.fc1.needsInput && (sAdapter?.keepsInputInBF16 ?? true)
        var xn: UnsafeMutablePointer<Float>?, xn16: UnsafePointer<UInt16>?
        if onlyRounded {
            let r = scratch.bf16Buffer("j.xn16", R * C)
            norm2.forward(roundedOutput: r, x2, mean: nil, rstd: kept.buffer("j.rstd", R), normalized: kept.buffer("j.xhat", R * C), rows: R)
            xn16 = UnsafePointer(r)
        } else {
            xn = scratch.buffer("j.xn", R * C)
            norm2.forward(xn!, x2, mean: nil, rstd: kept.buffer("j.rstd", R), normalized: kept.buffer("j.xhat", R * C), rows: R)
        }
        let xnIn = xn.map { UnsafePointer($0) }
        if aim {
            mlp.forward(out, xnIn, kept: kept, scratch: scratch, rows: R, accumulate: true, roundedInput: xn16)
            guard let sAdapter else { mlpScales = []; return }
            // DropPath on '(b t) n c': one decision per frame.
            let s = rowScales(B, context, site: 3, groups: B * T, groupOf: { r in r / N }, key: { f in (f / self.T, f % self.T) })
            mlpScales = s.isEmpty ? [Float](repeating: 0.5, count: R) : s.map { $0 * 0.5 }
            if s.isEmpty && sAdapter.scalesInside {
                // Without drop-path, 0.5 · S_Adapter goes straight into `out` from its fc2 (no [R, C] temporary).
                sAdapter.forward(out, xnIn, h: kept.buffer("j.ad.h", R * sAdapter.hidden), scratch: scratch, rows: R, accumulate: true, scale: 0.5,
                                 roundedInput: xn16)
            } else {
                let m = scratch.buffer("j.m", R * C)
                sAdapter.forward(m, xnIn, h: kept.buffer("j.ad.h", R * sAdapter.hidden), scratch: scratch, rows: R, roundedInput: xn16)
                scaleRows(out: out, input: m, rowScales: mlpScales, rows: R, cols: C, accumulate: true)
            }
        } else {
            let m = scratch.buffer("j.m", R * C)
            mlp.forward(m, xnIn, kept: kept, scratch: scratch, rows: R, accumulate: false)
            mlpScales = rowScales(B, context, site: 3, groups: B, groupOf: { r in r / (self.T * N) }, key: { ($0, 0) })
            applyRowScales(mlpScales, out: out, m, rows: R, cols: C, accumulate: true)
        }
    }

    /// The projection weight the fold reads in fp32, where there is a fold.
    var foldedProjectionWeight: Parameter? { temporalFold?.proj.weight }

    /// The temporal pass's proj folded into T_Adapter's fc1 (`ProjectionFold`), where that applies:
    /// nothing but fc1 reads proj's output (T_Adapter has no skip), proj frozen.
    private var temporalFold: ProjectionFold? {
        guard let tAdapter, !tAdapter.skip, ProjectionFold.applies(proj: attn.proj, fc1: tAdapter.fc1) else { return nil }
        return ProjectionFold(proj: attn.proj, fc1: tAdapter.fc1)
    }

    /// Whether the temporal pass has a trainable parameter besides its T_Adapter (the frozen norm1,
    /// qkv, proj and temporal table it reuses never do under the official freezing rule).
    private var temporalPassTunable: Bool {
        (norm1.parameters + attn.parameters + (temporalTable.map { [$0] } ?? [])).contains(where: \.tunable)
    }

    /// dInput receives the gradient of the block input (overwritten). `inputGradient` false: nothing
    /// before the block trains (stage 1's first block behind a frozen patch embedding), so dInput is
    /// left unspecified and the temporal pass stops at its T_Adapter's weight gradients (why: its
    /// frozen qkv/proj input gradients and attention backward fed only dInput; PyTorch's autograd
    /// skips them too).
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, input x0: UnsafePointer<Float>, batch B: Int, scratch: Arena,
                  inputGradient: Bool = true) {
        let N = H * W, R = B * T * N
        let xhat2 = kept.buffer("j.xhat", R * C)

        // MLP branch; norm2's backward adds dOut (d x2 through the residual) into dx. norm2's output
        // is recomputed from x̂ (same bits) when a weight gradient reads it.
        var section = scratch.mark()
        let xn: FloatPtr? = (mlp.fc1.needsInput || sAdapter != nil) ? scratch.buffer("j.xn", R * C) : nil
        if let xn { norm2.output(xn, normalized: xhat2, rows: R) }
        let dxn = scratch.buffer("j.dxn", R * C)
        if aim {
            mlp.backward(dInput: dxn, dOut: dOut, x: mlp.fc1.needsInput ? xn : nil, kept: kept, scratch: scratch, rows: R, accumulateInput: false)
            if let sAdapter, let xn {
                let dm = scratch.buffer("j.dm", R * C)
                scaleRows(out: dm, input: dOut, rowScales: mlpScales, rows: R, cols: C)
                sAdapter.backward(dInput: dxn, dOut: dm, x: xn, h: kept.buffer("j.ad.h", R * sAdapter.hidden), scratch: scratch, rows: R, accumulateInput: true)
            }
        } else {
            let dm = scratch.buffer("j.dm", R * C)
            applyRowScales(mlpScales, out: dm, dOut, rows: R, cols: C)
            mlp.backward(dInput: dxn, dOut: dm, x: mlp.fc1.needsInput ? xn : nil, kept: kept, scratch: scratch, rows: R, accumulateInput: false)
        }
        norm2.backward(dInput: dx, dOut: dxn, normalized: xhat2, rstd: kept.buffer("j.rstd", R), rows: R, accumulateInput: false, addend: dOut)
        scratch.rewind(to: section)

        // x1 = x0 + the temporal branch again (same bits as the forward's), for norm1's backward.
        var x1: UnsafePointer<Float> = x0
        if let tAdapter {
            let x1m = scratch.buffer("x1", R * C)
            let rebuild = scratch.mark()
            let tOut = scratch.buffer("t.out", R * C), u = scratch.buffer("t.u", R * C)
            tAdapter.output(tOut, h: kept.buffer("t.ad.h", R * tAdapter.hidden), scratch: scratch, rows: R)
            temporalIndex.withUnsafeBufferPointer { scatterRows(out: u, input: tOut, index: $0.baseAddress!, rows: R, width: C) }
            addRowScaled(temporalScales, out: x1m, base: x0, u, rows: R, cols: C)
            scratch.rewind(to: rebuild)
            x1 = UnsafePointer(x1m)
        }

        // Window attention branch: dx holds d x2 = d x1 through the residual. The crop's gradient
        // zero-pads (padding window rows are zero rows of the gather); the pad's gradient crops (the
        // inverse gather drops the padding rows of dhw).
        section = scratch.mark()
        do {
            let Rw = spatialIndex.count
            let db = scratch.buffer("s.db", max(R, Rw) * C), dw = scratch.buffer("s.dw", Rw * C)
            // Without drop-path the windows are gathered from dx itself (no scaled copy).
            var dBranch: UnsafePointer<Float> = UnsafePointer(dx)
            if !spatialScales.isEmpty { applyRowScales(spatialScales, out: db, dx, rows: R, cols: C); dBranch = UnsafePointer(db) }
            spatialIndex.withUnsafeBufferPointer { gatherRows(out: dw, input: dBranch, index: $0.baseAddress!, rows: Rw, width: C) }
            var dO: UnsafePointer<Float> = UnsafePointer(dw)
            if let sAdapter2 {
                sAdapter2.backward(dInput: db, dOut: dw, x: kept.buffer("s.o", Rw * C), h: kept.buffer("s.ad2.h", Rw * sAdapter2.hidden),
                                   scratch: scratch, rows: Rw, accumulateInput: false)
                dO = UnsafePointer(db)
            }
            // dw is dead once the adapter (or proj, inside attn.backward) has read it, db once proj has:
            // they take the window-order input gradient and its inverse gather (two [R, C] fewer at the peak).
            let dhw = dw
            attn.backward(dInput: dhw, dOut: dO, table: spatialTable, geometry: spatial, kept: attn.kept(kept, "s", rows: Rw, length: spatial.tokens),
                          rows: Rw, scratch: scratch)
            let dh = db
            spatialInverse.withUnsafeBufferPointer { gatherRows(out: dh, input: dhw, index: $0.baseAddress!, rows: R, width: C) }
            norm1.backward(dInput: dx, dOut: dh, input: x1, mean: kept.buffer("s.mean", R), rstd: kept.buffer("s.rstd", R), rows: R, accumulateInput: true)
        }
        scratch.rewind(to: section)

        // Temporal branch: dx holds d x1 = d x0 through the residual.
        guard let tAdapter, let temporal, let temporalTable else { return }
        section = scratch.mark()
        defer { scratch.rewind(to: section) }
        let db = scratch.buffer("t.db", R * C), dt = scratch.buffer("t.dt", R * C)
        var dBranch: UnsafePointer<Float> = UnsafePointer(dx)
        if !temporalScales.isEmpty { applyRowScales(temporalScales, out: db, dx, rows: R, cols: C); dBranch = UnsafePointer(db) }
        temporalIndex.withUnsafeBufferPointer { gatherRows(out: dt, input: dBranch, index: $0.baseAddress!, rows: R, width: C) }
        let adapterOnly = !inputGradient && !temporalPassTunable
        // db: the gradient of T_Adapter's input (proj's output), or with the fold of proj's input.
        let h = kept.buffer("t.ad.h", R * tAdapter.hidden), fold = temporalFold
        if let fold {
            let dh = tAdapter.hiddenGradient(dOut: dt, h: h, scratch: scratch, rows: R)
            fold.backward(dInput: adapterOnly ? nil : db, dh: dh, a: fold.inBF16 ? nil : UnsafePointer(kept.buffer("t.a", R * C)),
                          aBF16: fold.inBF16 ? UnsafePointer(kept.bf16Buffer("t.fold.a16", R * C)) : nil,
                          weight: kept.buffer("t.fold.w", fold.outFeatures * fold.inFeatures), rows: R, scratch: scratch)
        } else {
            tAdapter.backward(dInput: adapterOnly ? nil : db, dOut: dt, x: kept.buffer("t.o", R * C), h: h,
                              scratch: scratch, rows: R, accumulateInput: false)
        }
        if adapterOnly { return }
        attn.backward(dInput: dt, dOut: db, table: temporalTable, geometry: temporal, kept: attn.kept(kept, "t", rows: R, length: temporal.tokens),
                      rows: R, scratch: scratch, projection: fold == nil)
        temporalIndex.withUnsafeBufferPointer { scatterRows(out: db, input: dt, index: $0.baseAddress!, rows: R, width: C) }
        norm1.backward(dInput: dx, dOut: db, input: x0, mean: kept.buffer("t.mean", R), rstd: kept.buffer("t.rstd", R), rows: R, accumulateInput: true)
    }

    /// Multiply-accumulates of one view (fvcore convention: linears, the two attention products,
    /// 5 per LayerNorm element).
    func flops() -> Int {
        let R = T * H * W, Rw = (aim ? T : 1) * spatial.windowRowsPerSample
        // The window attention runs on the padded rows (as fvcore counts the official padded tensor).
        var f = attn.macs(rows: Rw, length: spatial.tokens) + mlp.macs(rows: R) + 2 * 5 * R * C
        if let temporal, let tAdapter { f += 5 * R * C + attn.macs(rows: R, length: temporal.tokens) + tAdapter.macs(rows: R) }
        for a in [sAdapter, sAdapter2].compactMap({ $0 }) { f += a.macs(rows: R) }
        return f
    }
}
