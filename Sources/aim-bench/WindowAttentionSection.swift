import AIMTensor

/// Swin's window attention on the shapes of one Swin-B step (32 frames → 16 temporal tokens,
/// 224²): the kernel that dominated the Swin step's profile, measured alone in GFLOP/s.
struct WindowAttentionSection: BenchSection {
    let title = "Swin-B window attention kernels (32×224², batch 1)"
    let summary = """
        GFLOP/s counts the two batched matrix products (forward 4·S·L²·D, backward 8·S·L²·D); the bias add, \
        softmax and its backward are included in the time. bf16 rows: what a bf16 model runs for windows of more than \
        16 tokens (products in bf16, q | k | v given in fp32 and rounded per chunk here), alternating with the fp32 kernels. S windows of L tokens, D channels, H heads, G mask groups \
        (the windows of one sample of a shifted stage each add their own −100 mask; half of them are masked here).
        """

    func run(_ context: BenchContext) throws -> [BenchTable] {
        var t = BenchTable(title: "Window attention", columns: ["shape", "S × L, D / H", "direction", "ms (min/med/max)", "GFLOP/s"])
        let shapes: [(String, Int, Int, Int, Int, Int)] = [
            ("AIM Swin stage 1, shifted 7×7 windows", 16 * 64, 49, 128, 4, 64),
            ("AIM Swin stage 3, shifted 7×7 windows", 16 * 4, 49, 512, 16, 4),
            ("AIM Swin stage 1, temporal (16 tokens per position)", 56 * 56, 16, 128, 4, 1),
            ("AIM Swin stage 3, temporal (16 tokens per position)", 14 * 14, 16, 512, 16, 1),
            ("AIM Swin stage 1, temporal, 16-frame clips (8 tokens)", 56 * 56, 8, 128, 4, 1),
            ("AIM Swin stage 3, temporal, 16-frame clips (8 tokens)", 14 * 14, 8, 512, 16, 1),
            ("VideoSwin stage 1, shifted 8×7×7 windows", 128, 392, 128, 4, 128),
            ("VideoSwin stage 3, shifted 8×7×7 windows", 8, 392, 512, 16, 8),
        ]
        for (name, S, L, D, H, G) in shapes {
            context.log("window attention: \(name)")
            let qkv = Buffer(S * L * 3 * D, seed: 9), out = Buffer(S * L * D), probs = Buffer(S * H * L * L)
            let bias = Buffer(H * L * L, seed: 11), mask = Buffer(G * L * L), dOut = Buffer(S * L * D, seed: 10), dqkv = Buffer(S * L * 3 * D)
            shiftMask(mask.data, groups: G, length: L)
            let flops = 4.0 * Double(S) * Double(L * L) * Double(D)
            let ws = Buffer(windowAttentionWorkspace(sequences: S, length: L, heads: H))
            let m = G > 1 ? UnsafePointer(mask.data) : nil
            // Windows of ≤ 16 tokens run the fused kernels; the batched-GEMM path they replaced runs beside them.
            let short = L <= ShortWindowAttention.maxLength
            func batched(_ body: () throws -> Void) rethrows {
                ShortWindowAttention.enabled = false
                defer { ShortWindowAttention.enabled = true }
                try body()
            }
            // A bf16 model's windows of more than 16 tokens (never short ones) run their products in bf16, not kept, as the model runs them.
            let bf16 = windowAttentionRunsInBF16(length: L, width: D, heads: H)
            let r = try timeSideBySide(repeats: context.repeats, throwing: [
                { try windowAttentionForward(out: out.data, qkv: qkv.data, probs: probs.data, bias: bias.data, mask: m, maskGroups: G,
                                             sequences: S, length: L, width: D, heads: H, workspace: ws.data) },
                { try windowAttentionBackward(dQKV: dqkv.data, dScores: nil, dOut: dOut.data, qkv: qkv.data, probs: probs.data,
                                              sequences: S, length: L, width: D, heads: H, workspace: ws.data) },
                { try windowAttentionForward(out: out.data, qkv: qkv.data, probs: nil, bias: bias.data, mask: m, maskGroups: G,
                                             sequences: S, length: L, width: D, heads: H, workspace: ws.data) },
                { try windowAttentionBackward(dQKV: dqkv.data, dScores: nil, dOut: dOut.data, qkv: qkv.data, probs: nil,
                                              bias: bias.data, mask: m, maskGroups: G, sequences: S, length: L, width: D, heads: H,
                                              workspace: ws.data) },
            ] + (!short ? [] : [
                { try batched { try windowAttentionForward(out: out.data, qkv: qkv.data, probs: nil, bias: bias.data, mask: m, maskGroups: G,
                                                           sequences: S, length: L, width: D, heads: H, workspace: ws.data) } },
                { try batched { try windowAttentionBackward(dQKV: dqkv.data, dScores: nil, dOut: dOut.data, qkv: qkv.data, probs: nil,
                                                            bias: bias.data, mask: m, maskGroups: G, sequences: S, length: L, width: D,
                                                            heads: H, workspace: ws.data) } },
            ]) + (!bf16 ? [] : [
                { try windowAttentionForwardBF16(out: out.data, qkv: qkv.data, bias: bias.data, mask: m, maskGroups: G,
                                                 sequences: S, length: L, width: D, heads: H, workspace: ws.data) },
                { try windowAttentionBackwardBF16(dQKV: dqkv.data, dScores: nil, dOut: dOut.data, qkv: qkv.data, bias: bias.data, mask: m,
                                                  maskGroups: G, sequences: S, length: L, width: D, heads: H, workspace: ws.data) },
            ]))
            let shape = "\(S) × \(L), \(D) / \(H)"
            let ops = BatchedOperand([S, H, L, D / H], strides: [L * 3 * D, D / H, 3 * D, 1])
            let impl = (try? batchedMatmulImplementation(ops, ops.transposed, .dense(S, H, L, L))) ?? "?"
            t.rows.append([name, shape, "forward, probabilities kept", msTriple(r[0]), fixed(flops / r[0].median * 1e-9)])
            t.rows.append([name, shape, "backward from kept probabilities", msTriple(r[1]), fixed(2 * flops / r[1].median * 1e-9)])
            t.rows.append([name, shape, "forward, probabilities not kept (the model's)", msTriple(r[2]), fixed(flops / r[2].median * 1e-9)])
            t.rows.append([name, shape, "backward recomputing them (the model's)", msTriple(r[3]), fixed(2 * flops / r[3].median * 1e-9)])
            t.rows.append([name, shape, "forward + backward: recomputing ÷ kept", "", fixed((r[2].median + r[3].median) / (r[0].median + r[1].median), 2) + "×"])
            if bf16 {
                t.rows.append([name, shape, "forward in bf16 (a bf16 model's)", msTriple(r[4]), fixed(flops / r[4].median * 1e-9)])
                t.rows.append([name, shape, "backward in bf16, recomputing (a bf16 model's)", msTriple(r[5]), fixed(2 * flops / r[5].median * 1e-9)])
                t.rows.append([name, shape, "forward + backward: fp32 (the model's) ÷ bf16", "",
                               fixed((r[2].median + r[3].median) / (r[4].median + r[5].median), 2) + "×"])
            }
            if short {
                t.rows.append([name, shape, "forward, batched-GEMM path (not kept)", msTriple(r[4]), fixed(flops / r[4].median * 1e-9)])
                t.rows.append([name, shape, "backward, batched-GEMM path (recomputing)", msTriple(r[5]), fixed(2 * flops / r[5].median * 1e-9)])
                t.rows.append([name, shape, "forward + backward: batched path ÷ fused (the model's)", "",
                               fixed((r[4].median + r[5].median) / (r[2].median + r[3].median), 2) + "×"])
                t.notes.append("\(name): the model runs the fused ≤ 16-token kernels; the batched path's oneDNN product is \(impl).")
            } else {
                t.notes.append("\(name): oneDNN's batched product is \(impl).")
            }
        }
        return [t]
    }
}

/// A shifted window's −100 mask [G, L, L] on the last half of the groups (the windows at the sample's
/// far edges): the first half of the tokens apart from the second half, as in a window that
/// straddles the cyclic shift. Its probabilities underflow, which the kernels must absorb.
private func shiftMask(_ mask: UnsafeMutablePointer<Float>, groups G: Int, length L: Int) {
    mask.update(repeating: 0, count: G * L * L)
    for g in (G / 2)..<G { for i in 0..<L { for j in 0..<L where (i < L / 2) != (j < L / 2) { mask[(g * L + i) * L + j] = -100 } } }
}
