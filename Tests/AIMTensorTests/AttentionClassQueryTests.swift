import XCTest
import AIMTensor

/// The class-query attention (each sequence's first row as the only query, the last ViT block's)
/// gives the full attention's first output row and, for an output gradient on the first rows
/// alone, the full attention's q | k | v gradients: in fp32, with the bf16 attention's roundings,
/// and reading bf16 q | k | v as the short-sequence kernel does. Checked against the full kernels
/// and the emulated bf16 reference, which need no particular CPU.
final class AttentionClassQueryTests: XCTestCase {
    /// A case whose output gradient is zero past each sequence's first row (nothing reads the others).
    private func firstRowsCase(sequences S: Int, length L: Int, width D: Int, heads H: Int) -> AttentionCase {
        var c = AttentionCase(sequences: S, length: L, width: D, heads: H)
        for s in 0..<S { for i in (s * L + 1) * D..<((s + 1) * L * D) { c.dOut[i] = 0 } }
        return c
    }

    /// The full result cut to what the class queries give: output row 0 of each sequence, every dQKV row.
    private func firstRows(_ full: (out: [Float], dQKV: [Float]), _ c: AttentionCase) -> (out: [Float], dQKV: [Float]) {
        let (L, D) = (c.length, c.width)
        return ((0..<c.sequences).flatMap { full.out[($0 * L * D)..<($0 * L * D + D)] }, full.dQKV)
    }

    /// The output gradient of each sequence's first row, [S, D], as the class-query backward takes it.
    private func firstRowGradients(_ c: AttentionCase) -> [Float] {
        (0..<c.sequences).flatMap { c.dOut[($0 * c.length * c.width)..<($0 * c.length * c.width + c.width)] }
    }

    /// The class-query kernels on `c`, with q | k | v in fp32 or as bf16 bits; outputs start as NaN.
    private func classQueries(_ c: AttentionCase, inBF16: Bool, qkvBF16: Bool = false) -> (out: [Float], dQKV: [Float]) {
        let (S, L, D, H) = (c.sequences, c.length, c.width, c.heads)
        var out = [Float](repeating: .nan, count: S * D), d = [Float](repeating: .nan, count: S * L * 3 * D)
        let bits = c.qkv.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
        let dOut = firstRowGradients(c)
        c.qkv.withUnsafeBufferPointer { q32 in
            bits.withUnsafeBufferPointer { q16 in
                let qkv: AttentionQKVRows = qkvBF16 ? .bf16(q16.baseAddress!) : .fp32(q32.baseAddress!)
                out.withUnsafeMutableBufferPointer {
                    classQueryAttentionForward(out: $0.baseAddress!, qkv: qkv, sequences: S, length: L, width: D, heads: H, inBF16: inBF16)
                }
                d.withUnsafeMutableBufferPointer {
                    classQueryAttentionBackward(dQKV: $0.baseAddress!, dOut: dOut, qkv: qkv, sequences: S, length: L, width: D, heads: H,
                                                inBF16: inBF16)
                }
            }
        }
        return (out, d)
    }

    /// The fp32 kernels' first rows, at a ViT frame's length and a short one, a head width no multiple of 16.
    func testFP32GivesTheFullAttentionsFirstRows() {
        for (S, L, D, H) in [(3, 197, 128, 2), (2, 37, 96, 3), (2, 5, 64, 1)] {
            let c = firstRowsCase(sequences: S, length: L, width: D, heads: H)
            let worst = c.assertClose(classQueries(c, inBF16: false), firstRows(c.fp32(), c), rms: 1e-6, max: 1e-5, "fp32 L=\(L)")
            XCTAssertLessThan(worst.max, 1e-5)
        }
    }

    /// With the bf16 roundings: the emulated reference's first rows (the bounds of the oneDNN and
    /// tile attentions against it), from fp32 q | k | v and from the same values in bf16, which give
    /// the same bits.
    func testBF16RoundsLikeTheEmulatedReference() {
        for (S, L, D, H) in [(2, 197, 128, 2), (2, 70, 96, 3)] {
            let c = firstRowsCase(sequences: S, length: L, width: D, heads: H)
            let fromFP32 = classQueries(c, inBF16: true), fromBF16 = classQueries(c, inBF16: true, qkvBF16: true)
            c.assertClose(fromFP32, firstRows(c.emulatedBF16(), c), rms: 1e-4, max: 1e-3, "bf16 L=\(L)")
            XCTAssertEqual(fromFP32.out, fromBF16.out, "L=\(L): rounding fp32 q | k | v gives the bf16 ones")
            XCTAssertEqual(fromFP32.dQKV, fromBF16.dQKV, "L=\(L)")
            // Rounding matters here: without it the results are further off than the bound.
            let unrounded = classQueries(c, inBF16: false)
            XCTAssertGreaterThan(AttentionCase.relativeErrors(unrounded.out, fromFP32.out).max, 1e-4, "L=\(L): the roundings took effect")
        }
    }

    /// bf16 q | k | v without the bf16 roundings (a bf16 model's short sequences): the fp32 result
    /// of the same values, since nothing else is rounded.
    func testBF16InputsAloneGiveTheFP32Result() {
        let c = firstRowsCase(sequences: 2, length: 9, width: 64, heads: 2)
        c.assertClose(classQueries(c, inBF16: false, qkvBF16: true), firstRows(c.fp32(), c), rms: 1e-6, max: 1e-5, "bf16 q | k | v, fp32 arithmetic")
    }

    /// The rounded outputs are the fp32 ones rounded, bit for bit.
    func testRoundedOutputsAreTheFP32OnesRounded() {
        let (S, L, D, H) = (2, 197, 128, 2)
        let c = firstRowsCase(sequences: S, length: L, width: D, heads: H)
        let fp32 = classQueries(c, inBF16: true)
        var out16 = [UInt16](repeating: 0, count: S * D), d16 = [UInt16](repeating: 0, count: S * L * 3 * D)
        c.qkv.withUnsafeBufferPointer { q in
            out16.withUnsafeMutableBufferPointer {
                classQueryAttentionForward(out: nil, roundedOut: $0.baseAddress!, qkv: .fp32(q.baseAddress!), sequences: S, length: L,
                                           width: D, heads: H, inBF16: true)
            }
            d16.withUnsafeMutableBufferPointer {
                classQueryAttentionBackward(dQKV: nil, roundedDQKV: $0.baseAddress!, dOut: firstRowGradients(c), qkv: .fp32(q.baseAddress!), sequences: S,
                                            length: L, width: D, heads: H, inBF16: true)
            }
        }
        func rounded(_ x: [Float]) -> [UInt16] { x.map { UInt16(truncatingIfNeeded: Float(AttentionCase.bf16($0)).bitPattern >> 16) } }
        XCTAssertEqual(out16, rounded(fp32.out))
        XCTAssertEqual(d16, rounded(fp32.dQKV))
    }
}
