import COpenBLAS

// Linear layer in PyTorch's layout: weight [N, K] (out × in), y[M, N] = x[M, K] · Wᵀ + b.
// The products go through `Gemm` (the fp32 library chosen for this CPU class).

/// y = x · Wᵀ + b. `out` is overwritten, or added to when `accumulate` is true.
public func linearForward(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    rows M: Int, inFeatures K: Int, outFeatures N: Int, accumulate: Bool = false
) {
    precondition(M >= 0 && K > 0 && N > 0, "linearForward: bad sizes M=\(M) K=\(K) N=\(N)")
    if M == 0 { return }
    if let bias, !accumulate {
        // Bias fused as the GEMM's C: fill rows with b, then beta = 1.
        Threads.parallelFor(M, grain: 64) { r in
            for i in r { (out + i * N).update(from: bias, count: N) }
        }
        Gemm.sgemm(transA: false, transB: true, M: M, N: N, K: K, A: input, lda: K, B: weight, ldb: K, beta: 1, C: out, ldc: N)
    } else {
        Gemm.sgemm(transA: false, transB: true, M: M, N: N, K: K, A: input, lda: K, B: weight, ldb: K,
                   beta: accumulate ? 1 : 0, C: out, ldc: N)
        if let bias { addBiasRows(out, bias, M, N) }
    }
}

/// Backward of `linearForward`.
/// - `dInput` (if given) receives dy · W: overwritten, or added to when `accumulateInput`.
/// - `dWeight` / `dBias` (if given) are always accumulated (+=), so micro-batches add up;
///   pass nil for frozen layers so they never pay for the weight gradient.
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
    dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    input: UnsafePointer<Float>?, weight: UnsafePointer<Float>,
    rows M: Int, inFeatures K: Int, outFeatures N: Int, accumulateInput: Bool = false
) {
    if M == 0 { return }
    if let dInput {
        Gemm.sgemm(transA: false, transB: false, M: M, N: K, K: N, A: dOut, lda: N, B: weight, ldb: K,
                   beta: accumulateInput ? 1 : 0, C: dInput, ldc: K)
    }
    if let dWeight {
        guard let input else { preconditionFailure("linearBackward: dWeight needs the saved input") }
        Gemm.sgemm(transA: true, transB: false, M: N, N: K, K: M, A: dOut, lda: N, B: input, ldb: K, beta: 1, C: dWeight, ldc: K)
    }
    if let dBias { sumRows(into: dBias, dOut, M, N) }
}

/// out[i, :] += bias for every row.
func addBiasRows(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, _ M: Int, _ N: Int) {
    Threads.parallelFor(M, grain: 64) { r in
        for i in r {
            let row = out + i * N
            for j in 0..<N { row[j] += bias[j] }
        }
    }
}

/// acc[j] += Σ_i x[i, j], as one sgemv (xᵀ·1) in OpenBLAS's own threads: a loop of ours right
/// after a GEMM would compete with OpenBLAS's still-spinning threads for the cores. OpenBLAS
/// splits the transposed sgemv over columns, so the sum stays deterministic per thread count.
public func sumRows(into acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ M: Int, _ N: Int) {
    guard M > 0, N > 0 else { return }
    let ones = [Float](repeating: 1, count: M)
    cblas_sgemv(CblasRowMajor, CblasTrans, Int32(M), Int32(N), 1, x, Int32(N), ones, 1, 1, acc, 1)
}
