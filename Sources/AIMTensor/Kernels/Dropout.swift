// Inverted dropout and drop-path (stochastic depth) with keyed generators.
// Masks are drawn sequentially from the caller's generator, so they depend only on its keys,
// never on threads.

/// mask[i] = (u_i >= p) ? 1/(1-p) : 0 with u_i uniform in [0, 1); out = input · mask.
/// p = 0 copies, fills the mask with 1 and draws nothing.
public func dropoutForward(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, mask: UnsafeMutablePointer<Float>,
    count: Int, p: Float, rng: inout RandomGenerator
) {
    precondition(p >= 0 && p < 1, "dropoutForward: p must be in [0, 1), got \(p)")
    if p == 0 {
        mask.update(repeating: 1, count: count)
        if UnsafePointer(out) != input { out.update(from: input, count: count) }
        return
    }
    let keep = 1 / (1 - p)
    for i in 0..<count { mask[i] = rng.uniformFloat() >= p ? keep : 0 }
    zip16(out, input, mask, count) { $0 * $1 }
}

/// dInput (=|+=) dOut · mask.
public func dropoutBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, mask: UnsafePointer<Float>,
    count: Int, accumulateInput: Bool = false
) {
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        let lo = r.lowerBound
        if accumulateInput {
            var i = 0
            let n = r.count, dx = dInput + lo, dy = dOut + lo, m = mask + lo
            while i + 16 <= n { store16(load16(dx + i) + load16(dy + i) * load16(m + i), dx + i); i += 16 }
            while i < n { dx[i] += dy[i] * m[i]; i += 1 }
        } else {
            zip16(dInput + lo, dOut + lo, mask + lo, r.count) { $0 * $1 }
        }
    }
}

/// timm's drop_path: each sample is kept with probability 1-p and then scaled by 1/(1-p).
/// Returns one scale per sample (0 or 1/(1-p)); p = 0 gives all 1 and draws nothing.
public func dropPathScales(samples: Int, p: Float, rng: inout RandomGenerator) -> [Float] {
    precondition(p >= 0 && p < 1, "dropPathScales: p must be in [0, 1), got \(p)")
    precondition(samples >= 0, "dropPathScales: negative sample count \(samples)")
    if p == 0 { return [Float](repeating: 1, count: samples) }
    let keep = 1 / (1 - p)
    return (0..<samples).map { _ in rng.uniformFloat() >= p ? keep : 0 }
}
