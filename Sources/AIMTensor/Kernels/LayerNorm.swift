// LayerNorm over the last dimension, as torch.nn.LayerNorm: biased variance, eps inside the
// square root, y = (x - mean) · rstd · w + b.

/// `mean` / `rstd` ([M]) are saved for the backward; pass nil when there is no backward.
/// `roundedOut`: y written in bf16 instead of `out` (nil then), rounded as `toBF16` rounds the fp32
/// y, for an output that only bf16 products read (which then need no rounding pass of their own).
public func layerNormForward(
    out: UnsafeMutablePointer<Float>?, roundedOut: UnsafeMutablePointer<UInt16>? = nil, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
    normalized: UnsafeMutablePointer<Float>? = nil, rows M: Int, channels C: Int, eps: Float
) {
    precondition(M >= 0 && C > 0 && (out == nil) != (roundedOut == nil), "layerNormForward: bad sizes M=\(M) C=\(C), or not one output")
    Threads.parallelFor(M, grain: 16) { rows in
        // bf16: each row's fp32 y goes through one row of stack memory (in L1) and is rounded from there.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: roundedOut == nil ? 0 : C) { rowBuffer in
            for i in rows {
                let x = input + i * C, y = out.map { $0 + i * C } ?? rowBuffer.baseAddress!
                let mu = sum16(x, C) / Float(C)
                // Two passes (mean, then squared deviations) are accurate even for large offsets.
                var acc = F16()
                var j = 0
                while j + 16 <= C { let d = load16(x + j) - mu; acc += d * d; j += 16 }
                if j < C {
                    let n = C - j
                    var d = loadPartial(x + j, n) - mu
                    for k in n..<16 { d[k] = 0 }
                    acc += d * d
                }
                let r = 1 / (hsum(acc) / Float(C) + eps).squareRoot()
                mean?[i] = mu
                rstd?[i] = r
                j = 0
                let xn = normalized.map { $0 + i * C }
                while j + 16 <= C {
                    let xh = (load16(x + j) - mu) * r
                    if let xn { store16(xh, xn + j) }
                    store16(xh * load16(weight + j) + load16(bias + j), y + j)
                    j += 16
                }
                while j < C { let xh = (x[j] - mu) * r; xn?[j] = xh; y[j] = xh * weight[j] + bias[j]; j += 1 }
                if let roundedOut { roundToBF16Serially(roundedOut + i * C, y, C) }
            }
        }
    }
}

/// y = x̂ · w + b from a kept x̂ (the forward's `normalized`): the same bits as the forward's output.
public func layerNormAffine(out: UnsafeMutablePointer<Float>, normalized: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows M: Int, channels C: Int) {
    Threads.parallelFor(M, grain: 16) { rows in
        for i in rows {
            let xn = normalized + i * C, y = out + i * C
            var j = 0
            while j + 16 <= C { store16(load16(xn + j) * load16(weight + j) + load16(bias + j), y + j); j += 16 }
            while j < C { y[j] = xn[j] * weight[j] + bias[j]; j += 1 }
        }
    }
}

/// dx = rstd · (dx̂ - mean(dx̂) - x̂ · mean(dx̂ · x̂)) with dx̂ = dy · w;
/// dw += Σ_rows dy · x̂, db += Σ_rows dy (per-chunk partial sums added in chunk order).
/// x̂ = (input − mean) · rstd, or, with `inputIsNormalized`, `input` is x̂ itself (the forward's
/// `normalized` output; `mean` is then not read), which gives the same bits.
public func layerNormBackward(
    dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
    dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>?, rstd: UnsafePointer<Float>,
    rows M: Int, channels C: Int, accumulateInput: Bool = false, inputIsNormalized: Bool = false,
    addend: UnsafePointer<Float>? = nil
) {
    precondition(inputIsNormalized || mean != nil, "layerNormBackward: mean is needed unless the input is x̂")
    precondition(!(accumulateInput && addend != nil), "layerNormBackward: accumulate adds to dInput, addend adds another tensor; not both")
    precondition(M >= 0 && C > 0, "layerNormBackward: bad sizes M=\(M) C=\(C)")
    if M == 0 { return }
    let wantParams = dWeight != nil || dBias != nil
    let maxChunks = max(1, Threads.count)
    // Per chunk: [dw partial | db partial], C each.
    withScratch(wantParams ? maxChunks * 2 * C : 0) { partial in
        let chunks = forEachChunk(M, grain: 8) { c, rows in
            let pw = partial + c * 2 * C, pb = pw + C
            for i in rows {
                let x = input + i * C, dy = dOut + i * C, dx = dInput + i * C
                // What dx is added to: its old value, the addend (a residual's gradient), or nothing.
                let base: UnsafePointer<Float>? = addend.map { $0 + i * C } ?? (accumulateInput ? UnsafePointer(dx) : nil)
                let mu = inputIsNormalized ? 0 : mean![i], r = rstd[i]
                @inline(__always) func xhat16(_ j: Int) -> F16 { inputIsNormalized ? load16(x + j) : (load16(x + j) - mu) * r }
                @inline(__always) func xhat(_ j: Int) -> Float { inputIsNormalized ? x[j] : (x[j] - mu) * r }
                // Row means of dx̂ and dx̂·x̂.
                var a1 = F16(), a2 = F16()
                var j = 0
                while j + 16 <= C {
                    let xh = xhat16(j)
                    let g = load16(dy + j) * load16(weight + j)
                    a1 += g; a2 += g * xh
                    if wantParams {
                        store16(load16(pw + j) + load16(dy + j) * xh, pw + j)
                        store16(load16(pb + j) + load16(dy + j), pb + j)
                    }
                    j += 16
                }
                var s1 = hsum(a1), s2 = hsum(a2)
                while j < C {
                    let xh = xhat(j)
                    let g = dy[j] * weight[j]
                    s1 += g; s2 += g * xh
                    if wantParams { pw[j] += dy[j] * xh; pb[j] += dy[j] }
                    j += 1
                }
                let m1 = s1 / Float(C), m2 = s2 / Float(C)
                j = 0
                while j + 16 <= C {
                    let xh = xhat16(j)
                    var v = (load16(dy + j) * load16(weight + j) - m1 - xh * m2) * r
                    if let base { v += load16(base + j) }
                    store16(v, dx + j)
                    j += 16
                }
                while j < C {
                    let xh = xhat(j)
                    let v = (dy[j] * weight[j] - m1 - xh * m2) * r
                    dx[j] = base.map { $0[j] + v } ?? v
                    j += 1
                }
            }
        }
        guard wantParams else { return }
        for c in 0..<chunks {
            let pw = partial + c * 2 * C, pb = pw + C
            if let dWeight { addInPlace(dWeight, pw, count: C) }
            if let dBias { addInPlace(dBias, pb, count: C) }
        }
    }
}
