// Row softmax and its backward from the saved output.

/// In-row softmax of `n` floats from `x` into `y` (may alias): max-shifted, vectorised exp.
@inline(__always) func softmaxRow(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var mx = -Float.infinity
    var m16 = F16(repeating: -.infinity)
    var j = 0
    while j + 16 <= n { m16 = vmax(m16, load16(x + j)); j += 16 }
    mx = hmax(m16)
    while j < n { mx = max(mx, x[j]); j += 1 }
    var acc = F16()
    j = 0
    while j + 16 <= n { let e = underflowingExp(load16(x + j) - mx); store16(e, y + j); acc += e; j += 16 }
    var s = hsum(acc)
    if j < n {
        let k = n - j
        let e = underflowingExp(loadPartial(x + j, k) - mx)
        storePartial(e, y + j, k)
        for t in 0..<k { s += e[t] }
    }
    let inv = 1 / s
    let tiny = F16(repeating: Float.leastNormalMagnitude), zero = F16()
    map16(y, y, n) { v in let p = v * inv; return p.replacing(with: zero, where: p .< tiny) }
}

/// e^d for d = x − max ≤ 0, exactly 0 below −80 (e^−80 ≈ 1.8e-35), and probabilities below the
/// smallest normal float flushed to 0 after normalising: a −100 shift mask (Swin) would otherwise
/// leave subnormal probabilities, which every later product and sum runs through microcode
/// assists (measured: the masked window attention 5–30× slower). Each probability moves by less
/// than 2e-35, far below float resolution next to the row's sum of 1.
@_transparent func underflowingExp(_ d: F16) -> F16 {
    exp16(d).replacing(with: F16(), where: d .< -80)
}

/// dx = y ⊙ (dy - Σ dy·y) for one row (dx may alias dy).
@inline(__always) func softmaxBackwardRow(
    _ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int
) {
    let d = dot16(dy, y, n)
    zip16(dx, dy, y, n) { g, p in p * (g - d) }
}

public func softmaxForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, cols: Int) {
    precondition(rows >= 0 && cols > 0, "softmaxForward: bad sizes rows=\(rows) cols=\(cols)")
    Threads.parallelFor(rows, grain: max(1, 4096 / cols)) { rs in
        for i in rs { softmaxRow(out + i * cols, input + i * cols, cols) }
    }
}

/// `dInput` is overwritten (it may alias `dOut`).
public func softmaxBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, output: UnsafePointer<Float>,
    rows: Int, cols: Int
) {
    precondition(rows >= 0 && cols > 0, "softmaxBackward: bad sizes rows=\(rows) cols=\(cols)")
    Threads.parallelFor(rows, grain: max(1, 4096 / cols)) { rs in
        for i in rs { softmaxBackwardRow(dInput + i * cols, dOut + i * cols, output + i * cols, cols) }
    }
}
