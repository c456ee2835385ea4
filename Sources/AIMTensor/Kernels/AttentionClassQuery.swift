// Attention of each sequence's first row alone (its class token as the only query) over all L rows
// as keys and values: what the last ViT block needs, since nothing after it reads any other
// token's output. Per (sequence, head) it is one L-long score row instead of an L × L matrix
// (1/197 of the products for a ViT frame), so it runs as plain vector loops, not sgemm.
//
// The results are those of the full attention's first row: in fp32 as `attentionForward` /
// `attentionBackward`, in bf16 (`inBF16`) with the roundings of the bf16 attention
// (AttentionBF16.swift): q, k, v, the output gradient, the probabilities and scale·dS rounded to
// bf16 as product operands, softmax and its backward in fp32; q | k | v given in bf16 without
// `inBF16` (a bf16 model's short sequences, AttentionShort.swift) are read as they are and the
// rest runs in fp32. They differ from the full kernels only in the order of fp32 accumulation. In backward the other rows' output gradients are zero,
// so their queries' gradients are zero and keys and values take the first row's share alone.

/// out [S, D] = the attention output of row 0 of each sequence of `qkv` [S, L, 3D] over `heads`
/// (fp32 into `out`, or bf16 into `roundedOut`, one of the two). `inBF16`: with the bf16
/// attention's roundings.
public func classQueryAttentionForward(
    out: UnsafeMutablePointer<Float>?, roundedOut: UnsafeMutablePointer<UInt16>? = nil, qkv: AttentionQKVRows,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, inBF16: Bool
) {
    precondition((out != nil) != (roundedOut != nil), "classQueryAttentionForward: one output")
    let shape = ClassQueryShape(length: L, width: D, heads: H, inBF16: inBF16)
    Threads.parallelFor(S * H) { pairs in
        withScratch(shape.scratchCount) { buffer in
            for pair in pairs {
                let s = pair / H, h = pair % H
                let head = shape.load(qkv, sequence: s, head: h, into: buffer)
                let o = head.gradient   // the output row, [dh]
                for c in 0..<shape.dh { o[c] = 0 }
                for j in 0..<L { axpy(head.probs16[j], head.v + j * shape.dh, o, shape.dh) }
                let at = s * D + h * shape.dh
                if let out { (out + at).update(from: o, count: shape.dh) }
                if let roundedOut { roundToBF16Serially(roundedOut + at, o, shape.dh) }
            }
        }
    }
}

/// dQKV [S, L, 3D] (fp32, or bf16 into `roundedDQKV`, one of the two) = the gradients of q | k | v
/// given `dOut` [S, D], the gradient of each sequence's row-0 output (the other rows' being zero):
/// q's gradient is zero past row 0, k's and v's come from row 0's query alone.
public func classQueryAttentionBackward(
    dQKV: UnsafeMutablePointer<Float>?, roundedDQKV: UnsafeMutablePointer<UInt16>? = nil, dOut: UnsafePointer<Float>,
    qkv: AttentionQKVRows, sequences S: Int, length L: Int, width D: Int, heads H: Int, inBF16: Bool
) {
    precondition((dQKV != nil) != (roundedDQKV != nil), "classQueryAttentionBackward: one output")
    let shape = ClassQueryShape(length: L, width: D, heads: H, inBF16: inBF16)
    let dh = shape.dh, ld = 3 * D
    Threads.parallelFor(S * H) { pairs in
        withScratch(shape.scratchCount + 3 * dh) { buffer in
            let row = buffer + shape.scratchCount   // one output row of dq, dk or dv for this head
            let dq0 = row + dh, g = dq0 + dh
            for pair in pairs {
                let s = pair / H, h = pair % H
                // The output gradient as the products read it (rounded in bf16).
                let dO = dOut + s * D + h * dh
                for c in 0..<dh { g[c] = inBF16 ? roundedValue(dO[c]) : dO[c] }
                let head = shape.load(qkv, sequence: s, head: h, into: buffer)
                let p = head.probs, dS = head.scores   // the scores are no longer needed: dP, then scale·dS, there
                var sum: Float = 0
                for j in 0..<L {
                    dS[j] = dot16(head.v + j * dh, g, dh)
                    sum += p[j] * dS[j]
                }
                for c in 0..<dh { dq0[c] = 0 }
                func write(_ values: UnsafePointer<Float>, row r: Int, part: Int) {
                    let at = (s * L + r) * ld + part * D + h * dh
                    if let dQKV { (dQKV + at).update(from: values, count: dh) } else { roundToBF16Serially(roundedDQKV! + at, values, dh) }
                }
                for j in 0..<L {
                    var d = shape.scale * p[j] * (dS[j] - sum)
                    if inBF16 { d = roundedValue(d) }
                    axpy(d, head.k + j * dh, dq0, dh)
                    for c in 0..<dh { row[c] = d * head.q[c] }
                    write(row, row: j, part: 1)                            // dk_j = scale·dS_j · q
                    for c in 0..<dh { row[c] = head.probs16[j] * g[c] }
                    write(row, row: j, part: 2)                            // dv_j = P_j · dO
                }
                write(dq0, row: 0, part: 0)                                // dq_0 = scale · Σ_j dS_j k_j
                for c in 0..<dh { row[c] = 0 }
                for r in 1..<L { write(row, row: r, part: 0) }
            }
        }
    }
}

/// One (sequence, head)'s operands in a thread's scratch: q of row 0, every row's k and v, as the
/// products read them, and the softmax of row 0's scores.
private struct ClassQueryShape {
    let length: Int, width: Int, dh: Int, scale: Float, inBF16: Bool

    init(length L: Int, width D: Int, heads H: Int, inBF16: Bool) {
        precondition(L > 0 && H > 0 && D % H == 0, "class-query attention: bad sizes L=\(L) D=\(D) H=\(H)")
        length = L; width = D; dh = D / H; scale = 1 / Float(D / H).squareRoot()
        self.inBF16 = inBF16
    }

    /// q [dh], k and v [L, dh], scores and probabilities [L] each, and the probabilities as P·V reads
    /// them [L] (rounded in bf16), plus one row [dh] for the output.
    var scratchCount: Int { dh + 2 * length * dh + 3 * length + dh }

    struct Head {
        let q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
        let scores: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, probs16: UnsafeMutablePointer<Float>
        let gradient: UnsafeMutablePointer<Float>
    }

    /// Loads sequence s's head h into `buffer` and computes row 0's probabilities.
    func load(_ qkv: AttentionQKVRows, sequence s: Int, head h: Int, into buffer: UnsafeMutablePointer<Float>) -> Head {
        let L = length, D = width, ld = 3 * D
        let q = buffer, k = q + dh, v = k + L * dh, scores = v + L * dh, probs = scores + L, probs16 = probs + L
        let head = Head(q: q, k: k, v: v, scores: scores, probs: probs, probs16: probs16, gradient: probs16 + L)
        let base = s * L * ld + h * dh
        func copy(_ out: UnsafeMutablePointer<Float>, _ at: Int) {
            switch qkv {
            case .fp32(let rows):
                if inBF16 { for c in 0..<dh { out[c] = roundedValue(rows[at + c]) } } else { out.update(from: rows + at, count: dh) }
            case .bf16(let rows):
                widenFromBF16Serially(out, rows + at, dh)
            }
        }
        copy(q, base)
        for j in 0..<L {
            copy(k + j * dh, base + j * ld + D)
            copy(v + j * dh, base + j * ld + 2 * D)
        }
        for j in 0..<L { scores[j] = dot16(q, k + j * dh, dh) * scale }
        softmaxRow(probs, scores, L)
        for j in 0..<L { probs16[j] = inBF16 ? roundedValue(probs[j]) : probs[j] }
        return head
    }
}

/// x rounded to bf16 and back (what a bf16 product reads of it).
@inline(__always) private func roundedValue(_ x: Float) -> Float { Float(bitPattern: UInt32(toBF16(x)) &<< 16) }

/// y += a · x over n floats.
@inline(__always) private func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var c = 0
    while c + 16 <= n { store16(load16(y + c) + a * load16(x + c), y + c); c += 16 }
    while c < n { y[c] += a * x[c]; c += 1 }
}
