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

    /// The activations one call keeps for its backward. The attention probabilities are not among
    /// them: the backward recomputes them (why: at H·L floats per token they were the largest
    /// activation of a Swin block; measured cost of recomputing, 1.24–1.33× the attention kernels).
    struct Kept {
        let qkv: FloatPtr        // [rows, 3D]
        let input: FloatPtr?     // window-order input, when qkv's weight is tunable
        let attnOut: FloatPtr?   // attention output (proj's input), when proj's weight is tunable
    }

    func kept(_ arena: Arena, _ key: String, rows: Int) -> Kept {
        let D = width
        return Kept(qkv: arena.buffer(key + ".qkv", rows * 3 * D),
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

    /// out [rows, D] (window order) from x [rows, D] (window order).
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>, table: Parameter, geometry g: WindowGeometry, kept k: Kept,
                 rows: Int, scratch: Arena) {
        let L = g.tokens, S = rows / L, D = width
        if let input = k.input { input.update(from: x, count: rows * D) }
        qkv.forward(k.qkv, x, rows: rows)
        let a = k.attnOut ?? scratch.buffer("wattn.a", rows * D)
        let workspace = scratch.buffer("wattn.ws", windowAttentionWorkspace(sequences: S, length: L, heads: heads))
        withBiasAndMask(table: table, geometry: g, scratch: scratch) { bias, mask, G in
            StepProfile.measure(.attention) {
                do {
                    try windowAttentionForward(out: a, qkv: k.qkv, probs: nil, bias: bias, mask: mask, maskGroups: G,
                                               sequences: S, length: L, width: D, heads: heads, workspace: workspace)
                } catch { PassFailure.record(error, output: a, count: rows * D) }
            }
        }
        proj.forward(out, a, rows: rows)
    }

    /// dx [rows, D] (overwritten, or += with accumulateInput) from dOut; weight and table gradients accumulate.
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, table: Parameter, geometry g: WindowGeometry, kept k: Kept,
                  rows: Int, scratch: Arena, accumulateInput: Bool = false) {
        let L = g.tokens, S = rows / L, D = width, H = heads
        let dA = scratch.buffer("wattn.dA", rows * D)
        proj.backward(dInput: dA, dOut: dOut, input: k.attnOut.map { UnsafePointer($0) }, rows: rows)
        let dQKV = scratch.buffer("wattn.dQKV", rows * 3 * D)
        let dScores = table.tunable ? scratch.buffer("wattn.dS", S * H * L * L) : nil
        let workspace = scratch.buffer("wattn.ws", windowAttentionWorkspace(sequences: S, length: L, heads: H))
        withBiasAndMask(table: table, geometry: g, scratch: scratch) { bias, mask, G in
            StepProfile.measure(.attention) {
                do {
                    try windowAttentionBackward(dQKV: dQKV, dScores: dScores, dOut: dA, qkv: k.qkv, probs: nil, bias: bias, mask: mask,
                                                maskGroups: G, sequences: S, length: L, width: D, heads: H, workspace: workspace)
                } catch { PassFailure.record(error, output: dQKV, count: rows * 3 * D) }
            }
        }
        if let dScores, let dTable = table.gradData {
            // The bias of one (head, i, j) is shared by every window: its gradient is their sum.
            let dBias = scratch.buffer("wattn.dBias", H * L * L)
            dBias.update(repeating: 0, count: H * L * L)
            sumRows(into: dBias, dScores, S, H * L * L)
            g.relativeIndex.withUnsafeBufferPointer {
                relativePositionBiasBackward(dTable: dTable, dBias: dBias, index: $0.baseAddress!, length: L, heads: H)
            }
        }
        qkv.backward(dInput: dx, dOut: dQKV, input: k.input.map { UnsafePointer($0) }, rows: rows, accumulateInput: accumulateInput)
    }

    var parameters: [Parameter] { qkv.parameters + proj.parameters }
    /// fvcore convention: projections plus the two attention matrix products.
    func macs(rows: Int, length L: Int) -> Int { qkv.macs(rows: rows) + proj.macs(rows: rows) + 2 * rows * L * width }
}
