// Patch embedding: Conv2d(C → D, kernel = stride = p) as im2col + GEMM, output in token order
// (conv → flatten(2) → transpose(1, 2)): out [N, (H/p)·(W/p), D].
// Patches do not overlap, so im2col is a permutation of the input and col2im a plain scatter.

/// Calls `copy(imageOffset, colsOffset)` for every run of p contiguous pixels: the run at
/// `imageOffset` in the image [N, C, H, W] belongs at `colsOffset` in cols [N·P, C·p·p], whose rows
/// are patches in grid order and whose columns are ordered (c, ky, kx) like the flattened PyTorch
/// weight [D, C, p, p]. Parallel over patches; runs never overlap.
private func forEachPatchRun(
    _ N: Int, _ C: Int, _ Hh: Int, _ Ww: Int, _ p: Int, _ copy: (_ image: Int, _ cols: Int) -> Void
) {
    let gw = Ww / p, P = (Hh / p) * gw, K = C * p * p
    Threads.parallelFor(N * P, grain: 16) { rows in
        for r in rows {
            let n = r / P, py = (r % P) / gw, px = r % gw
            for c in 0..<C {
                for ky in 0..<p {
                    copy(((n * C + c) * Hh + py * p + ky) * Ww + px * p, r * K + (c * p + ky) * p)
                }
            }
        }
    }
}

/// im2col: gathers every patch into a row of `cols`.
private func gatherPatches(_ image: UnsafePointer<Float>, into cols: UnsafeMutablePointer<Float>,
                           _ N: Int, _ C: Int, _ Hh: Int, _ Ww: Int, _ p: Int) {
    forEachPatchRun(N, C, Hh, Ww, p) { i, c in (cols + c).update(from: image + i, count: p) }
}

/// col2im for non-overlapping patches: scatters rows of `cols` back (overwriting the image).
private func scatterPatches(_ cols: UnsafePointer<Float>, into image: UnsafeMutablePointer<Float>,
                            _ N: Int, _ C: Int, _ Hh: Int, _ Ww: Int, _ p: Int) {
    forEachPatchRun(N, C, Hh, Ww, p) { i, c in (image + i).update(from: cols + c, count: p) }
}

private func checkPatchSizes(_ name: String, _ N: Int, _ C: Int, _ Hh: Int, _ Ww: Int, _ p: Int, _ D: Int) {
    precondition(N >= 0 && C > 0 && p > 0 && D > 0 && Hh > 0 && Ww > 0,
                 "\(name): bad sizes N=\(N) C=\(C) H=\(Hh) W=\(Ww) p=\(p) D=\(D)")
    precondition(Hh % p == 0 && Ww % p == 0, "\(name): image \(Hh)×\(Ww) is not divisible by patch \(p)")
}

/// input [N, C, H, W], weight [D, C, p, p], bias [D] or nil.
public func patchEmbedForward(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, images N: Int, channels C: Int, height Hh: Int, width Ww: Int,
    patch p: Int, outChannels D: Int
) {
    checkPatchSizes("patchEmbedForward", N, C, Hh, Ww, p, D)
    let M = N * (Hh / p) * (Ww / p), K = C * p * p
    if M == 0 { return }
    withScratch(M * K) { cols in
        gatherPatches(input, into: cols, N, C, Hh, Ww, p)
        linearForward(out: out, input: cols, weight: weight, bias: bias, rows: M, inFeatures: K, outFeatures: D)
    }
}

/// dInput (if given) is overwritten; dWeight / dBias (if given) accumulate.
public func patchEmbedBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
    dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, images N: Int, channels C: Int, height Hh: Int, width Ww: Int,
    patch p: Int, outChannels D: Int
) {
    checkPatchSizes("patchEmbedBackward", N, C, Hh, Ww, p, D)
    let M = N * (Hh / p) * (Ww / p), K = C * p * p
    if M == 0 { return }
    withScratch(M * K) { cols in
        if dWeight != nil {
            gatherPatches(input, into: cols, N, C, Hh, Ww, p)
        }
        linearBackward(dInput: nil, dWeight: dWeight, dBias: dBias, dOut: dOut, input: cols, weight: weight,
                       rows: M, inFeatures: K, outFeatures: D)
        if let dInput {
            linearBackward(dInput: cols, dWeight: nil, dBias: nil, dOut: dOut, input: nil, weight: weight,
                           rows: M, inFeatures: K, outFeatures: D)
            scatterPatches(cols, into: dInput, N, C, Hh, Ww, p)
        }
    }
}
