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
            guard name.contains("adapter") else { continue }
            // AIM's 0.5 · S_Adapter into the residual stream: before, the adapter's output went to a
            // temporary and a row-scaling pass added half of it; fused, its fc2 adds 0.5 · (x·Wᵀ + b).
            let half = [Float](repeating: 0.5, count: M), tmp = Buffer(M * N)
            let scaled = timeSideBySide(repeats: context.repeats, [
                { FusedBiasLinear.enabled = true
                  linearForward(out: tmp.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N)
                  scaleRows(out: y.data, input: tmp.data, rowScales: half, rows: M, cols: N, accumulate: true) },
                { FusedBiasLinear.enabled = true
                  linearForward(out: y.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N,
                                accumulate: true, scale: 0.5) },
            ])
            t.rows.append([name, "\(M)×\(K) → \(N)", "0.5 × added to the output", msTriple(scaled[0]), msTriple(scaled[1]),
                           fixed(scaled[0].median / scaled[1].median, 2) + "×"])
            // The adapter's fc1 input gradient with its skip's gradient: sgemm + an add pass, or one matmul.
            let dy = Buffer(M * K, seed: 7), dx = Buffer(M * N)
            func inputGradient(fused: Bool) -> () -> Void {
                { FusedBiasLinear.enabled = fused
                  linearBackward(dInput: dx.data, dWeight: nil, dBias: nil, dOut: dy.data, input: nil, weight: w.data, rows: M,
                                 inFeatures: N, outFeatures: K, inputResidual: UnsafePointer(r.data)) }
            }
            let back = timeSideBySide(repeats: context.repeats, [inputGradient(fused: false), inputGradient(fused: true)])
            t.rows.append(["stage 1 adapter fc1", "input gradient \(M)×\(K) → \(N)", "plus the skip's gradient", msTriple(back[0]),
                           msTriple(back[1]), fixed(back[0].median / back[1].median, 2) + "×"])
        }
        return [t]
    }
}
