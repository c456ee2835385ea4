import XCTest
import AIMTensor

// Shared helpers for the kernel tests: seeded random tensors, the scalar probe loss Σ out·R,
// and a central finite-difference gradient check evaluated in Double.

/// A tensor of `shape` with N(0, scale²) entries from a seeded generator.
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1, offset: Float = 0) -> Tensor {
    var g = RandomGenerator(keys: 0xC0FFEE, seed)
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, values: (0..<n).map { _ in Float(g.normal()) * scale + offset })
}

/// Σ out[i]·R[i] in Double: the scalar whose gradient w.r.t. out is exactly R.
func probe(_ out: Tensor, _ r: Tensor) -> Double {
    var s = 0.0
    for i in 0..<out.count { s += Double(out.data[i]) * Double(r.data[i]) }
    return s
}

/// Compares `analytic` (the backward's gradient of `loss` w.r.t. `x`) with finite differences
/// of `loss` for every element of `x`, taken in Double from the Float kernels. The fourth-order
/// central stencil (f(x-2h) - 8f(x-h) + 8f(x+h) - f(x+2h)) / 12h allows a step large enough that
/// Float rounding in the forward stays far below the tolerance |a - fd| ≤ atol + rtol·|fd|,
/// so a backward that is off by a fraction of a percent fails. The message names the worst element.
func checkGradient(
    _ name: String, _ x: Tensor, analytic: [Float], h: Float = 1.0 / 16,
    atol: Double = 5e-5, rtol: Double = 5e-4, loss: () -> Double,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(analytic.count, x.count, "\(name): gradient has \(analytic.count) elements, tensor \(x.count)", file: file, line: line)
    var worst = (excess: -Double.infinity, index: 0, fd: 0.0, a: 0.0)
    var nonzero = false
    for i in 0..<x.count {
        let x0 = x.data[i]
        func at(_ k: Float) -> Double { x.data[i] = x0 + k * h; return loss() }
        let lp1 = at(1), lm1 = at(-1), lp2 = at(2), lm2 = at(-2)
        x.data[i] = x0
        let step = (Double(x0 + h) - Double(x0 - h)) / 2
        let fd = (lm2 - 8 * lm1 + 8 * lp1 - lp2) / (12 * step)
        let a = Double(analytic[i])
        if fd != 0 || a != 0 { nonzero = true }
        let excess = abs(a - fd) - (atol + rtol * abs(fd))
        if excess > worst.excess { worst = (excess, i, fd, a) }
    }
    XCTAssertLessThanOrEqual(worst.excess, 0,
        "\(name)[\(worst.index)]: backward \(worst.a) vs finite difference \(worst.fd)", file: file, line: line)
    XCTAssertTrue(nonzero, "\(name): gradient is identically zero, the check would prove nothing", file: file, line: line)
}

/// Asserts two float arrays are bitwise identical.
func assertBitwiseEqual(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, what, file: file, line: line)
    let same = zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    XCTAssertTrue(same, "\(what): results differ between identical runs", file: file, line: line)
}

/// Max |a - b| / (1 + |b|) between a Float result and a Double reference.
func maxRelativeError(_ a: [Float], _ b: [Double]) -> Double {
    zip(a, b).map { abs(Double($0) - $1) / (1 + abs($1)) }.max() ?? 0
}
