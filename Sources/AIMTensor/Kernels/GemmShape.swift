// The shape of a matrix product, for timing products apart from the code that runs them (the
// bench roofline, the GEMM library probe).

/// One matrix product C[m, n] = op(A)·op(B) (row-major, op = transpose when the flag is set).
/// `pairs` > 1: that many independent products, one per (attention sequence, head), spread over
/// the threads with single-threaded sgemm, as our attention kernel runs them.
public struct GemmShape: Hashable, Sendable {
    public let transA: Bool, transB: Bool
    public let m: Int, n: Int, k: Int
    public var pairs = 1
    public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, pairs: Int = 1) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k; self.pairs = pairs
    }
    public var flop: Double { 2 * Double(m) * Double(n) * Double(k) * Double(pairs) }
    public var text: String {
        "\(transA ? "Aᵀ" : "A")·\(transB ? "Bᵀ" : "B") \(m)×\(k)·\(k)×\(n)" + (pairs > 1 ? " ×\(pairs) (sequence, head) pairs" : "")
    }
}
