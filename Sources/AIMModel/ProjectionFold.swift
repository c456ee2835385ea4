import AIMTensor

/// A frozen linear followed directly by another linear, run as one product: fc1(proj(a)) =
/// a·(W₁·W_p)ᵀ + (W₁·b_p + b₁), the same map up to float rounding.
///
/// Why: AIM's temporal branch ends in the frozen attention's out_proj (D → D) and T_Adapter's
/// fc1 (D → D/4), with nothing between them (T_Adapter has no skip connection). Folding W_p
/// into fc1 once per forward (a D/4 × D × D product) replaces out_proj's forward and input
/// gradient over every token row (two rows × D × D products): for ViT-B/16 at 8 frames,
/// 1576 rows against 192, 3–4 % of a step in fp32 or bf16. The parameters stay as they are (same
/// names, same values, same optimizer state); fc1's gradients come out of the chain rule
/// through the fold: dW₁ = (dhᵀ·a)·W_pᵀ + (Σ dh)·b_pᵀ, db₁ = Σ dh.
/// In bf16 the folded product reads bf16(a) and bf16(W₁·W_p), the fold itself in fp32: one
/// rounding fewer than autocast's chain (which also rounds out_proj's output).
struct ProjectionFold {
    let proj: LinearLayer
    let fc1: LinearLayer

    /// Where it applies: a frozen projection into an fc1 of the same precision.
    static func applies(proj: LinearLayer, fc1: LinearLayer) -> Bool {
        !proj.weight.tunable && !(proj.bias?.tunable ?? false) && proj.weight.reducedPrecision == fc1.weight.reducedPrecision
            && proj.outFeatures == fc1.inFeatures
    }

    /// The folded product in bf16 (its input is then bf16(a), kept as such).
    var inBF16: Bool { fc1.weight.reducedPrecision }

    /// The folded weight as a bf16 operand, rounded at each use (it changes every step).
    private func bf16(_ weight: UnsafePointer<Float>) -> BF16Weight {
        BF16Weight(roundingPerUse: weight, outFeatures: outFeatures, inFeatures: inFeatures)
    }

    var inFeatures: Int { proj.inFeatures }
    var outFeatures: Int { fc1.outFeatures }

    /// weight [out, in] = W₁·W_p and bias [out] = W₁·b_p + b₁ from the current parameters.
    func fold(weight: FloatPtr, bias: FloatPtr) {
        let A = outFeatures, D = proj.outFeatures, K = inFeatures
        StepProfile.measure(fc1.weight.tunable ? .tunableGEMM : .frozenGEMM) {
            Gemm.sgemm(transA: false, transB: false, M: A, N: K, K: D, A: fc1.weight.data, lda: D, B: proj.weight.data, ldb: K,
                       beta: 0, C: weight, ldc: K)
            if let b1 = fc1.bias?.data { bias.update(from: b1, count: A) } else { bias.update(repeating: 0, count: A) }
            if let bp = proj.bias?.data {
                for i in 0..<A {
                    let row = fc1.weight.data + i * D
                    var sum: Float = 0
                    for j in 0..<D { sum += row[j] * bp[j] }
                    bias[i] += sum
                }
            }
        }
    }

    /// h [rows, out] = a·weightᵀ + bias, with `weight` and `bias` from `fold`; `a` in fp32, or in
    /// bf16 (`aBF16`) where `inBF16`.
    func forward(_ h: FloatPtr, _ a: UnsafePointer<Float>?, aBF16: UnsafePointer<UInt16>?, weight: UnsafePointer<Float>,
                 bias: UnsafePointer<Float>, rows: Int) {
        precondition(inBF16 ? aBF16 != nil : a != nil, "ProjectionFold.forward: the input in the fold's precision")
        StepProfile.measure(fc1.weight.tunable ? .tunableGEMM : .frozenGEMM) {
            if let aBF16 {
                do { try linearForwardBF16(out: h, roundedInput: aBF16, weight: bf16(weight), bias: bias, rows: rows) }
                catch { PassFailure.record(error, output: h, count: rows * outFeatures) }
            } else {
                linearForward(out: h, input: a!, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
            }
        }
    }

    /// dA [rows, in] = dh·weight (overwritten; nil: fc1's gradients only); fc1's gradients
    /// accumulated when it is tunable. `a` / `aBF16`: the forward's input as it read it.
    func backward(dInput dA: FloatPtr?, dh: UnsafePointer<Float>, a: UnsafePointer<Float>?, aBF16: UnsafePointer<UInt16>?,
                  weight: UnsafePointer<Float>, rows R: Int, scratch: Arena) {
        let A = outFeatures, D = proj.outFeatures, K = inFeatures
        StepProfile.measure(fc1.weight.tunable ? .tunableGEMM : .frozenGEMM) {
            // g = dhᵀ·a [out, in]: fc1's weight gradient before the chain through W_p.
            let dW = fc1.weight.gradData
            let g = dW.map { _ in scratch.buffer("fold.g", A * K) }
            if dA == nil && g == nil { return }
            if inBF16 {
                // dA and g from one rounding of dh, as a bf16 linear's backward.
                g?.update(repeating: 0, count: A * K)
                do {
                    try linearBackwardBF16(dInput: dA, dWeight: g, dBias: nil, dOut: dh, input: nil, inputBF16: aBF16!,
                                           weight: bf16(weight), rows: R)
                } catch { PassFailure.record(error, output: dA, count: R * K) }
            } else {
                if let dA {
                    linearBackward(dInput: dA, dWeight: nil, dBias: nil, dOut: dh, input: nil, weight: weight, rows: R,
                                   inFeatures: K, outFeatures: A)
                }
                if let g { Gemm.sgemm(transA: true, transB: false, M: A, N: K, K: R, A: dh, lda: A, B: a!, ldb: K, beta: 0, C: g, ldc: K) }
            }
            guard let dW, let g else { return }
            // Σ dh over the rows: db₁'s term, and the weight of b_p in dW₁.
            let s = scratch.buffer("fold.dsum", A)
            s.update(repeating: 0, count: A)
            sumRows(into: s, dh, R, A)
            if let db = fc1.bias?.gradData { addInPlace(db, s, count: A) }
            Gemm.sgemm(transA: false, transB: true, M: A, N: D, K: K, A: g, lda: K, B: proj.weight.data, ldb: K, beta: 1, C: dW, ldc: D)
            if let bp = proj.bias?.data {
                for i in 0..<A {
                    let row = dW + i * D, si = s[i]
                    for j in 0..<D { row[j] += si * bp[j] }
                }
            }
        }
    }
}
