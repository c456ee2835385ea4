import AIMTensor

/// Swin's window attention on rows already in window order: qkv → softmax(scale·QKᵀ + relative
/// bias [+ shift mask]) · V → proj. The bias table is a parameter ([table rows, heads]); which one
/// (the spatial `relative_position_bias_table` or swin2d's `temporal_position_bias_table`) and the
/// window geometry are chosen per call, as the official WindowAttention(temporal=) does.
struct SwinWindowAttention {
    let qkv: LinearLayer
    let proj: LinearLayer
    let heads: Int
    var width: Int { proj.outFeatures }

    /// Whether a bf16 model's windows of `length` tokens run their products in bf16 (as autocast
    /// runs the official module's matmuls); the short temporal windows stay on the fused fp32 kernels.
    func inBF16(_ length: Int) -> Bool {
        qkv.weight.reducedPrecision && windowAttentionRunsInBF16(length: length, width: width, heads: heads)
    }

    /// Whether only a bf16 product reads the input (a frozen bf16 qkv): the caller may then hand it
    /// over in bf16 (`xBF16`), the operand the product reads (why: LayerNorm's fp32 output gathered
    /// into windows and rounded inside the product cost two [rows, C] fp32 passes more).
    var readsOnlyRoundedInput: Bool { qkv.weight.reducedPrecision && !qkv.needsInput }

    /// The activations one call keeps for its backward. The attention probabilities are not among
    /// them: the backward recomputes them (why: at H·L floats per token they were the largest
    /// activation of a Swin block; measured cost of recomputing, 1.24–1.33× the attention kernels).
    struct Kept {
        /// q | k | v [rows, 3D]: in bf16 where the windows run in bf16 (`inBF16`), which reads
        /// nothing else (half the bytes, and no rounding pass in forward or backward), else fp32.
        let qkv: QKV
        let input: FloatPtr?     // window-order input, when qkv's weight is tunable
        let attnOut: FloatPtr?   // attention output (proj's input), when proj's weight is tunable

        enum QKV {
            case fp32(FloatPtr)
            case bf16(UnsafeMutablePointer<UInt16>)
            /// The rows from `row` on, as the window attention reads them.
            func rows(from row: Int, width D: Int) -> AttentionQKVRows {
                switch self {
                case .fp32(let q): return .fp32(q + row * 3 * D)
                case .bf16(let q16): return .bf16(q16 + row * 3 * D)
                }
            }
        }
    }

    /// What one call over windows of `length` tokens keeps, under `key` in `arena`.
    func kept(_ arena: Arena, _ key: String, rows: Int, length L: Int) -> Kept {
        let D = width
        return Kept(qkv: inBF16(L) ? .bf16(arena.bf16Buffer(key + ".qkv16", rows * 3 * D)) : .fp32(arena.buffer(key + ".qkv", rows * 3 * D)),
                    input: qkv.needsInput ? arena.buffer(key + ".in", rows * D) : nil,
                    attnOut: proj.needsInput ? arena.buffer(key + ".a", rows * D) : nil)
    }

    /// Runs `body` with the relative-position bias [H, L, L] gathered from `table` and the shift mask
    /// [G, L, L] of the geometry (nil without shift; G = windows per sample).
    private func withBiasAndMask(table: Parameter, geometry g: WindowGeometry, scratch: Arena,
                                 _ body: (UnsafePointer<Float>, UnsafePointer<Float>?, Int) -> Void) {
        let L = g.tokens
        let bias = scratch.buffer("wattn.bias", heads * L * L)
        g.relativeIndex.withUnsafeBufferPointer {
            relativePositionBiasForward(out: bias, table: table.data, index: $0.baseAddress!, length: L, heads: heads)
        }
        guard let mask = g.mask else { return body(bias, nil, 1) }
        mask.withUnsafeBufferPointer { body(bias, $0.baseAddress!, g.windowsPerSample) }
    }

    /// Windows per pass of the projections and attention: the [rows, 3D] query/key/value gradient
    /// and the [rows, D] attention output of a pass hold at most TemporaryChunking.maxFloats, not the
    /// whole input's (why: together they were the largest temporaries of a Swin block's backward).
    private func windowChunks(_ S: Int, length L: Int) -> [Range<Int>] {
        let n = max(1, min(S, TemporaryChunking.maxFloats / (L * 4 * width)))
        return stride(from: 0, to: max(S, 1), by: n).map { $0..<min(S, $0 + n) }
    }

    /// out [rows, D] (window order) from x [rows, D] (window order), or from `xBF16`, x in bf16,
    /// where `readsOnlyRoundedInput`. `out` nil: the call stops before proj and leaves the attention
    /// output [rows, D] in `attention` (for `ProjectionFold`).
    func forward(_ out: FloatPtr?, _ x: UnsafePointer<Float>?, xBF16: UnsafePointer<UInt16>? = nil, table: Parameter,
                 geometry g: WindowGeometry, kept k: Kept, rows: Int, scratch: Arena, attention: FloatPtr? = nil) {
        precondition(out != nil || attention != nil, "SwinWindowAttention.forward without proj needs a buffer for the attention output")
        precondition((x != nil) != (xBF16 != nil) && (xBF16 == nil || readsOnlyRoundedInput),
                     "SwinWindowAttention.forward: one input, bf16 only for a frozen bf16 qkv")
        let L = g.tokens, S = rows / L, D = width
        if let input = k.input { input.update(from: x!, count: rows * D) }
        func fp32QKV(_ q: FloatPtr) {
            if let xBF16 { qkv.forward(q, roundedInput: xBF16, rows: rows) } else { qkv.forward(q, x!, rows: rows) }
        }
        switch k.qkv {
        case .fp32(let q): fp32QKV(q)
        case .bf16(let q16):
            if !qkv.forward(roundedOutput: q16, x, roundedInput: xBF16, rows: rows) {
                // No bf16-output kernel for this product here (AMX tiles): the fp32 output, rounded (the same bits).
                let mark = scratch.mark()
                defer { scratch.rewind(to: mark) }
                let q = scratch.buffer("wattn.qkv32", rows * 3 * D)
                fp32QKV(q)
                StepProfile.measure(.frozenGEMM) { toBF16(q16, q, count: rows * 3 * D) }
            }
        }
        let chunks = windowChunks(S, length: L)
        let full = out == nil ? attention : k.attnOut
        let a = full ?? scratch.buffer("wattn.a", chunks[0].count * L * D)
        let workspace = scratch.buffer("wattn.ws", windowAttentionWorkspace(sequences: chunks[0].count, length: L, heads: heads))
        withBiasAndMask(table: table, geometry: g, scratch: scratch) { bias, mask, G in
            for c in chunks {
                let r0 = c.lowerBound * L, n = c.count * L
                let ac = full.map { $0 + r0 * D } ?? a
                StepProfile.measure(.attention) {
                    do {
                        switch k.qkv {
                        case .bf16:
                            try windowAttentionForwardBF16(out: ac, qkvRows: k.qkv.rows(from: r0, width: D), bias: bias, mask: mask, maskGroups: G,
                                                           firstWindow: c.lowerBound, sequences: c.count, length: L, width: D, heads: heads,
                                                           workspace: workspace)
                        case .fp32(let q):
                            try windowAttentionForward(out: ac, qkv: q + r0 * 3 * D, probs: nil, bias: bias, mask: mask, maskGroups: G,
                                                       firstWindow: c.lowerBound, sequences: c.count, length: L, width: D, heads: heads,
                                                       workspace: workspace)
                        }
                    } catch { PassFailure.record(error, output: ac, count: n * D) }
                }
                if let out { proj.forward(out + r0 * D, ac, rows: n) }
            }
        }
    }

    /// dx [rows, D] (overwritten, or += with accumulateInput) from dOut; weight and table gradients accumulate.
    /// `projection` false: dOut is the gradient of the attention output (a forward without proj).
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, table: Parameter, geometry g: WindowGeometry, kept k: Kept,
                  rows: Int, scratch: Arena, accumulateInput: Bool = false, projection: Bool = true) {
        let L = g.tokens, S = rows / L, D = width, H = heads
        let chunks = windowChunks(S, length: L), most = chunks[0].count
        let dA = projection ? scratch.buffer("wattn.dA", most * L * D) : nil
        let dQKV = scratch.buffer("wattn.dQKV", most * L * 3 * D)
        let dScores = table.tunable ? scratch.buffer("wattn.dS", most * H * L * L) : nil
        let dBias = table.tunable ? scratch.buffer("wattn.dBias", H * L * L) : nil
        dBias?.update(repeating: 0, count: H * L * L)
        let workspace = scratch.buffer("wattn.ws", windowAttentionWorkspace(sequences: most, length: L, heads: H))
        withBiasAndMask(table: table, geometry: g, scratch: scratch) { bias, mask, G in
            for c in chunks {
                let r0 = c.lowerBound * L, n = c.count * L
                if let dA { proj.backward(dInput: dA, dOut: dOut + r0 * D, input: k.attnOut.map { UnsafePointer($0 + r0 * D) }, rows: n) }
                let dAttention = dA.map { UnsafePointer($0) } ?? dOut + r0 * D
                StepProfile.measure(.attention) {
                    do {
                        switch k.qkv {
                        case .bf16:
                            try windowAttentionBackwardBF16(dQKV: dQKV, dScores: dScores, dOut: dAttention, qkvRows: k.qkv.rows(from: r0, width: D),
                                                            bias: bias, mask: mask, maskGroups: G, firstWindow: c.lowerBound, sequences: c.count,
                                                            length: L, width: D, heads: H, workspace: workspace)
                        case .fp32(let q):
                            try windowAttentionBackward(dQKV: dQKV, dScores: dScores, dOut: dAttention, qkv: q + r0 * 3 * D, probs: nil,
                                                        bias: bias, mask: mask, maskGroups: G, firstWindow: c.lowerBound, sequences: c.count,
                                                        length: L, width: D, heads: H, workspace: workspace)
                        }
                    } catch { PassFailure.record(error, output: dQKV, count: n * 3 * D) }
                }
                // The bias of one (head, i, j) is shared by every window: its gradient is their sum.
                if let dScores, let dBias { sumRows(into: dBias, dScores, c.count, H * L * L) }
                qkv.backward(dInput: dx + r0 * D, dOut: dQKV, input: k.input.map { UnsafePointer($0 + r0 * D) }, rows: n,
                             accumulateInput: accumulateInput)
            }
        }
        if let dBias, let dTable = table.gradData {
            g.relativeIndex.withUnsafeBufferPointer {
                relativePositionBiasBackward(dTable: dTable, dBias: dBias, index: $0.baseAddress!, length: L, heads: H)
            }
        }
    }

    var parameters: [Parameter] { qkv.parameters + proj.parameters }
    /// fvcore convention: projections plus the two attention matrix products.
    func macs(rows: Int, length L: Int) -> Int { qkv.macs(rows: rows) + proj.macs(rows: rows) + 2 * rows * L * width }
}
