import AIMTensor

/// A linear forward with bias through oneDNN: the bias added inside one matmul (what the model runs
/// when oneDNN is the fp32 library) against filling the output with the bias and multiplying with
/// beta = 1 (what it ran before, and still runs through OpenBLAS and BLIS).
struct FusedBiasSection: BenchSection {
    let title = "Linear forward with bias: oneDNN matmul with the bias inside vs fill + sgemm (Swin-B shapes)"
    let summary = """
        AIM Swin-B's frozen linear layers at 32×224², batch 1 (rows = temporal tokens × positions): \
        the two ways alternate round by round; ratio > 1: the fused product is faster.
        """

    func run(_ context: BenchContext) throws -> [BenchTable] {
        guard Gemm.isAvailable(.onednn) else { return [.skipped(title, "oneDNN is not available")] }
        let previous = Gemm.library
        try Gemm.select(.onednn)
        defer { try? Gemm.select(previous); FusedBiasLinear.enabled = true }
        var t = BenchTable(title: "Linear forward with bias (oneDNN fp32)",
                           columns: ["layer", "M×K → N", "output", "separate passes ms (min/med/max)", "fused ms (min/med/max)", "ratio (medians)"])
        let shapes: [(String, Int, Int, Int)] = [
            ("stage 1 qkv", 50176, 128, 384), ("stage 1 fc2", 50176, 512, 128), ("stage 1 adapter fc2", 50176, 32, 128),
            ("stage 3 qkv", 3136, 512, 1536), ("stage 3 fc1", 3136, 512, 2048), ("stage 3 fc2", 3136, 2048, 512),
        ]
        // overwritten: fill with the bias + sgemm; accumulated (the MLP's fc2 into the residual
        // stream): sgemm with beta = 1 + a bias pass; with a residual (an adapter's skip): copy + that.
        let modes: [(String, Bool, Bool)] = [("overwritten", false, false), ("accumulated", true, false), ("plus a residual", false, true)]
        for (name, M, K, N) in shapes {
            context.log("fused bias: \(name)")
            let x = Buffer(M * K, seed: 3), w = Buffer(N * K, seed: 4), b = Buffer(N, seed: 5), y = Buffer(M * N), r = Buffer(M * N, seed: 6)
            for (mode, accumulate, residual) in modes where !(name.contains("adapter") && !residual) && !(residual && !name.contains("adapter") && !name.contains("fc2")) {
                func forward(fused: Bool) -> () -> Void {
                    { FusedBiasLinear.enabled = fused
                      linearForward(out: y.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N,
                                    accumulate: accumulate, residual: residual ? UnsafePointer(r.data) : nil) }
                }
                let res = timeSideBySide(repeats: context.repeats, [forward(fused: false), forward(fused: true)])
                t.rows.append([name, "\(M)×\(K) → \(N)", mode, msTriple(res[0]), msTriple(res[1]), fixed(res[0].median / res[1].median, 2) + "×"])
            }
        }
        return [t]
    }
}
