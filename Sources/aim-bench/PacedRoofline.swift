import AIMModel
import AIMTensor

/// Our AIM step against its roofline, the two alternating round by round: each round one of our
/// steps, then every distinct bare product of the roofline timed again (median of `calls`), summed
/// by its calls per step. Why: the roofline table sets a median step of one part of the run
/// against a roofline timed minutes later, and this shared host drifts by more than the goals'
/// margins in minutes (the same code's bf16 figure read 84 % and 92 % in two runs, the roofline
/// itself 1.86 s and 1.94 s); paced, both sample the machine within seconds of each other.
enum PacedRoofline {
    static let rounds = 5, calls = 3

    struct Row {
        let label: String
        let step: Timing, roofline: Timing
        /// Each round's roofline ÷ step.
        let ratios: [Double]
    }

    /// `library`: the default fp32 GEMM library, made current again before each of our steps (the
    /// roofline's products make theirs current).
    static func measure(_ variants: [(label: String, config: ModelConfig)], library: GemmLibrary, _ roofline: Roofline,
                        _ context: BenchContext) throws -> [Row] {
        let rows = try variants.map { v in
            let bf16 = v.config.precision == .bf16
            let runner = try BenchTrainingStep(v.config)
            let terms = roofline.products(StepGemms.list(v.config), bf16: bf16, threads: context.threads)
            try Gemm.select(library)
            try runner.run(1)
            for t in terms { try t.product.run() }   // warm-up: oneDNN's primitives, packed weights, first touch
            var steps: [Double] = [], bounds: [Double] = []
            for round in 1...rounds {
                try Gemm.select(library)
                steps.append(try seconds { try runner.run(round + 1) })
                var total = 0.0
                for t in terms {
                    let each = try (0..<calls).map { _ in try seconds(t.product.run) }
                    total += Timing(samples: each).median * Double(t.count)
                }
                bounds.append(total)
                context.log("  paced roofline, \(v.label): step \(fixed(steps.last!, 3)) s, roofline \(fixed(total, 3)) s")
            }
            return Row(label: v.label, step: Timing(samples: steps), roofline: Timing(samples: bounds),
                       ratios: zip(bounds, steps).map { $0 / $1 })
        }
        try Gemm.select(library)
        return rows
    }

    static func table(_ rows: [Row]) -> BenchTable {
        var t = BenchTable(title: "Our AIM step against its roofline, alternating round by round",
                           columns: ["model", "rounds", "our step s (min / median / max)", "roofline s (min / median / max)",
                                     "roofline ÷ ours (median of the rounds)", "lowest and highest round"])
        for r in rows {
            let ratios = Timing(samples: r.ratios)
            t.rows.append([r.label, "\(r.ratios.count)", r.step.triple, r.roofline.triple, fixed(100 * ratios.median, 0) + " %",
                           fixed(100 * ratios.min, 0) + " % – " + fixed(100 * ratios.max, 0) + " %"])
        }
        t.notes.append("Each round: one of our steps, then each distinct product of the roofline (the fastest kernel per shape of the tables below: fp32 library, or bf16 kernel for the bf16 roofline) timed \(calls) times alone, its median times its calls per step. A fresh model, one warm-up step and one warm-up call of each product first. The goals (AIM fp32 ≥ 90 % of the fp32 roofline with the default library, AIM bf16 ≥ 85 % of the bf16 roofline) are read here: the table \"Our step against the fp32 sgemm roofline (same run)\" sets medians taken minutes apart against each other.")
        return t
    }
}
