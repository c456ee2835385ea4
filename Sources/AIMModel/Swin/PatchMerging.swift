import AIMTensor

/// Swin's PatchMerging: per frame, the 2×2 neighbours x0 = (2i, 2j), x1 = (2i+1, 2j),
/// x2 = (2i, 2j+1), x3 = (2i+1, 2j+1) concatenated (4C), LayerNorm, then `reduction`
/// (Linear 4C → 2C, no bias). The concatenation is a row gather (each 4C row is four C rows).
/// An odd grid is zero-padded at its end to even first (Video Swin's `F.pad`; swin2d configs have
/// even grids, its official PatchMerging asserts them): the padding sub-rows gather zeros.
struct PatchMergingLayer {
    let reduction: LinearLayer
    let norm: LayerNormLayer
    let H: Int, W: Int, C: Int
    /// The merged grid (H and W halved, rounded up).
    var H2: Int { (H + 1) / 2 }
    var W2: Int { (W + 1) / 2 }

    /// Names of this layer's kept buffers (one arena holds every merging's).
    let key: String

    init(_ store: ParameterStore, _ prefix: String, resolution: Int, channels: Int) {
        key = prefix
        H = resolution; W = resolution; C = channels
        reduction = LinearLayer(store, prefix + "reduction", in: 4 * C, out: 2 * C, bias: false)
        norm = LayerNormLayer(store, prefix + "norm", channels: 4 * C, eps: 1e-5)
    }

    /// Input row of every C-wide sub-row of the merged tensor, for `frames` frames (−1: padding).
    func index(frames: Int) -> [Int32] {
        var out = [Int32](repeating: -1, count: frames * H2 * W2 * 4)
        let offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]
        var r = 0
        for f in 0..<frames { for i in 0..<H2 { for j in 0..<W2 { for (dh, dw) in offsets {
            let h = 2 * i + dh, w = 2 * j + dw
            if h < H && w < W { out[r] = Int32((f * H + h) * W + w) }
            r += 1
        } } } }
        return out
    }

    /// out [frames·H2·W2, 2C] from x [frames·H·W, C]; keeps the gathered input and LN statistics.
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>, index: [Int32], frames: Int, kept: Arena, scratch: Arena) {
        let M = frames * H2 * W2, R = 4 * M
        let g = kept.buffer(key + "merge.g", R * C)
        index.withUnsafeBufferPointer { gatherRows(out: g, input: x, index: $0.baseAddress!, rows: R, width: C) }
        let z = reduction.needsInput ? kept.buffer(key + "merge.z", M * 4 * C) : scratch.buffer("merge.z", M * 4 * C)
        norm.forward(z, g, mean: kept.buffer(key + "merge.mean", M), rstd: kept.buffer(key + "merge.rstd", M), rows: M)
        reduction.forward(out, z, rows: M)
    }

    /// dx [frames·H·W, C] (overwritten) from dOut [M, 2C]; the padding's gradient is dropped.
    func backward(dInput dx: FloatPtr, dOut: UnsafePointer<Float>, index: [Int32], frames: Int, kept: Arena, scratch: Arena) {
        let M = frames * H2 * W2, R = 4 * M
        let dz = scratch.buffer("merge.dz", M * 4 * C), dg = scratch.buffer("merge.dg", R * C)
        reduction.backward(dInput: dz, dOut: dOut, input: reduction.needsInput ? UnsafePointer(kept.buffer(key + "merge.z", M * 4 * C)) : nil, rows: M)
        norm.backward(dInput: dg, dOut: dz, input: kept.buffer(key + "merge.g", R * C), mean: kept.buffer(key + "merge.mean", M),
                      rstd: kept.buffer(key + "merge.rstd", M), rows: M, accumulateInput: false)
        index.withUnsafeBufferPointer { scatterRows(out: dx, input: dg, index: $0.baseAddress!, rows: R, width: C) }
    }

    var parameters: [Parameter] { reduction.parameters + norm.parameters }
    func flops(frames: Int) -> Int { let M = frames * H2 * W2; return reduction.macs(rows: M) + 5 * M * 4 * C }
}
