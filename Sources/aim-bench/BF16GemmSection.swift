import AIMTensor
import COpenBLAS

/// bf16 frozen-weight GEMMs (model.precision: bf16, the kernel the step uses: AMX tiles or oneDNN;
/// activations converted per call, as in the step) against raw fp32 sgemm on the frozen linears' shapes.
struct BF16GemmSection: BenchSection {
    let title = "bf16 frozen-weight GEMMs (model.precision: bf16) vs raw fp32 sgemm"
    let summary = "The step's bf16 linear product (\(BF16Products.description)) with the weight converted to bf16 once and the fp32 activations converted on every call (counted), fp32 accumulation and output, against a bare `cblas_sgemm` of the same product; the two alternate within each round."

    func run(_ context: BenchContext) throws -> [BenchTable] {
        let title = "Frozen linears of ViT-B/16, 8 frames"
        if let reason = BF16Support.unavailableReason { return [.skipped(title, reason)] }
        var t = BenchTable(title: title,
                           columns: ["layer", "direction", "M×K → N", "sgemm ms (median)", "bf16 ms (median)", "sgemm GFLOP/s", "bf16 GFLOP/s", "speed-up"])
        let M = 8 * 197
        let rounds = max(3, min(context.repeats, 7))
        for (name, K, N) in [("attn in_proj", 768, 2304), ("attn out_proj", 768, 768), ("mlp c_fc", 768, 3072), ("mlp c_proj", 3072, 768)] {
            let x = Buffer(M * K, seed: 1), w = Buffer(N * K, seed: 2), b = Buffer(N, seed: 3), y = Buffer(M * N, seed: 4)
            let dy = Buffer(M * N, seed: 5), dx = Buffer(M * K, seed: 6)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            let m = Int32(M), k = Int32(K), n = Int32(N)
            let flop = 2.0 * Double(M) * Double(N) * Double(K)
            let f = try timeSideBySide(repeats: rounds, throwing: [
                { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, x.data, k, w.data, k, 0, y.data, n) },
                { try linearForwardBF16(out: y.data, input: x.data, weight: bw, bias: b.data, rows: M) },
            ])
            let g = try timeSideBySide(repeats: rounds, throwing: [
                { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1, dy.data, n, w.data, k, 0, dx.data, k) },
                { try linearInputGradientBF16(dInput: dx.data, dOut: dy.data, weight: bw, rows: M) },
            ])
            for (dir, tm) in [("forward", f), ("input gradient", g)] {
                t.rows.append([name, dir, "\(M)×\(K) → \(N)", ms(tm[0].median), ms(tm[1].median), fixed(flop / tm[0].median * 1e-9),
                               fixed(flop / tm[1].median * 1e-9), fixed(tm[0].median / tm[1].median, 2) + "×"])
            }
            context.log("  bf16 gemm: \(name) done")
        }
        return [t]
    }
}
