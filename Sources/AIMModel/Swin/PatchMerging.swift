import AIMTensor

/// Swin's PatchMerging: per frame, the 2×2 neighbours x0 = (2i, 2j), x1 = (2i+1, 2j),
/// x2 = (2i, 2j+1), x3 = (2i+1, 2j+1) concatenated (4C), LayerNorm, then `reduction`
/// (Linear 4C → 2C, no bias). The concatenation is a row gather (each 4C row is four C rows).
struct PatchMergingLayer {
    let reduction: LinearLayer
    let norm: LayerNormLayer
    let H: Int, W: Int, C: Int

    /// Names of this layer's kept buffers (one arena holds every merging's).
    let key: String

    init(_ store: ParameterStore, _ prefix: String, resolution: Int, channels: Int) {
        key = prefix
        H = resolution; W = resolution; C = channels
        reduction = LinearLayer(store, prefix + "reduction", in: 4 * C, out: 2 * C, bias: false)
        norm = LayerNormLayer(store, prefix + "norm", channels: 4 * C, eps: 1e-5)
    }

    /// Input row of every C-wide sub-row of the merged tensor, for `frames` frames.
    func index(frames: Int) -> [Int32] {
        let h2 = H / 2, w2 = W / 2
        var out = [Int32](repeating: 0, count: frames * H * W)
        let offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
        var r = 0
        for f in 0..<frames { for i in 0..<h2 { for j in 0..<w2 { for (dh, dw) in offsets {
            out[r] = Int32((f * H + 2 * i + dh) * W + 2 * j + dw); r += 1
        } } } }
        return out
    }

    /// out [frames·H/2·W/2, 2C] from x [frames·H·W, C]; keeps the gathered input and LN statistics.
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>, index: [Int32], frames: Int, kept: Arena, scratch: Arena) {
        let R = frames * H * W, M = R / 4
        let g = kept.buffer(key + "merge.g", R * C)
        index.withUnsafeBufferPointer { gatherRows(out: g, input: x, index: $0.baseAddress!, rows: R, width: C) }
        let z = reduction.needsInput ? kept.buffer(key + "merge.z", M * 4 * C) : scratch.buffer("merge.z", M * 4 * C)
        norm.forward(z, g, mean: kept.buffer(key + "merge.mean", M), rstd: kept.buffer(key + "merge.rstd", M), rows: M)
        reduction.forward(out, z, rows: M)
    }

    /// dx [frames·H·W, C] (overwritten) from dOut [M, 2C].
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, index: [Int32], frames: Int, kept: Arena, scratch: Arena) {
        let R = frames * H * W, M = R / 4
        let dz = scratch.buffer("merge.dz", M * 4 * C), dg = scratch.buffer("merge.dg", R * C)
        reduction.backward(dInput: dz, dOut: dOut, input: reduction.needsInput ? UnsafePointer(kept.buffer(key + "merge.z", M * 4 * C)) : nil, rows: M)
        norm.backward(dInput: dg, dOut: dz, input: kept.buffer(key + "merge.g", R * C), mean: kept.buffer(key + "merge.mean", M),
                      rstd: kept.buffer(key + "merge.rstd", M), rows: M, accumulateInput: false)
        index.withUnsafeBufferPointer { scatterRows(out: dx, input: dg, index: $0.baseAddress!, rows: R, width: C) }
    }

    var parameters: [Parameter] { reduction.parameters + norm.parameters }
    func flops(frames: Int) -> Int { let M = frames * H * W / 4; return reduction.macs(rows: M) + 5 * M * 4 * C }
}
