import AIMModel
import AIMTensor
import COpenBLAS

/// Raw sgemm time of each distinct shape (median of rounds), summed over each step's GEMMs.
struct Roofline {
    var gflop: [Double] = []
    var seconds: [Double] = []
    /// The bf16 roofline of each config (nil without bf16): its linear shapes through the fastest
    /// bf16 kernel (oneDNN's matmul or AMX tiles) on operands already converted (timed alone);
    /// attention's products where our bf16 step runs them in bf16 (the frames' long sequences) as
    /// bare tile or oneDNN products when faster than fp32, the others at fp32 times.
    var bf16Seconds: [Double?] = []
    var bf16Table = BenchTable(title: "The step's GEMMs in bf16 (operands already bf16; the bf16 roofline's terms)",
                               columns: ["shape", "calls per step (AIM)", "oneDNN bf16 ms (median)", "oneDNN, weights packed ms (median)", "AMX tiles ms (median)", "fastest", "bf16 GFLOP/s (fastest)",
                                         "fastest fp32 ms", "bf16 speed-up"])
    var shapeTable = BenchTable(title: "The AIM step's GEMMs at their fastest (the roofline's terms)",
                                columns: ["GEMM", "shape", "calls per step", "ms per call (median)", "GFLOP/s", "s per step", "library"])
    /// Every linear shape under every fp32 library, side by side.
    var libraryTable = BenchTable(title: "", columns: [])
    /// Each shape's fp32 term: its time, and its library (none: OpenBLAS per (sequence, head) pair).
    var fp32Times: [GemmShape: Double] = [:]
    var fp32Library: [GemmShape: GemmLibrary] = [:]
    /// Each shape's bf16 kernels' times (empty without bf16).
    var bf16Times: [GemmShape: BF16Time] = [:]

    static func measure(configs: [ModelConfig], _ context: BenchContext) -> Roofline {
        let lists = configs.map { StepGemms.list($0) }
        var times: [GemmShape: Double] = [:], library: [GemmShape: GemmLibrary] = [:]
        let libraries = GemmLibraryTimes.measure(lists[0], alsoTime: lists.dropFirst().flatMap { $0.map(\.shape) }, context)
        let rounds = max(3, min(context.repeats, 7))
        for use in lists.flatMap({ $0 }) where times[use.shape] == nil {
            if let (lib, t) = libraries.best(use.shape) {
                times[use.shape] = t; library[use.shape] = lib
            } else {
                times[use.shape] = time(use.shape, rounds: rounds, threads: context.threads)
                context.log("  roofline: \(use.shape.text): \(ms(times[use.shape]!)) ms")
            }
        }
        var r = Roofline()
        r.libraryTable = libraries.table
        r.fp32Times = times; r.fp32Library = library
        let frozen = Set(lists.flatMap { $0 }.filter(\.frozenWeight).map(\.shape))
        let bf16Times = BF16Support.isAvailable ? bf16(lists.flatMap { $0 }.map(\.shape), frozen: frozen, rounds: rounds, context) : [:]
        r.bf16Times = bf16Times
        for list in lists {
            r.bf16Seconds.append(bf16Times.isEmpty ? nil : list.reduce(0) {
                $0 + bf16Term($1, bf16Times, fp32: times[$1.shape]!) * Double($1.count)
            })
        }
        if !bf16Times.isEmpty {
            var seen = Set<GemmShape>()
            for use in lists[0] where seen.insert(use.shape).inserted {
                guard let b = bf16Times[use.shape] else { continue }
                let f = times[use.shape]!, t = bf16Term(use, bf16Times, fp32: f)
                let count = lists[0].filter { $0.shape == use.shape }.reduce(0) { $0 + $1.count }
                r.bf16Table.rows.append([use.shape.text, "\(count)", b.onednn.map(ms) ?? "—", b.packed.map(ms) ?? "—", b.tiles.map(ms) ?? "—",
                                         t == f ? "fp32" : b.kernel(packed: use.frozenWeight), fixed(use.shape.flop / t * 1e-9), ms(f), fixed(f / t, 2) + "×"])
            }
            r.bf16Table.notes.append("Attention's (sequence, head) products appear where our bf16 step runs them in bf16 (sequences of 64 tokens or more). On AMX tiles: bare tile products, each dimension padded to a multiple of 32 as the tile attention pads them, the pairs split over the threads. Through oneDNN (no AMX): all pairs in one batched bf16 call on dense operands, oneDNN's fastest form (the step reads q, k, v where they lie, one call per sequence). Neither includes the softmax, rounding or packing; a term is the faster of that and fp32 (\"fastest\"). Attention over the frames (8 tokens) keeps its fp32 bare products as its term: our bf16 step runs it in a short-sequence kernel of its own (q, k, v in bf16, fp32 arithmetic in registers), not as products.")
            r.bf16Table.notes.append("Weights packed: a frozen weight's product with the weight held in oneDNN's own blocked layout, as `BF16Weight` keeps frozen weights (packed once; oneDNN otherwise copies row-major weights into that layout on every call); — for shapes no frozen weight has (adapters, attention) and where AMX tiles take the shape.")
            r.bf16Table.notes.append("AMX tiles: our 32×32 tile blocks (`model.precision: bf16` uses them for forward and input-gradient products when the CPU has AMX; weight gradients, Aᵀ·B, stay on oneDNN); — where they do not run. The two alternate within each round.")
            r.bf16Table.notes.append("\(rounds) rounds per shape after one warm-up; the activations' conversion to bf16 (done per call in the step) is not in these times, so the bf16 roofline is a bound our step cannot reach exactly.")
        }
        for list in lists {
            r.gflop.append(list.reduce(0) { $0 + $1.shape.flop * Double($1.count) } * 1e-9)
            r.seconds.append(list.reduce(0) { $0 + times[$1.shape]! * Double($1.count) })
        }
        for use in lists[0] {
            let t = times[use.shape]!
            r.shapeTable.rows.append([use.group, use.shape.text, "\(use.count)", ms(t), fixed(use.shape.flop / t * 1e-9),
                                      fixed(t * Double(use.count), 3), library[use.shape]?.rawValue ?? "openblas"])
        }
        r.shapeTable.rows.append(["total", "", "\(lists[0].reduce(0) { $0 + $1.count })", "", fixed(r.gflop[0] / r.seconds[0]),
                                  fixed(r.seconds[0], 3), ""])
        r.shapeTable.notes.append("Inputs are contiguous (our kernels read q, k, v with a row stride of 3·768, so this is if anything a slightly optimistic bound). \(rounds) rounds per shape after one warm-up.")
        return r
    }

    /// Median bf16 product time of each distinct shape by each bf16 kernel the step can use for it
    /// (`BareProducts.bf16`, operands converted or packed once, up front), alternating in each round.
    private static func bf16(_ shapes: [GemmShape], frozen: Set<GemmShape>, rounds: Int, _ context: BenchContext) -> [GemmShape: BF16Time] {
        var out: [GemmShape: BF16Time] = [:]
        for s in shapes where out[s] == nil {
            let candidates = BareProducts.bf16(s, frozen: frozen.contains(s))
            guard !candidates.isEmpty else { continue }
            guard let t = try? timeSideBySide(repeats: rounds, throwing: candidates.map(\.run)) else {
                if s.pairs > 1 { continue }   // an attention shape without a bf16 term keeps its fp32 one
                return [:]
            }
            out[s] = BF16Time(Dictionary(uniqueKeysWithValues: zip(candidates.map(\.kernel), t.map(\.median))))
            context.log("  bf16 roofline: \(s.text): " + zip(candidates, t).map { "\($0.kernel) \(ms($1.median)) ms" }.joined(separator: ", "))
        }
        return out
    }

    struct BF16Time {
        var onednn: Double?, packed: Double?, tiles: Double?
        init(_ byKernel: [String: Double]) {
            onednn = byKernel[BareProducts.oneDNN]; packed = byKernel[BareProducts.packed]; tiles = byKernel[BareProducts.tiles]
        }
        func best(packed allowed: Bool) -> Double { min(onednn ?? .infinity, allowed ? packed ?? .infinity : .infinity, tiles ?? .infinity) }
        func kernel(packed allowed: Bool) -> String {
            let b = best(packed: allowed)
            if b == tiles { return BareProducts.tiles }
            return b == packed ? BareProducts.packed : BareProducts.oneDNN
        }
    }

    /// A product's term in the bf16 roofline: its shape's fastest bf16 kernel (packed weights only
    /// for a frozen weight's product: a tunable weight is rounded per use, as the step runs it);
    /// attention's products also at most their fp32 time (those without tiles are at it).
    private static func bf16Term(_ use: StepGemms.Use, _ bf16: [GemmShape: BF16Time], fp32: Double) -> Double {
        guard !use.fp32Only, let b = bf16[use.shape] else { return fp32 }
        let best = b.best(packed: use.frozenWeight)
        return use.shape.pairs > 1 ? min(best, fp32) : best
    }

    /// The bare products of a step's roofline (its bf16 one with `bf16`), each distinct product once
    /// with its calls per step: what the paced roofline times again between our steps. Needs `measure`
    /// to have timed `list`'s shapes.
    func products(_ list: [StepGemms.Use], bf16: Bool, threads: Int) -> [(product: BareProduct, count: Int)] {
        var order: [String] = [], terms: [String: (product: BareProduct, count: Int)] = [:]
        for use in list {
            let s = use.shape, fp32 = fp32Times[s]!
            var kernel: String? = nil
            if bf16, !use.fp32Only, let b = bf16Times[s], !(s.pairs > 1 && fp32 < b.best(packed: use.frozenWeight)) {
                kernel = b.kernel(packed: use.frozenWeight)
            }
            let key = s.text + " " + (kernel ?? "fp32")
            if terms[key] == nil {
                let product = kernel.flatMap { k in BareProducts.bf16(s, frozen: use.frozenWeight).first { $0.kernel == k } }
                    ?? BareProducts.fp32(s, library: fp32Library[s], threads: threads)
                terms[key] = (product, 0); order.append(key)
            }
            terms[key]!.count += use.count
        }
        return order.map { terms[$0]! }
    }

    private static func time(_ s: GemmShape, rounds: Int, threads: Int) -> Double {
        let product = BareProducts.fp32(s, library: nil, threads: threads)
        return timeSideBySide(repeats: rounds, [{ try? product.run() }])[0].median
    }
}
