import XCTest
import AIMTensor

/// The bf16 tile attention against the fp32 kernels on the same (bf16-exact) q, k, v and output
/// gradient: what remains is the rounding of the probabilities and score gradients to bf16 as
/// product operands, and the summation order (measured: 0.15–0.17 % RMS, at most 0.24 % of the
/// largest value, for each of the output and the three gradients).
final class AttentionTilesTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(BF16Products.tiles, "no AMX tile products on this machine: \(BF16Products.description)")
    }

    private func check(sequences S: Int, length L: Int, width D: Int, heads H: Int, threads: Int) throws {
        let saved = Threads.count
        Threads.set(threads)
        defer { Threads.set(saved) }
        XCTAssertTrue(attentionRunsOnTiles(length: L, headWidth: D / H))
        let c = AttentionCase(sequences: S, length: L, width: D, heads: H)
        c.assertClose(c.run(tiles.forward, tiles.backward), c.fp32(), rms: 3e-3, max: 6e-3, "tiles L=\(L)")
    }

    func testFrameLengthSequencesMatchFP32() throws { try check(sequences: 2, length: 197, width: 128, heads: 2, threads: 2) }
    func testShortPaddedSequencesOneThread() throws { try check(sequences: 3, length: 70, width: 96, heads: 3, threads: 1) }
    func testWholeBlocksWideHeads() throws { try check(sequences: 1, length: 64, width: 256, heads: 2, threads: 2) }

    /// Rounds where autocast rounds and nowhere else: against a scalar reference with only those roundings.
    func testRoundsLikeTheEmulatedReference() {
        let c = AttentionCase(sequences: 2, length: 70, width: 96, heads: 3)
        c.assertClose(c.run(tiles.forward, tiles.backward), c.emulatedBF16(), rms: 1e-4, max: 1e-3, "tiles vs emulated")
    }

    /// The bench's bare products for the bf16 roofline really multiply every pair (k padded to 32s).
    func testBareProductsForTheRooflineMultiplyEveryPair() {
        for (m, n, k) in [(197, 197, 64), (197, 64, 197)] {
            let products = AttentionTileProducts(m: m, n: n, k: k, pairs: 5)
            products.run()
            let expected = Float((k + 31) / 32 * 32) / 2
            for pair in [0, 4] {
                XCTAssertEqual(products.result(pair: pair, row: 0, column: 0), expected, "\(m)×\(k)·\(k)×\(n) pair \(pair)")
                XCTAssertEqual(products.result(pair: pair, row: 223, column: (n + 31) / 32 * 32 - 1), expected)
            }
        }
    }

    func testTemporalAndNarrowHeadsStayFP32() {
        XCTAssertFalse(attentionRunsOnTiles(length: 8, headWidth: 64))
        XCTAssertFalse(attentionRunsOnTiles(length: 197, headWidth: 48))
    }

    private var tiles: (forward: AttentionCase.Forward, backward: AttentionCase.Backward) {
        ({ attentionForwardTiles(out: $0, qkv: $1, sequences: $2, length: $3, width: $4, heads: $5) },
         { attentionBackwardTiles(dQKV: $0, dOut: $1, qkv: $2, sequences: $3, length: $4, width: $5, heads: $6) })
    }
}
