import COpenBLAS

// Linear layer in PyTorch's layout: weight [N, K] (out × in), y[M, N] = x[M, K] · Wᵀ + b.
// The products go through `Gemm` (the fp32 library chosen for this CPU class).

/// y = scale · (x · Wᵀ + b) [+ residual]. `out` is overwritten, or added to when `accumulate` is true.
/// `residual` (not `out` itself) is a second [M, N] addend, e.g. an adapter's skip connection;
/// `scale` weights a branch added into the residual stream (AIM's 0.5 · adapter), bias included.
public func linearForward(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows M: Int, inFeatures K: Int, outFeatures N: Int, accumulate: Bool = false, residual: UnsafePointer<Float>? = nil,
    scale: Float = 1
) {
    precondition(M >= 0 && K > 0 && N > 0, "linearForward: bad sizes M=\(M) K=\(K) N=\(N)")
    precondition(residual != UnsafePointer(out), "linearForward: the residual is a separate tensor (accumulate adds out)")
    if M == 0 { return }
    if let bias, FusedBiasLinear.applies {
        do {
            try OneDNNMatmulEngine.shared().matmulF32(M: M, K: K, N: N, src: input, weights: weight, bias: bias, dst: out,
                                                       accumulate: accumulate, residual: residual, scale: scale)
            return
        } catch { FusedBiasLinear.disable(after: error) }   // OneDNNReferenceOnly: this product alone takes the path below
    }
    var accumulate = accumulate
    if let residual { addResidual(into: out, residual, count: M * N, accumulate: accumulate); accumulate = true }
    if let bias, !accumulate {
        // Bias fused as the GEMM's C: fill rows with scale · b, then beta = 1.
        Threads.parallelFor(M, grain: 64) { r in
            for i in r { map16(out + i * N, bias, N) { $0 * scale } }
        }
        Gemm.sgemm(transA: false, transB: true, M: M, N: N, K: K, alpha: scale, A: input, lda: K, B: weight, ldb: K, beta: 1, C: out, ldc: N)
    } else {
        Gemm.sgemm(transA: false, transB: true, M: M, N: N, K: K, alpha: scale, A: input, lda: K, B: weight, ldb: K,
                   beta: accumulate ? 1 : 0, C: out, ldc: N)
        if let bias { addBiasRows(out, bias, M, N, scale: scale) }
    }
}

/// out = residual (or += when `accumulate`): the residual laid down first, so that a product that
/// cannot add it inside itself accumulates onto it.
public func addResidual(into out: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>, count: Int, accumulate: Bool) {
    if accumulate { addInPlace(out, residual, count: count) } else { copyParallel(out, residual, count: count) }
}

/// With oneDNN as the fp32 library, a forward with a bias runs as one oneDNN matmul that adds the
/// bias (and, when asked, a scale, the old output, a residual) inside the product, instead of
/// filling the output with the bias and multiplying with beta = 1, or multiplying with beta = 1 and
/// adding the bias after (why: each is one more write and one more read of the whole output).
public enum FusedBiasLinear {
    /// Benchmarks switch it off to compare with the fill-then-multiply path.
    nonisolated(unsafe) public static var enabled = true
    nonisolated(unsafe) private static var failed = false
    static var applies: Bool { enabled && !failed && Gemm.library == .onednn }
    /// Compiles the fused forward's primitive for these sizes ahead of its first call (no-op when the
    /// fused path is off); a failure is left for that call to report.
    static func prepare(rows M: Int, inFeatures K: Int, outFeatures N: Int) {
        guard applies, M > 0 else { return }
        try? OneDNNMatmulEngine.shared().prepareBiasedF32(M: M, K: K, N: N)
    }
    static func disable(after error: Error) {
        if error is OneDNNReferenceOnly { return }
        failed = true
        Console.errorRaw("warning: oneDNN fp32 matmul with bias failed (\(error)); linear layers fall back to fill + sgemm\n")
    }
}

/// Backward of `linearForward`.
/// - `dInput` (if given) receives dy · W: overwritten, or added to when `accumulateInput`; plus
///   `inputResidual` when given (a skip connection's gradient, added inside the product with oneDNN).
/// - `dWeight` / `dBias` (if given) are always accumulated (+=), so micro-batches add up;
///   pass nil for frozen layers so they never pay for the weight gradient.
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
    dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    input: UnsafePointer<Float>?, weight: UnsafePointer<Float>,
    rows M: Int, inFeatures K: Int, outFeatures N: Int, accumulateInput: Bool = false, inputResidual: UnsafePointer<Float>? = nil
) {
    if M == 0 { return }
    if let dInput {
        precondition(inputResidual != UnsafePointer(dInput), "linearBackward: the residual is a separate tensor (accumulateInput adds dInput)")
        var fused = false
        if let inputResidual, FusedBiasLinear.applies {
            do {
                try OneDNNMatmulEngine.shared().matmulF32(M: M, K: N, N: K, src: dOut, weights: weight, transposedWeights: false, bias: nil,
                                                           dst: dInput, accumulate: accumulateInput, residual: inputResidual)
                fused = true
            } catch { FusedBiasLinear.disable(after: error) }
        }
        if !fused {
            Gemm.sgemm(transA: false, transB: false, M: M, N: K, K: N, A: dOut, lda: N, B: weight, ldb: K,
                       beta: accumulateInput ? 1 : 0, C: dInput, ldc: K)
            if let inputResidual { addInPlace(dInput, inputResidual, count: M * K) }
        }
    }
    if let dWeight {
        guard let input else { preconditionFailure("linearBackward: dWeight needs the saved input") }
        Gemm.sgemm(transA: true, transB: false, M: N, N: K, K: M, A: dOut, lda: N, B: input, ldb: K, beta: 1, C: dWeight, ldc: K)
    }
    if let dBias { sumRows(into: dBias, dOut, M, N) }
}

/// out[i, :] += scale · bias for every row.
func addBiasRows(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, _ M: Int, _ N: Int, scale: Float = 1) {
    Threads.parallelFor(M, grain: 64) { r in
        for i in r {
            let row = out + i * N
            for j in 0..<N { row[j] += bias[j] * scale }
        }
    }
}

/// acc[j] += Σ_i x[i, j]: a serial sgemv (xᵀ·1) per thread over its share of the columns, so the
/// sum is deterministic per thread count and runs on our threads (see `Threads`).
public func sumRows(into acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ M: Int, _ N: Int) {
    guard M > 0, N > 0 else { return }
    let ones = [Float](repeating: 1, count: M)
    ones.withUnsafeBufferPointer { one in
        Gemm.withSerialLibraries {
            Threads.parallelFor(N, grain: 64) { cols in
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(M), Int32(cols.count), 1, x + cols.lowerBound, Int32(N),
                            one.baseAddress, 1, 1, acc + cols.lowerBound, 1)
            }
        }
    }
}
