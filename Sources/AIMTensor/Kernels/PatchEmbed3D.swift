// Video patch embedding (PatchEmbed3D of Video Swin / SwinTransformer2D_Adapter): Conv3d(C → D,
// kernel = stride = (pt, ph, pw)) as im2col + GEMM. Output rows are tokens in (b, t', h', w')
// order, i.e. rearrange('b c d h w -> (b d) (h w) c'): out [B·T'·H'·W', D].
// Tubes do not overlap, so im2col is a permutation of the input and col2im a plain scatter.

/// Sizes of one 3D patch embedding: video [B, C, T, H, W], patch (pt, ph, pw), D output channels.
public struct Patch3DSizes: Sendable {
    public let B: Int, C: Int, T: Int, H: Int, W: Int, pt: Int, ph: Int, pw: Int, D: Int
    public init(batch: Int, channels: Int, frames: Int, height: Int, width: Int, patch: [Int], outChannels: Int) {
        B = batch; C = channels; T = frames; H = height; W = width; pt = patch[0]; ph = patch[1]; pw = patch[2]; D = outChannels
        precondition(B >= 0 && C > 0 && D > 0 && pt > 0 && ph > 0 && pw > 0 && T % pt == 0 && H % ph == 0 && W % pw == 0,
                     "Patch3DSizes: video \(T)×\(H)×\(W) is not divisible by patch \(patch)")
    }
    public var tokens: Int { B * (T / pt) * (H / ph) * (W / pw) }
    /// Columns of one token: the flattened Conv3d weight [D, C, pt, ph, pw] row length.
    public var columns: Int { C * pt * ph * pw }
}

/// Calls `copy(videoOffset, colsOffset)` for every run of pw contiguous pixels, in parallel over tokens.
private func forEachTubeRun(_ s: Patch3DSizes, _ copy: (_ video: Int, _ cols: Int) -> Void) {
    let gt = s.T / s.pt, gh = s.H / s.ph, gw = s.W / s.pw, K = s.columns
    Threads.parallelFor(s.tokens, grain: 16) { rows in
        for r in rows {
            let b = r / (gt * gh * gw), t = (r / (gh * gw)) % gt, y = (r / gw) % gh, x = r % gw
            for c in 0..<s.C { for kt in 0..<s.pt { for ky in 0..<s.ph {
                let v = (((b * s.C + c) * s.T + t * s.pt + kt) * s.H + y * s.ph + ky) * s.W + x * s.pw
                copy(v, r * K + ((c * s.pt + kt) * s.ph + ky) * s.pw)
            } } }
        }
    }
}

/// out [tokens, D] = im2col(video) · weightᵀ + bias; weight [D, C, pt, ph, pw].
public func patchEmbed3DForward(out: UnsafeMutablePointer<Float>, video: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                bias: UnsafePointer<Float>?, sizes s: Patch3DSizes) {
    let M = s.tokens, K = s.columns
    if M == 0 { return }
    withScratch(M * K) { cols in
        forEachTubeRun(s) { v, c in (cols + c).update(from: video + v, count: s.pw) }
        linearForward(out: out, input: cols, weight: weight, bias: bias, rows: M, inFeatures: K, outFeatures: s.D)
    }
}

/// dVideo (if given) is overwritten; dWeight / dBias (if given) accumulate.
public func patchEmbed3DBackward(dVideo: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                                 dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>, video: UnsafePointer<Float>,
                                 weight: UnsafePointer<Float>, sizes s: Patch3DSizes) {
    let M = s.tokens, K = s.columns
    if M == 0 { return }
    withScratch(M * K) { cols in
        if dWeight != nil { forEachTubeRun(s) { v, c in (cols + c).update(from: video + v, count: s.pw) } }
        linearBackward(dInput: nil, dWeight: dWeight, dBias: dBias, dOut: dOut, input: cols, weight: weight,
                       rows: M, inFeatures: K, outFeatures: s.D)
        if let dVideo {
            linearBackward(dInput: cols, dWeight: nil, dBias: nil, dOut: dOut, input: nil, weight: weight,
                           rows: M, inFeatures: K, outFeatures: s.D)
            forEachTubeRun(s) { v, c in (dVideo + v).update(from: cols + c, count: s.pw) }
        }
    }
}

/// video [B, C, T, H, W] zero-padded at the end of T, H and W into out [B, C, Tp, Hp, Wp] (Video
/// Swin's PatchEmbed3D pads a clip that is not a patch multiple this way before its Conv3d).
public func padVideoEnd(out: UnsafeMutablePointer<Float>, video: UnsafePointer<Float>, batch B: Int, channels C: Int,
                        from: (t: Int, h: Int, w: Int), to: (t: Int, h: Int, w: Int)) {
    precondition(to.t >= from.t && to.h >= from.h && to.w >= from.w, "padVideoEnd: \(to) is smaller than \(from)")
    out.update(repeating: 0, count: B * C * to.t * to.h * to.w)
    for plane in 0..<(B * C) { for t in 0..<from.t { for y in 0..<from.h {
        (out + ((plane * to.t + t) * to.h + y) * to.w).update(from: video + ((plane * from.t + t) * from.h + y) * from.w, count: from.w)
    } } }
}
