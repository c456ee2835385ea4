import XCTest
import AIMTensor

final class TensorTests: XCTestCase {
    func testAlignmentAndViews() {
        let t = Tensor([3, 5])
        XCTAssertEqual(Int(bitPattern: t.data) % 64, 0)
        XCTAssertEqual(t.count, 15)
        t[7] = 2
        let v = Tensor(viewing: t, offset: 5, shape: [5])
        XCTAssertEqual(v[2], 2)
        XCTAssertEqual(t.reshaped([15])[7], 2)
    }

    func testLinearMatchesNaive() {
        Threads.set(2)
        let M = 7, K = 13, N = 5
        var g = RandomGenerator(seed: 1)
        let x = Tensor(shape: [M, K], values: (0..<M*K).map { _ in Float(g.normal()) })
        let w = Tensor(shape: [N, K], values: (0..<N*K).map { _ in Float(g.normal()) })
        let b = Tensor(shape: [N], values: (0..<N).map { _ in Float(g.normal()) })
        let y = Tensor([M, N])
        linearForward(out: y.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N)
        for i in 0..<M { for j in 0..<N {
            var s = Double(b[j])
            for k in 0..<K { s += Double(x[i*K+k]) * Double(w[j*K+k]) }
            XCTAssertEqual(Double(y[i*N+j]), s, accuracy: 1e-4)
        } }
    }
}
