import XCTest
import AIMTensor

/// Swin's window attention with its products in bf16 (a bf16 model's windows longer than 16
/// tokens): as far from the fp32 kernels as the bf16 attention of the frames is, with the bias,
/// the shift mask, an offset first window and more windows than one chunk; the bias gradient
/// (dScores) too; and which windows run so.
final class WindowAttentionBF16Tests: XCTestCase {
    private struct Window {
        let S: Int, L: Int, D: Int, H: Int, G: Int, first: Int
        let data: AttentionCase
        let bias: [Float], mask: [Float]

        init(S: Int, L: Int, D: Int, H: Int, G: Int, first: Int) {
            self.S = S; self.L = L; self.D = D; self.H = H; self.G = G; self.first = first
            data = AttentionCase(sequences: S, length: L, width: D, heads: H)
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15   // a fixed bias in [-1, 1)
            bias = (0..<(H * L * L)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(state >> 40) / Float(1 << 23) - 1
            }
            // The last half of the groups mask the first half of the tokens off from the second (−100), as shifted windows do.
            var m = [Float](repeating: 0, count: G * L * L)
            for w in (G / 2)..<G { for i in 0..<L { for j in 0..<L where (i < L / 2) != (j < L / 2) { m[(w * L + i) * L + j] = -100 } } }
            mask = m
        }

        /// Output, q | k | v gradient and score gradient by the bf16 kernels or the fp32 ones.
        func run(bf16: Bool) throws -> (out: [Float], dQKV: [Float], dScores: [Float]) {
            var out = [Float](repeating: .nan, count: S * L * D), dQKV = [Float](repeating: .nan, count: S * L * 3 * D)
            var dScores = [Float](repeating: .nan, count: S * H * L * L)
            var workspace = [Float](repeating: 0, count: windowAttentionWorkspace(sequences: S, length: L, heads: H))
            let (qkv, dOut) = (data.qkv, data.dOut)
            try workspace.withUnsafeMutableBufferPointer { ws in
                try out.withUnsafeMutableBufferPointer { o in
                    if bf16 {
                        try windowAttentionForwardBF16(out: o.baseAddress!, qkv: qkv, bias: bias, mask: mask, maskGroups: G, firstWindow: first,
                                                       sequences: S, length: L, width: D, heads: H, workspace: ws.baseAddress!)
                    } else {
                        try windowAttentionForward(out: o.baseAddress!, qkv: qkv, probs: nil, bias: bias, mask: mask, maskGroups: G,
                                                   firstWindow: first, sequences: S, length: L, width: D, heads: H, workspace: ws.baseAddress!)
                    }
                }
                try dQKV.withUnsafeMutableBufferPointer { d in
                    try dScores.withUnsafeMutableBufferPointer { s in
                        if bf16 {
                            try windowAttentionBackwardBF16(dQKV: d.baseAddress!, dScores: s.baseAddress!, dOut: dOut, qkv: qkv, bias: bias,
                                                            mask: mask, maskGroups: G, firstWindow: first, sequences: S, length: L, width: D,
                                                            heads: H, workspace: ws.baseAddress!)
                        } else {
                            try windowAttentionBackward(dQKV: d.baseAddress!, dScores: s.baseAddress!, dOut: dOut, qkv: qkv, probs: nil,
                                                        bias: bias, mask: mask, maskGroups: G, firstWindow: first, sequences: S, length: L,
                                                        width: D, heads: H, workspace: ws.baseAddress!)
                        }
                    }
                }
            }
            return (out, dQKV, dScores)
        }
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(BF16Support.isAvailable, "no bf16 products on this machine: \(BF16Support.unavailableReason ?? "")")
    }

    /// Within the bounds the frames' bf16 attention keeps to fp32 (AttentionOneDNNTests), and not
    /// the fp32 bits (so the products did run in bf16). 49-token windows (Swin's 7 × 7), head width
    /// 32; 120 windows are three chunks of 54 and a part, the mask groups counted from window 3.
    func testMatchesFP32WithBiasMaskAndChunks() throws {
        try XCTSkipUnless(windowAttentionRunsInBF16(length: 49, width: 64, heads: 2), "oneDNN has no bf16 kernel for these windows here")
        let w = Window(S: 120, L: 49, D: 64, H: 2, G: 16, first: 3)
        let got = try w.run(bf16: true), want = try w.run(bf16: false)
        w.data.assertClose((got.out, got.dQKV), (want.out, want.dQKV), rms: 3e-3, max: 6e-3, "bf16 windows")
        let ds = AttentionCase.relativeErrors(got.dScores, want.dScores)
        XCTAssertLessThan(ds.rms, 1e-2, "score gradients: \(ds)")
        XCTAssertLessThan(ds.max, 2e-2, "score gradients: \(ds)")
        XCTAssertGreaterThan(AttentionCase.relativeErrors(got.out, want.out).rms, 1e-5, "the bf16 kernels gave the fp32 bits")
        XCTAssertFalse(got.out.contains { !$0.isFinite } || got.dQKV.contains { !$0.isFinite }, "an entry left unwritten or not finite")
    }

    /// One thread and two give the same bits (the row passes split by whole (window, head) pairs).
    func testThreadCountDoesNotChangeTheBits() throws {
        try XCTSkipUnless(windowAttentionRunsInBF16(length: 49, width: 128, heads: 4), "oneDNN has no bf16 kernel for these windows here")
        let w = Window(S: 9, L: 49, D: 128, H: 4, G: 9, first: 0)
        let saved = Threads.count
        defer { Threads.set(saved) }
        Threads.set(1)
        let one = try w.run(bf16: true)
        Threads.set(2)
        let two = try w.run(bf16: true)
        XCTAssertEqual(one.out, two.out)
        XCTAssertEqual(one.dQKV, two.dQKV)
        XCTAssertEqual(one.dScores, two.dScores)
    }

    /// q | k | v given already in bf16 (as a bf16 qkv projection writes them) give the bits of fp32
    /// rows rounded chunk by chunk: 120 windows in three chunks and a part, values not bf16-exact.
    func testBF16RowsGiveTheBitsOfFP32RowsRounded() throws {
        try XCTSkipUnless(windowAttentionRunsInBF16(length: 49, width: 64, heads: 2), "oneDNN has no bf16 kernel for these windows here")
        let (S, L, D, H, G) = (120, 49, 64, 2, 16)
        let w = Window(S: S, L: L, D: D, H: H, G: G, first: 5)
        let qkv = w.data.qkv.map { $0 * 1.0037 }
        var qkv16 = [UInt16](repeating: 0, count: qkv.count)
        toBF16(&qkv16, qkv, count: qkv.count)
        var results: [[Float]] = []
        func run(_ rows: AttentionQKVRows) throws {
            var out = [Float](repeating: .nan, count: S * L * D), dQKV = [Float](repeating: .nan, count: S * L * 3 * D)
            var workspace = [Float](repeating: 0, count: windowAttentionWorkspace(sequences: S, length: L, heads: H))
            try windowAttentionForwardBF16(out: &out, qkvRows: rows, bias: w.bias, mask: w.mask, maskGroups: G, firstWindow: 5,
                                           sequences: S, length: L, width: D, heads: H, workspace: &workspace)
            try windowAttentionBackwardBF16(dQKV: &dQKV, dScores: nil, dOut: w.data.dOut, qkvRows: rows, bias: w.bias, mask: w.mask,
                                            maskGroups: G, firstWindow: 5, sequences: S, length: L, width: D, heads: H, workspace: &workspace)
            results.append(out + dQKV)
        }
        try qkv.withUnsafeBufferPointer { try run(.fp32($0.baseAddress!)) }
        try qkv16.withUnsafeBufferPointer { try run(.bf16($0.baseAddress!)) }
        XCTAssertEqual(results[0], results[1])
        XCTAssertFalse(results[0].contains { !$0.isFinite })
    }

    func testWhichWindowsRunInBF16() {
        XCTAssertFalse(windowAttentionRunsInBF16(length: 16, width: 128, heads: 4), "16-token windows take the fused fp32 kernels")
        XCTAssertFalse(windowAttentionRunsInBF16(length: 49, width: 130, heads: 4), "heads must divide the width")
        XCTAssertTrue(windowAttentionRunsInBF16(length: 49, width: 128, heads: 4), "Swin-B's first stage on a CPU with bf16 products")
    }
}
