// SIMD building blocks shared by the elementwise kernels: 16-float loads and stores (with a
// zero-padded tail, so the last partial vector goes through exactly the same arithmetic),
// a vectorised exp and erf, and deterministic chunked reductions.

typealias F16 = SIMD16<Float>

@_transparent func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@_transparent func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// The first `n` (< 16) floats at `p`, zeros after (one small copy, not lane-by-lane inserts).
@_transparent func loadPartial(_ p: UnsafePointer<Float>, _ n: Int) -> F16 {
    var v = F16()
    withUnsafeMutableBytes(of: &v) { $0.baseAddress!.copyMemory(from: p, byteCount: n * 4) }
    return v
}

@_transparent func storePartial(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    withUnsafeBytes(of: v) { UnsafeMutableRawPointer(p).copyMemory(from: $0.baseAddress!, byteCount: n * 4) }
}

/// Applies `f` to 16 elements at a time over `0..<count` of `x`, writing `out`; the tail is padded.
/// `out` may equal `x`.
@inline(__always) func map16(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int,
                             _ f: (F16) -> F16) {
    var i = 0
    while i + 16 <= count { store16(f(load16(x + i)), out + i); i += 16 }
    if i < count { storePartial(f(loadPartial(x + i, count - i)), out + i, count - i) }
}

/// Two-input version of `map16`: out = f(a, b).
@inline(__always) func zip16(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                             _ count: Int, _ f: (F16, F16) -> F16) {
    var i = 0
    while i + 16 <= count { store16(f(load16(a + i), load16(b + i)), out + i); i += 16 }
    if i < count {
        let n = count - i
        storePartial(f(loadPartial(a + i, n), loadPartial(b + i, n)), out + i, n)
    }
}

/// Horizontal sum by halving (8 + 4 vector adds, then 4 scalars): much cheaper than a
/// lane-by-lane `.sum()`, and always the same order.
@_transparent func hsum(_ v: F16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    return (b[0] + b[2]) + (b[1] + b[3])
}

/// Horizontal max by halving.
@_transparent func hmax(_ v: F16) -> Float {
    let a = v.lowHalf.replacing(with: v.highHalf, where: v.lowHalf .< v.highHalf)
    let b = a.lowHalf.replacing(with: a.highHalf, where: a.lowHalf .< a.highHalf)
    return Swift.max(Swift.max(b[0], b[1]), Swift.max(b[2], b[3]))
}

/// Σ x[i] for a row, with 16 running partial sums (a fixed order, independent of threads).
@inline(__always) func sum16(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F16()
    var i = 0
    while i + 16 <= n { acc += load16(x + i); i += 16 }
    if i < n { acc += loadPartial(x + i, n - i) }
    return hsum(acc)
}

/// Σ a[i]·b[i].
@inline(__always) func dot16(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = F16()
    var i = 0
    while i + 16 <= n { acc += load16(a + i) * load16(b + i); i += 16 }
    if i < n { acc += loadPartial(a + i, n - i) * loadPartial(b + i, n - i) }
    return hsum(acc)
}

/// Elementwise min/max that lower to plain vector compares (the generic SIMD ones may not).
@_transparent func vmax(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: a .< b) }
@_transparent func vmin(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .< a) }

/// e^x for 16 floats: Cephes' expf (range reduction by ln 2 split in two parts, degree-5
/// polynomial), about 1 ulp; inputs are clamped to [-87.3, 88.3] so 2^n stays a normal float
/// (tiny results flush to ~1e-38 instead of becoming garbage).
@_transparent func exp16(_ x0: F16) -> F16 {
    let x = vmin(vmax(x0, F16(repeating: -87.3)), F16(repeating: 88.3))
    // n = round(x / ln2) by the 1.5·2^23 trick (no SSE4.1 rounding instruction needed).
    // Fused multiply-adds throughout (Swift does not contract `a * b + c` itself): half the
    // instructions of the separate form, which made exp the larger part of a 49-token softmax.
    let magic = F16(repeating: 12_582_912)
    let shifted = magic.addingProduct(x, F16(repeating: 1.442_695_040_888_963_4))
    let n = shifted - magic
    var r = x.addingProduct(n, F16(repeating: -0.693_359_375))
    r = r.addingProduct(n, F16(repeating: 2.121_944_400_546_905_827_679e-4))
    var p = F16(repeating: 1.987_569_150_0e-4)
    p = F16(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = F16(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = F16(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = F16(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = F16(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    // 2^n from the exponent bits: the low mantissa bits of `shifted` hold n (two's complement).
    let bits = (unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: F16.self)
}

/// erf(x) for 16 floats: the rational approximation used by Eigen/XLA (x·P(x²)/Q(x²) on
/// [-4, 4], ±1 outside), absolute error below 2e-7. Horner steps as fused multiply-adds, as in exp16.
@_transparent func erf16(_ x0: F16) -> F16 {
    let x = vmin(vmax(x0, F16(repeating: -4)), F16(repeating: 4))
    let x2 = x * x
    var p = F16(repeating: -2.726_142_258_013_06e-10)
    p = F16(repeating: 2.770_681_424_959_02e-08).addingProduct(p, x2)
    p = F16(repeating: -2.101_024_020_825_08e-06).addingProduct(p, x2)
    p = F16(repeating: -5.692_506_394_623_46e-05).addingProduct(p, x2)
    p = F16(repeating: -7.349_906_303_268_55e-04).addingProduct(p, x2)
    p = F16(repeating: -2.954_599_808_540_25e-03).addingProduct(p, x2)
    p = F16(repeating: -1.609_603_332_624_15e-02).addingProduct(p, x2)
    var q = F16(repeating: -1.456_607_184_649_96e-05)
    q = F16(repeating: -2.133_740_552_789_05e-04).addingProduct(q, x2)
    q = F16(repeating: -1.682_826_974_382_03e-03).addingProduct(q, x2)
    q = F16(repeating: -7.373_329_167_204_68e-03).addingProduct(q, x2)
    q = F16(repeating: -1.426_473_905_141_89e-02).addingProduct(q, x2)
    return x * p / q
}

/// Splits `0..<n` into at most `Threads.count` fixed chunks (at least `grain` items each) and
/// runs `body(chunk, range)` in parallel; returns the number of chunks. Per-chunk partial
/// results combined in chunk order are deterministic for a given thread count.
@discardableResult
func forEachChunk(_ n: Int, grain: Int, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void) -> Int {
    let chunks = max(1, min(Threads.count, n / max(1, grain)))
    if chunks == 1 { body(0, 0..<n); return 1 }
    Threads.parallelFor(chunks) { cs in
        for c in cs { body(c, Threads.chunkRange(n, chunks: chunks, index: c)) }
    }
    return chunks
}

/// A scratch buffer of `count` floats, zeroed, freed after `body`.
@inline(__always) func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
    defer { p.deallocate() }
    return body(p)
}
