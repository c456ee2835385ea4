import Foundation
import AIMModel
import AIMTensor

/// AIM fp32 on one model with the fp32 GEMM library switched before every step, round-robin, so
/// each library's steps fall in the same minutes of the machine. Why: the side-by-side rows of the
/// other libraries run minutes after the default's, and a shared host drifts by more than the few
/// percent that separate the libraries (one AVX2 run put the default 3.9 % behind OpenBLAS in those
/// rows while its attention, the same code in both, was 8 % slower too).
enum LibraryAlternation {
    static let rounds = 4

    static func table(_ config: ModelConfig, defaultLibrary: GemmLibrary, _ context: BenchContext) throws -> BenchTable? {
        let libraries = [defaultLibrary] + GemmLibrary.allCases.filter { $0 != defaultLibrary && Gemm.isAvailable($0) }
        guard libraries.count > 1 else { return nil }
        defer { try? Gemm.select(defaultLibrary) }
        let runner = try BenchTrainingStep(config)
        var samples = [GemmLibrary: [Double]]()
        for round in 0...rounds {   // round 0 warms every library up
            for (i, lib) in libraries.enumerated() {
                try Gemm.select(lib)
                let s = try seconds { try runner.run(round * libraries.count + i + 1) }
                context.log("  alternating libraries, round \(round)\(round == 0 ? " (warm-up)" : ""): \(lib.rawValue) \(fixed(s, 2)) s")
                if round > 0 { samples[lib, default: []].append(s) }
            }
        }
        let timings = libraries.map { Timing(samples: samples[$0] ?? []) }
        let best = timings.map(\.median).min() ?? 1
        var t = BenchTable(title: "AIM fp32 step per GEMM library, alternating step by step (\(rounds) rounds)",
                           columns: ["library", "step s (min / median / max)", "÷ fastest (median)", "steps faster than the default's in the same round"])
        for (lib, timing) in zip(libraries, timings) {
            let wins = zip(samples[lib] ?? [], samples[defaultLibrary] ?? []).filter { $0 < $1 }.count
            t.rows.append([lib == defaultLibrary ? "\(lib.rawValue) (default)" : lib.rawValue, timing.triple,
                           fixed(timing.median / best, 3) + "×", lib == defaultLibrary ? "—" : "\(wins) of \(rounds)"])
        }
        let gap = 100 * (timings[0].median / best - 1)
        t.notes.append("One AIM ViT-B/16 model, batch 1; before each step `Gemm.select` switches the library (the step's linear products; attention stays on OpenBLAS). "
                       + "The default is \(gap < 0.05 ? "the fastest" : fixed(gap, 1) + " % behind the fastest") on the medians (issue 18's goal: within 3 %).")
        return t
    }
}
