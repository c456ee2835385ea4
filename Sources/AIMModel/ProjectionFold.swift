import AIMTensor

/// A frozen linear followed directly by another linear, run as one product: fc1(proj(a)) =
/// a·(W₁·W_p)ᵀ + (W₁·b_p + b₁), the same map up to float rounding.
///
/// Why: AIM's temporal branch ends in the frozen attention's out_proj (D → D) and T_Adapter's
/// fc1 (D → D/4), with nothing between them (T_Adapter has no skip connection). Folding W_p
/// into fc1 once per forward (a D/4 × D × D product) replaces out_proj's forward and input
/// gradient over every token row (two rows × D × D products): for ViT-B/16 at 8 frames,
/// 1576 rows against 192, about 4 % of an fp32 step. The parameters stay as they are (same
/// names, same values, same optimizer state); fc1's gradients come out of the chain rule
/// through the fold: dW₁ = (dhᵀ·a)·W_pᵀ + (Σ dh)·b_pᵀ, db₁ = Σ dh.
struct ProjectionFold {
    let proj: LinearLayer
    let fc1: LinearLayer

    /// Where it applies: a frozen fp32 projection into an fp32 fc1. (bf16 products round each
    /// operand as autocast does: the folded weight would round differently, so they keep the chain.)
    static func applies(proj: LinearLayer, fc1: LinearLayer) -> Bool {
        !proj.weight.tunable && !(proj.bias?.tunable ?? false) && !proj.weight.reducedPrecision
            && !fc1.weight.reducedPrecision && proj.outFeatures == fc1.inFeatures
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

    /// h [rows, out] = a·weightᵀ + bias, with `weight` and `bias` from `fold`.
    func forward(_ h: FloatPtr, _ a: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, rows: Int) {
        StepProfile.measure(fc1.weight.tunable ? .tunableGEMM : .frozenGEMM) {
            linearForward(out: h, input: a, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures)
        }
    }

    /// dA [rows, in] = dh·weight (overwritten); fc1's gradients accumulated when it is tunable.
    func backward(dInput dA: FloatPtr, dh: UnsafePointer<Float>, a: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  rows R: Int, scratch: Arena) {
        let A = outFeatures, D = proj.outFeatures, K = inFeatures
        StepProfile.measure(fc1.weight.tunable ? .tunableGEMM : .frozenGEMM) {
            if let dW = fc1.weight.gradData {
                // Σ dh over the rows: db₁'s term, and the weight of b_p in dW₁.
                let s = scratch.buffer("fold.dsum", A)
                s.update(repeating: 0, count: A)
                sumRows(into: s, dh, R, A)
                if let db = fc1.bias?.gradData { addInPlace(db, s, count: A) }
                let g = scratch.buffer("fold.g", A * K)
                Gemm.sgemm(transA: true, transB: false, M: A, N: K, K: R, A: dh, lda: A, B: a, ldb: K, beta: 0, C: g, ldc: K)
                Gemm.sgemm(transA: false, transB: true, M: A, N: D, K: K, A: g, lda: K, B: proj.weight.data, ldb: K, beta: 1, C: dW, ldc: D)
                if let bp = proj.bias?.data {
                    for i in 0..<A {
                        let row = dW + i * D, si = s[i]
                        for j in 0..<D { row[j] += si * bp[j] }
                    }
                }
            }
            linearBackward(dInput: dA, dWeight: nil, dBias: nil, dOut: dh, input: nil, weight: weight, rows: R,
                           inFeatures: K, outFeatures: A)
        }
    }
}
