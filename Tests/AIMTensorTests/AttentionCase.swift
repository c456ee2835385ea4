import XCTest
import AIMTensor

/// One attention case for the bf16 attention tests: bf16-exact q | k | v [S, L, 3D] (amplitude 3:
/// scores spread over several units, so the softmax is far from uniform) and output gradient.
struct AttentionCase {
    let sequences: Int, length: Int, width: Int, heads: Int
    var qkv: [Float]
    var dOut: [Float]

    init(sequences S: Int, length L: Int, width D: Int, heads H: Int) {
        sequences = S; length = L; width = D; heads = H
        qkv = Self.bf16Exact(S * L * 3 * D, seed: 1, amplitude: 3)
        dOut = Self.bf16Exact(S * L * D, seed: 2, amplitude: 1)
    }

    typealias Forward = (_ out: UnsafeMutablePointer<Float>, _ qkv: UnsafePointer<Float>, _ S: Int, _ L: Int, _ D: Int, _ H: Int) -> Void
    typealias Backward = (_ dQKV: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ qkv: UnsafePointer<Float>,
                          _ S: Int, _ L: Int, _ D: Int, _ H: Int) -> Void

    /// The output and the q | k | v gradient by a kernel pair (outputs start as NaN: every entry must be written).
    func run(_ forward: Forward, _ backward: Backward) -> (out: [Float], dQKV: [Float]) {
        let (S, L, D, H) = (sequences, length, width, heads)
        var out = [Float](repeating: .nan, count: S * L * D), d = [Float](repeating: .nan, count: S * L * 3 * D)
        var x = qkv
        x.withUnsafeMutableBufferPointer { x in
            out.withUnsafeMutableBufferPointer { forward($0.baseAddress!, x.baseAddress!, S, L, D, H) }
            d.withUnsafeMutableBufferPointer { backward($0.baseAddress!, dOut, x.baseAddress!, S, L, D, H) }
        }
        return (out, d)
    }

    /// The fp32 kernels (Attention.swift).
    func fp32() -> (out: [Float], dQKV: [Float]) {
        run({ attentionForward(out: $0, qkv: $1, probs: nil, sequences: $2, length: $3, width: $4, heads: $5) },
            { attentionBackward(dQKV: $0, dOut: $1, qkv: $2, probs: nil, sequences: $3, length: $4, width: $5, heads: $6) })
    }

    /// A scalar reference with the bf16 attention's roundings and nothing else: sums in Double,
    /// the probabilities rounded to bf16 as P·V's and Pᵀ·dO's operand, scale·P ⊙ (dP − Σ P·dP)
    /// rounded to bf16 as dK's and dQ's operand.
    func emulatedBF16() -> (out: [Float], dQKV: [Float]) {
        let (S, L, D, H) = (sequences, length, width, heads)
        let dh = D / H, ld = 3 * D, scale = 1 / Double(dh).squareRoot()
        var out = [Float](repeating: 0, count: S * L * D), d = [Float](repeating: 0, count: S * L * 3 * D)
        for s in 0..<S {
            for h in 0..<H {
                func q(_ i: Int, _ c: Int) -> Double { Double(qkv[(s * L + i) * ld + h * dh + c]) }
                func k(_ i: Int, _ c: Int) -> Double { Double(qkv[(s * L + i) * ld + D + h * dh + c]) }
                func v(_ i: Int, _ c: Int) -> Double { Double(qkv[(s * L + i) * ld + 2 * D + h * dh + c]) }
                func g(_ i: Int, _ c: Int) -> Double { Double(dOut[(s * L + i) * D + h * dh + c]) }
                var p = [Double](repeating: 0, count: L * L)
                for i in 0..<L {
                    var row = (0..<L).map { j in scale * (0..<dh).reduce(0.0) { $0 + q(i, $1) * k(j, $1) } }
                    let m = row.max()!
                    row = row.map { Foundation.exp($0 - m) }
                    let sum = row.reduce(0, +)
                    for j in 0..<L { p[i * L + j] = row[j] / sum }
                }
                let p16 = p.map { Self.bf16(Float($0)) }
                var ds16 = [Double](repeating: 0, count: L * L)
                for i in 0..<L {
                    let dp = (0..<L).map { j in (0..<dh).reduce(0.0) { $0 + g(i, $1) * v(j, $1) } }
                    let dot = (0..<L).reduce(0.0) { $0 + p[i * L + $1] * dp[$1] }
                    for j in 0..<L { ds16[i * L + j] = Self.bf16(Float(scale * p[i * L + j] * (dp[j] - dot))) }
                }
                for i in 0..<L {
                    for c in 0..<dh {
                        var o = 0.0, dq = 0.0, dk = 0.0, dv = 0.0
                        for j in 0..<L {
                            o += p16[i * L + j] * v(j, c)
                            dq += ds16[i * L + j] * k(j, c)
                            dk += ds16[j * L + i] * q(j, c)
                            dv += p16[j * L + i] * g(j, c)
                        }
                        out[(s * L + i) * D + h * dh + c] = Float(o)
                        let row = (s * L + i) * ld + h * dh + c
                        d[row] = Float(dq); d[row + D] = Float(dk); d[row + 2 * D] = Float(dv)
                    }
                }
            }
        }
        return (out, d)
    }

    /// Asserts `got` within `rms` (relative RMS) and `max` (largest difference over the largest
    /// reference value) of `want`, for the output and each of dq, dk, dv; returns the worst of each.
    @discardableResult
    func assertClose(_ got: (out: [Float], dQKV: [Float]), _ want: (out: [Float], dQKV: [Float]), rms: Double, max: Double,
                     _ label: String, file: StaticString = #filePath, line: UInt = #line) -> (max: Double, rms: Double) {
        let D = width
        var worst = Self.relativeErrors(got.out, want.out)
        XCTAssertLessThan(worst.rms, rms, "\(label) output: \(worst)", file: file, line: line)
        XCTAssertLessThan(worst.max, max, "\(label) output: \(worst)", file: file, line: line)
        for (part, name) in ["q", "k", "v"].enumerated() {
            var a: [Float] = [], b: [Float] = []
            for r in 0..<(sequences * length) {
                let start = r * 3 * D + part * D
                a.append(contentsOf: got.dQKV[start..<(start + D)]); b.append(contentsOf: want.dQKV[start..<(start + D)])
            }
            let e = Self.relativeErrors(a, b)
            XCTAssertLessThan(e.rms, rms, "\(label) d\(name): \(e)", file: file, line: line)
            XCTAssertLessThan(e.max, max, "\(label) d\(name): \(e)", file: file, line: line)
            worst = (Swift.max(worst.max, e.max), Swift.max(worst.rms, e.rms))
        }
        return worst
    }

    static func relativeErrors(_ a: [Float], _ b: [Float]) -> (max: Double, rms: Double) {
        var maxDiff = 0.0, sq = 0.0, ref = 0.0, refMax = 0.0
        for (x, y) in zip(a, b) {
            let d = Double(x) - Double(y)
            maxDiff = Swift.max(maxDiff, d.isNaN ? .infinity : abs(d)); sq += d * d
            ref += Double(y) * Double(y); refMax = Swift.max(refMax, abs(Double(y)))
        }
        return (maxDiff / refMax, (sq / ref).squareRoot())
    }

    /// x rounded to the nearest bf16 (ties to even), as a Double.
    static func bf16(_ x: Float) -> Double {
        let u = x.bitPattern
        return Double(Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000))
    }

    private static func bf16Exact(_ n: Int, seed: UInt64, amplitude: Float) -> [Float] {
        var rng = SplitMix(seed)
        return (0..<n).map { _ in
            let x = (Float(rng.next() % 20001) / 10000 - 1) * amplitude
            return Float(bitPattern: x.bitPattern & 0xFFFF_0000)
        }
    }
}

private struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
