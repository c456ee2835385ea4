import AIMModel
import AIMTensor

/// The fp32 GEMM libraries side by side on the linear-layer shapes of one AIM ViT-B/16 step
/// (issue 11): OpenBLAS, oneDNN's sgemm and BLIS, each shape timed with all of them in the same
/// rounds. What `Gemm.defaultLibrary` picks per CPU class comes from this table.
struct GemmLibrarySection: BenchSection {
    let title = "fp32 GEMM libraries on the step's linear shapes"
    let summary = """
        Every linear-layer product of one AIM ViT-B/16 CLIP training step (8×224², batch 1: forward, input \
        gradient, weight gradient), through each fp32 GEMM library this machine has, alternating within each \
        round (`Gemm.sgemm`, row-major, the layers' own transposes). Per step: each shape's median × its calls. \
        The linear layers use the library `gemm: auto` measures fastest on them at the start of a run; attention's per-head products \
        stay on OpenBLAS.
        """

    func run(_ context: BenchContext) throws -> [BenchTable] {
        var c = ModelConfig()
        c.dropPathRate = 0; c.headDropout = 0
        let m = GemmLibraryTimes.measure(StepGemms.list(c), context)
        return [m.table]
    }
}

/// Median time of each linear (single-product) shape under each available library.
struct GemmLibraryTimes {
    let libraries: [GemmLibrary]
    var times: [GemmShape: [GemmLibrary: Double]] = [:]
    var table: BenchTable

    /// The fastest library's time for `shape` (the roofline's term), and which it was.
    func best(_ shape: GemmShape) -> (GemmLibrary, Double)? {
        times[shape]?.min { $0.value < $1.value }.map { ($0.key, $0.value) }
    }

    /// Times `uses` (one step's GEMMs, tabulated) and `alsoTime` (other models' shapes, not tabulated).
    static func measure(_ uses: [StepGemms.Use], alsoTime: [GemmShape] = [], _ context: BenchContext) -> GemmLibraryTimes {
        let libraries = GemmLibrary.allCases.filter(Gemm.isAvailable)
        var r = GemmLibraryTimes(libraries: libraries, table: BenchTable(
            title: "Linear-layer GEMMs of one AIM ViT-B/16 step, per library (ms per call, median)",
            columns: ["GEMM", "shape", "calls per step"] + libraries.map { "\($0.rawValue) ms" } + libraries.map { "\($0.rawValue) GFLOP/s" } + ["fastest"]))
        let rounds = max(3, min(context.repeats, 7))
        let linear = uses.filter { $0.shape.pairs == 1 }
        var perStep = [GemmLibrary: Double]()
        let previous = Gemm.library
        let extra = alsoTime.filter { $0.pairs == 1 }.map { StepGemms.Use(group: "", shape: $0, count: 0) }
        for use in linear + extra {
            let s = use.shape
            if r.times[s] == nil {
                let a = Buffer(s.m * s.k, seed: 11), b = Buffer(s.k * s.n, seed: 12), cc = Buffer(s.m * s.n, seed: 13)
                let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
                // Each library is made current before its call so its thread count is the run's.
                let t = timeSideBySide(repeats: rounds, libraries.map { lib in {
                    try? Gemm.select(lib)
                    Gemm.sgemm(lib, transA: s.transA, transB: s.transB, M: s.m, N: s.n, K: s.k, A: a.data, lda: lda,
                               B: b.data, ldb: ldb, beta: 0, C: cc.data, ldc: s.n)
                } })
                r.times[s] = Dictionary(uniqueKeysWithValues: zip(libraries, t.map(\.median)))
                context.log("  gemm libraries: \(s.text): " + libraries.map { "\($0.rawValue) \(ms(r.times[s]![$0]!)) ms" }.joined(separator: ", "))
            }
            let ts = r.times[s]!
            if use.count == 0 { continue }
            for lib in libraries { perStep[lib, default: 0] += ts[lib]! * Double(use.count) }
            r.table.rows.append([use.group, s.text, "\(use.count)"] + libraries.map { ms(ts[$0]!) }
                                + libraries.map { fixed(s.flop / ts[$0]! * 1e-9) } + [r.best(s)!.0.rawValue])
        }
        try? Gemm.select(previous)
        let flop = linear.reduce(0) { $0 + $1.shape.flop * Double($1.count) }
        r.table.rows.append(["total per step (s)", "", "\(linear.reduce(0) { $0 + $1.count })"]
                            + libraries.map { fixed(perStep[$0]!, 3) } + libraries.map { fixed(flop / perStep[$0]! * 1e-9) }
                            + [perStep.min { $0.value < $1.value }!.key.rawValue])
        r.table.notes.append("Libraries: " + libraries.map { Gemm.describe($0) }.joined(separator: "; ") + ". This run's default (`gemm: auto`, measured by the probe on the AIM step's shapes at start) is **\(Gemm.library.rawValue)**. \(rounds) rounds after one warm-up.")
        return r
    }
}
