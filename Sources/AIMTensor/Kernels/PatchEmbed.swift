// Patch embedding: Conv2d(C → D, kernel = stride = p) as im2col + GEMM, output in token order
// (conv → flatten(2) → transpose(1, 2)): out [N, (H/p)·(W/p), D].
// Patches do not overlap, so im2col is a permutation of the input and col2im a plain scatter.

/// Copies each p×p×C patch into a row of `cols` [N·P, C·p·p], ordered (c, ky, kx) like the
/// flattened PyTorch weight [D, C, p, p]. With `reverse`, scatters rows back into `image` instead.
private func im2col(
    _ image: UnsafeMutablePointer<Float>, _ cols: UnsafeMutablePointer<Float>, reverse: Bool,
    _ N: Int, _ C: Int, _ Hh: Int, _ Ww: Int, _ p: Int
) {
    let gh = Hh / p, gw = Ww / p, P = gh * gw, K = C * p * p
    Threads.parallelFor(N * P, grain: 16) { rows in
        for r in rows {
            let n = r / P, py = (r % P) / gw, px = r % gw
            let row = cols + r * K
            for c in 0..<C {
                for ky in 0..<p {
                    let src = image + ((n * C + c) * Hh + py * p + ky) * Ww + px * p
                    let dst = row + (c * p + ky) * p
                    if reverse { src.update(from: dst, count: p) } else { dst.update(from: src, count: p) }
                }
            }
        }
    }
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
        im2col(UnsafeMutablePointer(mutating: input), cols, reverse: false, N, C, Hh, Ww, p)
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
            im2col(UnsafeMutablePointer(mutating: input), cols, reverse: false, N, C, Hh, Ww, p)
        }
        linearBackward(dInput: nil, dWeight: dWeight, dBias: dBias, dOut: dOut, input: cols, weight: weight,
                       rows: M, inFeatures: K, outFeatures: D)
        if let dInput {
            linearBackward(dInput: cols, dWeight: nil, dBias: nil, dOut: dOut, input: nil, weight: weight,
                           rows: M, inFeatures: K, outFeatures: D)
            im2col(dInput, cols, reverse: true, N, C, Hh, Ww, p)
        }
    }
}
