import XCTest
import AIMTensor

/// The bf16 attention through oneDNN (CPUs with AVX512_BF16 and no AMX tiles): the same roundings
/// as the tile attention (checked against a scalar reference that has only those), the same
/// distance from fp32 as the tiles, and the choice of kernel per sequence length.
final class AttentionOneDNNTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(BF16Support.isAvailable, "no bf16 products on this machine: \(BF16Support.unavailableReason ?? "")")
    }

    private var oneDNN: (forward: AttentionCase.Forward, backward: AttentionCase.Backward) {
        ({ attentionForwardOneDNN(out: $0, qkv: $1, sequences: $2, length: $3, width: $4, heads: $5) },
         { attentionBackwardOneDNN(dQKV: $0, dOut: $1, qkv: $2, sequences: $3, length: $4, width: $5, heads: $6) })
    }

    private func withThreads(_ n: Int, _ body: () -> Void) {
        let saved = Threads.count
        Threads.set(n)
        defer { Threads.set(saved) }
        body()
    }

    /// Rounds where autocast rounds and nowhere else. Head width 32 and L = 70 (padding columns
    /// 70..<80 in the score buffers), two sequences (the buffers are reused).
    func testRoundsLikeTheEmulatedReference() throws {
        try XCTSkipUnless(attentionRunsOnOneDNN(length: 70, width: 96, heads: 3), "oneDNN has no bf16 kernel for these products here")
        let c = AttentionCase(sequences: 2, length: 70, width: 96, heads: 3)
        withThreads(2) { c.assertClose(c.run(oneDNN.forward, oneDNN.backward), c.emulatedBF16(), rms: 1e-4, max: 1e-3, "oneDNN vs emulated") }
    }

    /// As far from fp32 as the tile attention is (its test's bounds), at the frames' length, one
    /// thread and two, and with a head width that is no multiple of 16.
    func testFrameLengthSequencesMatchFP32() throws {
        for (S, L, D, H, threads) in [(2, 197, 128, 2, 2), (1, 197, 120, 3, 1), (1, 64, 256, 2, 2)] {
            try XCTSkipUnless(attentionRunsOnOneDNN(length: L, width: D, heads: H), "oneDNN has no bf16 kernel for L=\(L) D=\(D) H=\(H) here")
            let c = AttentionCase(sequences: S, length: L, width: D, heads: H)
            withThreads(threads) { c.assertClose(c.run(oneDNN.forward, oneDNN.backward), c.fp32(), rms: 3e-3, max: 6e-3, "oneDNN L=\(L) D=\(D)") }
        }
    }

    /// With sequences enough for every thread, each thread runs whole sequences alone on its own
    /// oneDNN lane; that gives what one sequence at a time with all threads on it gives.
    /// (L = 65, head width 32: where oneDNN's shared scratchpad made two lanes overwrite each other
    /// before each lane had its own.)
    func testSequencesSplitOverThreadsMatchOneAtATime() throws {
        for (S, L, D, H) in [(4, 197, 128, 2), (4, 65, 64, 2)] { try checkSplit(S: S, L: L, D: D, H: H) }
    }

    private func checkSplit(S: Int, L: Int, D: Int, H: Int) throws {
        try XCTSkipUnless(attentionRunsOnOneDNN(length: L, width: D, heads: H), "oneDNN has no bf16 kernel for L=\(L) D=\(D) H=\(H) here")
        let qkv = randomTensor([S, L, 3 * D], seed: 31), dOut = randomTensor([S, L, D], seed: 32)
        let split = (Tensor([S, L, D]), Tensor([S, L, 3 * D])), single = (Tensor([S, L, D]), Tensor([S, L, 3 * D]))
        withThreads(2) {
            attentionForwardOneDNN(out: split.0.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
            attentionBackwardOneDNN(dQKV: split.1.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
            for s in 0..<S {
                attentionForwardOneDNN(out: single.0.data + s * L * D, qkv: qkv.data + s * L * 3 * D, sequences: 1, length: L, width: D, heads: H)
                attentionBackwardOneDNN(dQKV: single.1.data + s * L * 3 * D, dOut: dOut.data + s * L * D, qkv: qkv.data + s * L * 3 * D,
                                        sequences: 1, length: L, width: D, heads: H)
            }
        }
        for (name, a, b) in [("out", split.0.array, single.0.array), ("dQKV", split.1.array, single.1.array)] {
            let scale = b.map { abs($0) }.max() ?? 1
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0, name)
            XCTAssertLessThanOrEqual(worst, 1e-6 * scale, "\(name), L=\(L): split over threads vs one sequence at a time")
        }
    }

    /// The output and the q|k|v gradients written in bf16 are bit for bit the fp32 ones rounded by
    /// `toBF16`, split over threads or not.
    func testRoundedResultsAreTheFP32OnesRounded() throws {
        for (S, L, D, H, threads) in [(2, 197, 128, 2, 2), (1, 197, 128, 2, 2), (3, 197, 128, 2, 1), (4, 65, 64, 2, 1), (1, 65, 64, 2, 2), (4, 65, 64, 2, 2)] {
            try XCTSkipUnless(attentionRunsOnOneDNN(length: L, width: D, heads: H), "oneDNN has no bf16 kernel for L=\(L) D=\(D) H=\(H) here")
            let qkv = randomTensor([S, L, 3 * D], seed: 41), dOut = randomTensor([S, L, D], seed: 42)
            let out = Tensor([S, L, D]), dqkv = Tensor([S, L, 3 * D])
            var rounded = [UInt16](repeating: 0, count: S * L * D), roundedGrad = [UInt16](repeating: 0, count: S * L * 3 * D)
            var expected = rounded, expectedGrad = roundedGrad
            withThreads(threads) {
                attentionForwardOneDNN(out: out.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
                attentionBackwardOneDNN(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
                attentionForwardOneDNN(out: out.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H, roundedOut: &rounded)
                attentionBackwardOneDNN(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H,
                                        roundedDQKV: &roundedGrad)
            }
            toBF16(&expected, out.data, count: S * L * D)
            toBF16(&expectedGrad, dqkv.data, count: S * L * 3 * D)
            XCTAssertEqual(rounded, expected, "output, S=\(S) L=\(L) D=\(D) threads=\(threads)")
            XCTAssertEqual(roundedGrad, expectedGrad, "q|k|v gradients, S=\(S) L=\(L) D=\(D) threads=\(threads)")
            XCTAssertNotEqual(Set(expected).count, 1, "a degenerate output")
        }
    }

    /// q | k | v given already in bf16 (as a frozen in_proj writes them) give the bits of the fp32
    /// rows rounded per sequence, forward and backward, split over threads or not.
    func testBF16RowsGiveTheBitsOfFP32RowsRounded() throws {
        for (S, L, D, H, threads) in [(2, 197, 128, 2, 2), (3, 65, 64, 2, 1), (4, 65, 64, 2, 2)] {
            try XCTSkipUnless(attentionRunsOnOneDNN(length: L, width: D, heads: H), "oneDNN has no bf16 kernel for L=\(L) D=\(D) H=\(H) here")
            let qkv = randomTensor([S, L, 3 * D], seed: 43), dOut = randomTensor([S, L, D], seed: 44)
            var qkv16 = [UInt16](repeating: 0, count: S * L * 3 * D)
            toBF16(&qkv16, qkv.data, count: qkv16.count)
            let out = Tensor([S, L, D]), dqkv = Tensor([S, L, 3 * D]), out16 = Tensor([S, L, D]), dqkv16 = Tensor([S, L, 3 * D])
            var rounded = [UInt16](repeating: 0, count: S * L * 3 * D), rounded16 = rounded
            withThreads(threads) {
                attentionForwardOneDNN(out: out.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
                attentionBackwardOneDNN(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H)
                attentionBackwardOneDNN(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H,
                                        roundedDQKV: &rounded)
                qkv16.withUnsafeBufferPointer { q in
                    attentionForwardOneDNN(out: out16.data, qkvRows: .bf16(q.baseAddress!), sequences: S, length: L, width: D, heads: H)
                    attentionBackwardOneDNN(dQKV: dqkv16.data, dOut: dOut.data, qkvRows: .bf16(q.baseAddress!), sequences: S, length: L,
                                            width: D, heads: H)
                    attentionBackwardOneDNN(dQKV: dqkv16.data, dOut: dOut.data, qkvRows: .bf16(q.baseAddress!), sequences: S, length: L,
                                            width: D, heads: H, roundedDQKV: &rounded16)
                }
            }
            XCTAssertEqual(out16.array, out.array, "output, S=\(S) L=\(L) threads=\(threads)")
            XCTAssertEqual(dqkv16.array, dqkv.array, "q|k|v gradients, S=\(S) L=\(L) threads=\(threads)")
            XCTAssertEqual(rounded16, rounded, "q|k|v gradients in bf16, S=\(S) L=\(L) threads=\(threads)")
            XCTAssertGreaterThan(out.array.map { abs($0) }.max() ?? 0, 0)
        }
    }

    /// Where the CPU has AMX the two bf16 paths differ only in the order of fp32 sums.
    func testAgreesWithTheTiles() throws {
        try XCTSkipUnless(BF16Products.tiles, "no AMX tile products on this machine: \(BF16Products.description)")
        let c = AttentionCase(sequences: 2, length: 197, width: 128, heads: 2)
        let tiles = c.run({ attentionForwardTiles(out: $0, qkv: $1, sequences: $2, length: $3, width: $4, heads: $5) },
                          { attentionBackwardTiles(dQKV: $0, dOut: $1, qkv: $2, sequences: $3, length: $4, width: $5, heads: $6) })
        c.assertClose(c.run(oneDNN.forward, oneDNN.backward), tiles, rms: 1e-4, max: 1e-3, "oneDNN vs tiles")
    }

    /// The frames' sequences of ViT-B/16 run in bf16 wherever bf16 products do; the temporal pass
    /// (8 frames) stays fp32; the model's entry points take the tiles where they run.
    func testWhichSequencesRunInBF16() {
        XCTAssertTrue(attentionRunsInBF16(length: 197, width: 768, heads: 12))
        XCTAssertFalse(attentionRunsInBF16(length: 8, width: 768, heads: 12))
        XCTAssertFalse(attentionRunsOnOneDNN(length: 8, width: 768, heads: 12))
        XCTAssertEqual(attentionRunsInBF16(length: 197, width: 768, heads: 12),
                       attentionRunsOnTiles(length: 197, headWidth: 64) || attentionRunsOnOneDNN(length: 197, width: 768, heads: 12))
    }
}
