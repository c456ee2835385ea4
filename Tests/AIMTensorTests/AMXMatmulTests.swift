import XCTest
import AIMTensor

/// The AMX tile products against a plain double-precision loop over the same bf16-rounded
/// operands: only the fp32 accumulation order differs, so the bound is fp32 rounding of the sums
/// (relative 1e-5 of the sum of |terms|). Skipped, and says so, on CPUs without AMX-BF16.
final class AMXMatmulTests: XCTestCase {
    func bf16(_ x: Float) -> Float {
        var r = [UInt16](repeating: 0, count: 1)
        toBF16(&r, [x], count: 1)
        return Float(bitPattern: UInt32(r[0]) << 16)
    }

    func values(_ n: Int, _ seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<n).map { _ in Float(rng.normal()) }
    }

    /// C = A·B (+ bias) (+ old C) with A [M, K] and B given as w [N, K] (forward, `transposed`) or w [K, N].
    func check(M: Int, K: Int, N: Int, transposed: Bool, bias: Bool, accumulate: Bool, threads: Int,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let a = values(M * K, 1).map(bf16), w = values(N * K, 2), b = values(N, 3), old = values(M * N, 4)
        var a16 = [UInt16](repeating: 0, count: M * K)
        toBF16(&a16, a, count: M * K)
        var packed = [UInt16](repeating: 0xFFFF, count: AMX.packedCount(k: K, n: N))
        if transposed { amxPackTransposed(&packed, w, n: N, k: K) } else { amxPackRows(&packed, w, k: K, n: N) }
        var c = accumulate ? old : [Float](repeating: .nan, count: M * N)
        let saved = Threads.count
        Threads.set(threads)
        defer { Threads.set(saved) }
        b.withUnsafeBufferPointer { bp in
            amxMatmul(m: M, k: K, n: N, a: a16, b: packed, bias: bias ? bp.baseAddress : nil, c: &c, accumulate: accumulate)
        }
        let w16 = w.map(bf16)
        var worst = 0.0
        for i in 0..<M {
            for j in 0..<N {
                var s = 0.0, mag = 0.0
                for k in 0..<K {
                    let t = Double(a[i * K + k]) * Double(transposed ? w16[j * K + k] : w16[k * N + j])
                    s += t; mag += abs(t)
                }
                if bias { s += Double(b[j]); mag += abs(Double(b[j])) }
                if accumulate { s += Double(old[i * N + j]); mag += abs(Double(old[i * N + j])) }
                let e = abs(Double(c[i * N + j]) - s) / max(mag, 1e-30)
                if !(e <= worst) { worst = e }   // a NaN (an output never written) fails too
            }
        }
        XCTAssertLessThan(worst, 1e-5, "M \(M) K \(K) N \(N) transposed \(transposed) bias \(bias) accumulate \(accumulate)",
                          file: file, line: line)
    }

    func testTileProductsMatchPlainLoops() throws {
        if let reason = AMX.unavailableReason { throw XCTSkip("AMX tile products not run: \(reason)") }
        // Whole and partial 32-row blocks, one and several strip pairs and panels, K of one and of
        // many 32-steps, each way of starting C, one and two threads.
        for (M, K, N) in [(32, 32, 32), (1, 64, 32), (45, 96, 64), (77, 192, 288), (200, 768, 64)] {
            for (bias, accumulate) in [(false, false), (true, false), (false, true), (true, true)] {
                try check(M: M, K: K, N: N, transposed: true, bias: bias, accumulate: accumulate, threads: 2)
            }
            try check(M: M, K: K, N: N, transposed: false, bias: false, accumulate: false, threads: 1)
        }
    }

    func testPackingPadsKWithZeros() {
        // K = 40 packs to 64 rows: the 24 padding rows are zero (a tile reading them adds nothing).
        let K = 40, N = 32
        let w = values(K * N, 5)
        var rows = [UInt16](repeating: 0xFFFF, count: AMX.packedCount(k: K, n: N))
        var transposed = rows
        amxPackRows(&rows, w, k: K, n: N)
        amxPackTransposed(&transposed, w, n: N, k: K)
        for s in 0..<2 {
            for k in K..<64 {
                for j in 0..<16 {
                    let i = s * 64 * 16 + (k >> 1) * 32 + j * 2 + (k & 1)
                    XCTAssertEqual(rows[i], 0); XCTAssertEqual(transposed[i], 0)
                }
            }
        }
        XCTAssertFalse(rows.contains(0xFFFF)); XCTAssertFalse(transposed.contains(0xFFFF))
        // The input-gradient packing made from the forward one equals packing W's rows directly.
        let (N2, K2) = (64, 96)
        let w2 = values(N2 * K2, 6)
        var forward = [UInt16](repeating: 0, count: N2 * K2), direct = forward, moved = forward
        amxPackTransposed(&forward, w2, n: N2, k: K2)
        amxPackRows(&direct, w2, k: N2, n: K2)
        amxRepackForInputGradient(&moved, forward, n: N2, k: K2)
        XCTAssertEqual(moved, direct)
        XCTAssertTrue(AMX.fits(k: 768, n: 2304)); XCTAssertFalse(AMX.fits(k: 40, n: 32)); XCTAssertFalse(AMX.fits(k: 32, n: 48))
    }
}
