import AIMTensor

/// Memory-bound kernels in GB/s (bytes that must cross memory at least once) and attention in
/// GFLOP/s, on the shapes one AIM ViT-B/16 layer sees with 8 frames.
struct KernelSection: BenchSection {
    let title = "Non-GEMM kernels (AIM ViT-B/16, 8 frames)"
    let summary = """
        GB/s counts the floats each kernel must read and write once (LayerNorm forward: x in, y out; \
        backward: x, dy in, dx out; parameters and saved statistics are ignored). Attention GFLOP/s counts \
        the two batched matrix products (forward 4·S·L²·D, backward 8·S·L²·D); softmax is included in the time. \
        All shapes are for one clip of 8 frames × 197 tokens (spatial: S = 8 sequences of 197; temporal: S = 197 of 8).
        """

    func run(_ context: BenchContext) -> [BenchTable] {
        let T = 8, tokens = 197, D = 768, M = T * tokens, H = 12
        var mem = BenchTable(title: "Memory-bound kernels", columns: ["kernel", "shape", "direction", "ms (min/med/max)", "GB/s"])
        func addMem(_ name: String, _ shape: String, _ dir: String, bytes: Double, _ body: @escaping () -> Void) {
            context.log("kernels: \(name) \(dir)")
            let t = timeSideBySide(repeats: context.repeats, [body])[0]
            mem.rows.append([name, shape, dir, msTriple(t), fixed(bytes / t.median * 1e-9)])
        }

        // LayerNorm [1576, 768].
        do {
            let n = M * D, x = Buffer(n, seed: 1), y = Buffer(n), dy = Buffer(n, seed: 2), dx = Buffer(n)
            let w = Buffer(D, seed: 3), b = Buffer(D, seed: 4), mean = Buffer(M), rstd = Buffer(M)
            let dw = Buffer(D), db = Buffer(D), bytes = Double(n * 4)
            addMem("LayerNorm", "\(M)×\(D)", "forward", bytes: 2 * bytes) {
                layerNormForward(out: y.data, input: x.data, weight: w.data, bias: b.data, mean: mean.data, rstd: rstd.data,
                                 rows: M, channels: D, eps: 1e-5)
            }
            addMem("LayerNorm", "\(M)×\(D)", "backward (+dW, dB)", bytes: 3 * bytes) {
                layerNormBackward(dInput: dx.data, dWeight: dw.data, dBias: db.data, dOut: dy.data, input: x.data,
                                  weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: D)
            }
        }
        // GELU / QuickGELU on the MLP hidden [1576, 3072].
        do {
            let n = M * 4 * D, x = Buffer(n, seed: 5), y = Buffer(n), dy = Buffer(n, seed: 6), dx = Buffer(n)
            let bytes = Double(n * 4)
            addMem("GELU (erf)", "\(M)×\(4 * D)", "forward", bytes: 2 * bytes) { geluForward(out: y.data, input: x.data, count: n) }
            addMem("GELU (erf)", "\(M)×\(4 * D)", "backward", bytes: 3 * bytes) {
                geluBackward(dInput: dx.data, dOut: dy.data, input: x.data, count: n)
            }
            addMem("QuickGELU", "\(M)×\(4 * D)", "forward", bytes: 2 * bytes) { quickGeluForward(out: y.data, input: x.data, count: n) }
            addMem("QuickGELU", "\(M)×\(4 * D)", "backward", bytes: 3 * bytes) {
                quickGeluBackward(dInput: dx.data, dOut: dy.data, input: x.data, count: n)
            }
            // The bf16 MLP's forms: fc1's output kept in bf16, the activation and its gradient
            // written in bf16 as the next product's operand.
            let x16 = UnsafeMutablePointer<UInt16>.allocate(capacity: n), y16 = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { x16.deallocate(); y16.deallocate() }
            toBF16(x16, x.data, count: n)
            addMem("QuickGELU, bf16 in and out", "\(M)×\(4 * D)", "forward", bytes: bytes) {
                activationForward(quick: true, outBF16: y16, inputBF16: x16, count: n)
            }
            addMem("QuickGELU, bf16 in and out", "\(M)×\(4 * D)", "backward", bytes: 2 * bytes) {
                activationBackward(quick: true, dInputBF16: y16, dOut: dy.data, inputBF16: x16, count: n)
            }
        }
        // Softmax over spatial attention scores: 8 frames × 12 heads × 197 rows of 197.
        do {
            let rows = T * H * tokens, cols = tokens, n = rows * cols
            let x = Buffer(n, seed: 7), y = Buffer(n), dy = Buffer(n, seed: 8), dx = Buffer(n)
            let bytes = Double(n * 4)
            softmaxForward(out: y.data, input: x.data, rows: rows, cols: cols)
            addMem("softmax", "\(rows)×\(cols)", "forward", bytes: 2 * bytes) {
                softmaxForward(out: y.data, input: x.data, rows: rows, cols: cols)
            }
            addMem("softmax", "\(rows)×\(cols)", "backward", bytes: 3 * bytes) {
                softmaxBackward(dInput: dx.data, dOut: dy.data, output: y.data, rows: rows, cols: cols)
            }
        }

        var att = BenchTable(title: "Multi-head attention (D = 768, 12 heads)",
                             columns: ["attention", "S × L", "direction", "ms (min/med/max)", "GFLOP/s"])
        for (name, S, L) in [("spatial (197 tokens of a frame)", T, tokens), ("temporal (8 frames of a token)", tokens, T)] {
            context.log("kernels: attention \(name)")
            let qkv = Buffer(S * L * 3 * D, seed: 9), out = Buffer(S * L * D), probs = Buffer(S * H * L * L)
            let dOut = Buffer(S * L * D, seed: 10), dqkv = Buffer(S * L * 3 * D)
            let flops = 4.0 * Double(S) * Double(L * L) * Double(D)
            var runs: [() -> Void] = [
                { attentionForward(out: out.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H) },
                { attentionBackward(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, probs: probs.data,
                                    sequences: S, length: L, width: D, heads: H) },
            ]
            // bf16 models run long sequences in bf16 (AMX tiles, else oneDNN; probabilities recomputed in
            // backward), alternating with fp32 here; where the CPU has tiles, oneDNN's path is timed too.
            var bf16Paths: [String] = []
            if attentionRunsOnTiles(length: L, headWidth: D / H) {
                bf16Paths.append("bf16 on AMX tiles")
                runs.append { attentionForwardTiles(out: out.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H) }
                runs.append { attentionBackwardTiles(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H) }
            }
            if attentionRunsOnOneDNN(length: L, width: D, heads: H) {
                bf16Paths.append("bf16 through oneDNN")
                runs.append { attentionForwardOneDNN(out: out.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H) }
                runs.append { attentionBackwardOneDNN(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, sequences: S, length: L, width: D, heads: H) }
            }
            let qkv16 = UnsafeMutablePointer<UInt16>.allocate(capacity: S * L * 3 * D)
            defer { qkv16.deallocate() }
            if shortAttentionRuns(length: L, width: D, heads: H) {
                bf16Paths.append("bf16 short-sequence kernel (q, k, v in bf16)")
                toBF16(qkv16, qkv.data, count: S * L * 3 * D)
                runs.append { shortAttentionForward(out: out.data, roundedOut: nil, qkv16: qkv16, sequences: S, length: L, width: D, heads: H) }
                runs.append { shortAttentionBackward(dQKV: dqkv.data, roundedDQKV: nil, dOut: dOut.data, qkv16: qkv16, sequences: S, length: L,
                                                     width: D, heads: H) }
            }
            let t = timeSideBySide(repeats: context.repeats, runs)
            att.rows.append([name, "\(S) × \(L)", "forward", msTriple(t[0]), fixed(flops / t[0].median * 1e-9)])
            att.rows.append([name, "\(S) × \(L)", "backward", msTriple(t[1]), fixed(2 * flops / t[1].median * 1e-9)])
            for (i, path) in bf16Paths.enumerated() {
                let f = t[2 + 2 * i], b = t[3 + 2 * i]
                att.rows.append([name + ", " + path, "\(S) × \(L)", "forward", msTriple(f), fixed(flops / f.median * 1e-9)])
                att.rows.append([name + ", " + path, "\(S) × \(L)", "backward (probabilities recomputed)", msTriple(b),
                                 fixed(2 * flops / b.median * 1e-9)])
            }
        }
        att.notes.append("Sequences up to \(attentionDirectMaxLength) tokens use direct vector loops, longer ones one sgemm per (sequence, head).")
        att.notes.append("bf16: what `model.precision: bf16` runs for sequences of 64 tokens or more, on AMX tiles where the CPU has them, through oneDNN's bf16 matmul otherwise; sequences of up to 16 (the temporal pass) through the short-sequence kernel where the CPU has AVX-512; GFLOP/s count the unpadded products. The fp32 rows keep the probabilities for backward, as the bench always has; the models recompute them for 197-token sequences.")
        return [mem, att]
    }
}
