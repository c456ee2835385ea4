// The bare product behind `model.precision: bf16`: oneDNN's matmul on operands already in bf16,
// fp32 out. The bench times it alone on a step's shapes for the bf16 roofline, as the fp32
// roofline times bare sgemm.

/// C[m, n] = op(A)·op(B) with `shape`'s transposes; A and B in bf16, C in fp32.
public func bf16Matmul(_ shape: GemmShape, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>) throws {
    try OneDNNMatmulEngine.shared().matmul(M: shape.m, K: shape.k, N: shape.n, src: a, transposedSource: shape.transA,
                                   weights: b, transposedWeights: shape.transB, bias: nil, dst: c, accumulate: false)
}
