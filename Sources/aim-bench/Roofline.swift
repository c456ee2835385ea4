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

    static func measure(configs: [ModelConfig], _ context: BenchContext) -> Roofline {
        let lists = configs.map { StepGemms.list($0) }
        var times: [GemmShape: Double] = [:], library: [GemmShape: String] = [:]
        let libraries = GemmLibraryTimes.measure(lists[0], alsoTime: lists.dropFirst().flatMap { $0.map(\.shape) }, context)
        let rounds = max(3, min(context.repeats, 7))
        for use in lists.flatMap({ $0 }) where times[use.shape] == nil {
            if let (lib, t) = libraries.best(use.shape) {
                times[use.shape] = t; library[use.shape] = lib.rawValue
            } else {
                times[use.shape] = time(use.shape, rounds: rounds, threads: context.threads); library[use.shape] = "openblas"
                context.log("  roofline: \(use.shape.text): \(ms(times[use.shape]!)) ms")
            }
        }
        var r = Roofline()
        r.libraryTable = libraries.table
        let frozen = Set(lists.flatMap { $0 }.filter(\.frozenWeight).map(\.shape))
        let bf16Times = BF16Support.isAvailable ? bf16(lists.flatMap { $0 }.map(\.shape), frozen: frozen, rounds: rounds, context) : [:]
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
                                      fixed(t * Double(use.count), 3), library[use.shape]!])
        }
        r.shapeTable.rows.append(["total", "", "\(lists[0].reduce(0) { $0 + $1.count })", "", fixed(r.gflop[0] / r.seconds[0]),
                                  fixed(r.seconds[0], 3), ""])
        r.shapeTable.notes.append("Inputs are contiguous (our kernels read q, k, v with a row stride of 3·768, so this is if anything a slightly optimistic bound). \(rounds) rounds per shape after one warm-up.")
        return r
    }

    /// Median bf16 product time of each distinct linear shape (operands converted or packed once, up
    /// front) by each bf16 kernel the step can use for it: oneDNN's matmul (also with the weights
    /// packed, for `frozen` shapes), and AMX tiles where they run (forward and input-gradient shapes
    /// in 32-wide steps), alternating in each round.
    private static func bf16(_ shapes: [GemmShape], frozen: Set<GemmShape>, rounds: Int, _ context: BenchContext) -> [GemmShape: BF16Time] {
        var out: [GemmShape: BF16Time] = [:]
        for s in shapes where out[s] == nil {
            if s.pairs > 1 {
                // Attention: m is the sequence length in every product of StepGemms, the head width the smaller of n and k.
                let dh = min(s.n, s.k)
                if attentionRunsOnTiles(length: s.m, headWidth: dh) {
                    let products = AttentionTileProducts(m: s.m, n: s.n, k: s.k, pairs: s.pairs)
                    let t = timeSideBySide(repeats: rounds, [{ products.run() }])[0].median
                    out[s] = BF16Time(onednn: nil, packed: nil, tiles: t)
                    context.log("  bf16 roofline: \(s.text): tiles \(ms(t)) ms")
                } else if attentionRunsOnOneDNN(length: s.m, width: dh, heads: 1), let t = attentionOneDNN(s, rounds: rounds) {
                    out[s] = BF16Time(onednn: t, packed: nil, tiles: nil)
                    context.log("  bf16 roofline: \(s.text): oneDNN \(ms(t)) ms")
                }
                continue
            }
            let a: UnsafeMutablePointer<UInt16> = amxAllocate(s.m * s.k), b: UnsafeMutablePointer<UInt16> = amxAllocate(s.k * s.n)
            defer { a.deallocate(); b.deallocate() }
            let fa = Buffer(s.m * s.k, seed: 21), fb = Buffer(s.k * s.n, seed: 22), c = Buffer(s.m * s.n, seed: 23)
            toBF16(a, fa.data, count: s.m * s.k); toBF16(b, fb.data, count: s.k * s.n)
            var runs: [() throws -> Void] = [{ try bf16Matmul(s, a: a, b: b, c: c.data) }]
            let tiles = !s.transA && BF16Products.tiles(k: s.k, n: s.n)
            let packed: UnsafeMutablePointer<UInt16> = amxAllocate(tiles ? AMX.packedCount(k: s.k, n: s.n) : 0)
            defer { packed.deallocate() }
            if tiles {
                if s.transB { amxPackTransposed(packed, fb.data, n: s.n, k: s.k) } else { amxPackRows(packed, fb.data, k: s.k, n: s.n) }
                runs.append { amxMatmul(m: s.m, k: s.k, n: s.n, a: a, b: packed, bias: nil, c: c.data, accumulate: false) }
            }
            // A frozen weight's forward (B = Wᵀ, W [n, k]) or input gradient (B = W [k, n]) as the step runs it.
            let weight = !tiles && !s.transA && frozen.contains(s)
                ? BF16Weight(fb.data, outFeatures: s.transB ? s.n : s.k, inFeatures: s.transB ? s.k : s.n) : nil
            if let weight {
                runs.append {
                    if s.transB { try linearForwardBF16(out: c.data, roundedInput: a, weight: weight, bias: nil, rows: s.m) }
                    else { try linearInputGradientBF16(dInput: c.data, roundedDOut: a, weight: weight, rows: s.m) }
                }
            }
            guard let t = try? timeSideBySide(repeats: rounds, throwing: runs) else { return [:] }
            out[s] = BF16Time(onednn: t[0].median, packed: weight != nil ? t[1].median : nil, tiles: tiles ? t[1].median : nil)
            context.log("  bf16 roofline: \(s.text): oneDNN \(ms(t[0].median)) ms" + (tiles ? ", tiles \(ms(t[1].median)) ms" : "")
                        + (weight != nil ? ", packed weights \(ms(t[1].median)) ms" : ""))
        }
        return out
    }

    /// All `pairs` products of an attention shape as one oneDNN bf16 batched call on dense operands
    /// (already bf16, transposed as the shape says): oneDNN's fastest form of them. The step runs
    /// them per sequence, reading q, k, v where they lie, so this is a bound it does not reach.
    private static func attentionOneDNN(_ s: GemmShape, rounds: Int) -> Double? {
        let p = s.pairs
        let a: UnsafeMutablePointer<UInt16> = .allocate(capacity: p * s.m * s.k), b: UnsafeMutablePointer<UInt16> = .allocate(capacity: p * s.k * s.n)
        defer { a.deallocate(); b.deallocate() }
        let fa = Buffer(p * s.m * s.k, seed: 24), fb = Buffer(p * s.k * s.n, seed: 25), c = Buffer(p * s.m * s.n, seed: 26)
        toBF16(a, fa.data, count: p * s.m * s.k); toBF16(b, fb.data, count: p * s.k * s.n)
        let aOp = s.transA ? BatchedOperand.dense(1, p, s.k, s.m).transposed : .dense(1, p, s.m, s.k)
        let bOp = s.transB ? BatchedOperand.dense(1, p, s.n, s.k).transposed : .dense(1, p, s.k, s.n)
        let t = try? timeSideBySide(repeats: rounds, throwing: [{ try batchedMatmulBF16(aOp, a, bOp, b, .dense(1, p, s.m, s.n), c.data) }])
        return t?[0].median
    }

    struct BF16Time {
        var onednn: Double?, packed: Double?, tiles: Double?
        func best(packed allowed: Bool) -> Double { min(onednn ?? .infinity, allowed ? packed ?? .infinity : .infinity, tiles ?? .infinity) }
        func kernel(packed allowed: Bool) -> String {
            let b = best(packed: allowed)
            if b == tiles { return "AMX tiles" }
            return b == packed ? "oneDNN, weights packed" : "oneDNN"
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

    private static func time(_ s: GemmShape, rounds: Int, threads: Int) -> Double {
        let aCount = s.m * s.k, bCount = s.k * s.n, cCount = s.m * s.n
        let a = Buffer(aCount * s.pairs, seed: 11), b = Buffer(bCount * s.pairs, seed: 12), c = Buffer(cCount * s.pairs, seed: 13)
        let lda = Int32(s.transA ? s.m : s.k), ldb = Int32(s.transB ? s.k : s.n), ldc = Int32(s.n)
        let ta = s.transA ? CblasTrans : CblasNoTrans, tb = s.transB ? CblasTrans : CblasNoTrans
        let m = Int32(s.m), n = Int32(s.n), k = Int32(s.k)
        let run: () -> Void
        if s.pairs == 1 {
            run = { cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1, a.data, lda, b.data, ldb, 0, c.data, ldc) }
        } else {
            run = {
                openblas_set_num_threads(1)
                Threads.parallelFor(s.pairs) { range in
                    for p in range {
                        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1, a.data + p * aCount, lda, b.data + p * bCount, ldb,
                                    0, c.data + p * cCount, ldc)
                    }
                }
                openblas_set_num_threads(Int32(threads))
            }
        }
        return timeSideBySide(repeats: rounds, [run])[0].median
    }
}
