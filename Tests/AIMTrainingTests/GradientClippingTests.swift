import AIMTensor
import AIMTraining
import XCTest

/// `train.clip_grad` as torch's clip_grad_norm_ (norm_type 2): the global L2 norm over all tunable
/// gradients; above `maxNorm` every gradient is scaled by maxNorm / (norm + 1e-6), else left alone.
final class GradientClippingTests: XCTestCase {
    override func tearDown() { Threads.set(2) }

    func testClipsOnlyAboveTheMaximumNorm() {
        let g = Tensor([2])
        g[0] = 3; g[1] = 4
        XCTAssertEqual(clipGradientNorm(g, maxNorm: 10), 5)
        XCTAssertEqual([g[0], g[1]], [3, 4], "below the maximum: untouched")
        XCTAssertEqual(clipGradientNorm(g, maxNorm: 1), 5)
        let c = Float(1) / (5 + 1e-6)
        XCTAssertEqual([g[0], g[1]], [3 * c, 4 * c])
    }

    /// Millions of values (many of the sum's fixed blocks, and a partial last one): the sum of squares
    /// is the float64 one, and the same bits on one thread as on two.
    func testNormOfManyValuesIsExactAndThreadCountFree() {
        let n = 3_000_017
        var rng = RandomGenerator(seed: 5)
        let g = Tensor([n])
        var exact = 0.0
        for i in 0..<n {
            g[i] = Float(rng.normal()) * (i % 7 == 0 ? 1e3 : 1e-3)
            exact += Double(g[i]) * Double(g[i])
        }
        var sums: [Double] = []
        for threads in [1, 2] {
            Threads.set(threads)
            sums.append(sumOfSquares(g.data, count: n))
        }
        XCTAssertEqual(sums[0].bitPattern, sums[1].bitPattern, "1 and 2 threads: \(sums)")
        // Both sums round n times in float64: within n·ε of each other (3e6 · 1.1e-16 ≈ 3e-10).
        XCTAssertEqual(sums[0], exact, accuracy: exact * Double(n) * 1.2e-16)
        XCTAssertEqual(sumOfSquares(g.data, count: 0), 0)
        XCTAssertEqual(clipGradientNorm(g, maxNorm: 0), Float(sums[0].squareRoot()), "maxNorm 0: the norm only")
    }
}
