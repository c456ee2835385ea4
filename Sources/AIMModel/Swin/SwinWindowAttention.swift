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

    /// The activations one call keeps for its backward.
    struct Kept {
        let qkv: FloatPtr        // [rows, 3D]
        let probs: FloatPtr      // [S, H, L, L]
        let input: FloatPtr?     // window-order input, when qkv's weight is tunable
        let attnOut: FloatPtr?   // attention output (proj's input), when proj's weight is tunable
    }

    func kept(_ arena: Arena, _ key: String, rows: Int, geometry g: WindowGeometry) -> Kept {
        let S = rows / g.tokens, L = g.tokens, D = width
        return Kept(qkv: arena.buffer(key + ".qkv", rows * 3 * D), probs: arena.buffer(key + ".probs", S * heads * L * L),
                    input: qkv.needsInput ? arena.buffer(key + ".in", rows * D) : nil,
                    attnOut: proj.needsInput ? arena.buffer(key + ".a", rows * D) : nil)
    }

    /// The additive bias [G, H, L, L] of one forward: the relative-position bias from `table`, plus the
    /// mask of window g when the windows are shifted (G = windows per sample, else 1).
    private func bias(_ out: FloatPtr, table: Parameter, geometry g: WindowGeometry) -> Int {
        let L = g.tokens, H = heads, LL = L * L
        g.relativeIndex.withUnsafeBufferPointer {
            relativePositionBiasForward(out: out, table: table.data, index: $0.baseAddress!, length: L, heads: H)
        }
        guard let mask = g.mask else { return 1 }
        let G = g.windowsPerSample
        for w in stride(from: G - 1, through: 0, by: -1) { for h in 0..<H {
            let dst = out + (w * H + h) * LL, src = out + h * LL
            for e in 0..<LL { dst[e] = src[e] + mask[w * LL + e] }
        } }
        return G
    }

    /// out [rows, D] (window order) from x [rows, D] (window order).
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>, table: Parameter, geometry g: WindowGeometry, kept k: Kept,
                 rows: Int, scratch: Arena) {
        let L = g.tokens, S = rows / L, D = width
        if let input = k.input { input.update(from: x, count: rows * D) }
        qkv.forward(k.qkv, x, rows: rows)
        let biasBuf = scratch.buffer("wattn.bias", (g.mask != nil ? g.windowsPerSample : 1) * heads * L * L)
        let G = bias(biasBuf, table: table, geometry: g)
        let a = k.attnOut ?? scratch.buffer("wattn.a", rows * D)
        StepProfile.measure(.attention) {
            windowAttentionForward(out: a, qkv: k.qkv, probs: k.probs, bias: biasBuf, biasGroups: G, sequences: S, length: L, width: D, heads: heads)
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
        StepProfile.measure(.attention) {
            windowAttentionBackward(dQKV: dQKV, dScores: dScores, dOut: dA, qkv: k.qkv, probs: k.probs, sequences: S, length: L, width: D, heads: H)
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
