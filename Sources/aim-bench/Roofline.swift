import AIMModel
import AIMTensor
import COpenBLAS

/// One matrix product C[m, n] = op(A)·op(B) (row-major, op = transpose when the flag is set).
/// `pairs` > 1: that many independent products, one per (attention sequence, head), spread over
/// the threads with single-threaded sgemm, as our attention kernel runs them.
struct GemmShape: Hashable {
    let transA: Bool, transB: Bool
    let m: Int, n: Int, k: Int
    var pairs = 1
    var flop: Double { 2 * Double(m) * Double(n) * Double(k) * Double(pairs) }
    var text: String {
        "\(transA ? "Aᵀ" : "A")·\(transB ? "Bᵀ" : "B") \(m)×\(k)·\(k)×\(n)" + (pairs > 1 ? " ×\(pairs) (sequence, head) pairs" : "")
    }
}

/// Every GEMM of one training step of `c` (batch 1): what our step computes, so its raw sgemm
/// time is the step's fp32 roofline. The head (1×768·768×400) is left out (< 1 MFLOP).
enum StepGemms {
    struct Use { let group: String; let shape: GemmShape; let count: Int }

    static func list(_ c: ModelConfig) -> [Use] {
        let T = c.numFrames, N = c.tokensPerFrame, D = c.width, H = c.heads, dh = D / H, A = c.adapterHidden
        let M = T * N, L = c.layers
        let backbone = c.tune == .all
        let adaptersTunable = c.tune != .head
        // Backward reaches the blocks when a block or the embedding below them is tunable.
        let backward = backbone || (adaptersTunable && !c.adapters.isEmpty)
        let temporal = c.adapters.contains(.temporal)
        var out: [Use] = []
        func linear(_ inF: Int, _ outF: Int, uses: Int, tunable: Bool, rows: Int = M, group: String) {
            let kind = tunable ? "tunable" : "frozen"
            out.append(Use(group: "\(group): \(kind) forward", shape: GemmShape(transA: false, transB: true, m: rows, n: outF, k: inF), count: uses))
            if backward {
                out.append(Use(group: "\(group): \(kind) input gradient", shape: GemmShape(transA: false, transB: false, m: rows, n: inF, k: outF), count: uses))
            }
            if backward && tunable {
                out.append(Use(group: "\(group): weight gradient", shape: GemmShape(transA: true, transB: false, m: outF, n: inF, k: rows), count: uses))
            }
        }
        // Patch embedding (a linear over 16×16×3 patches); its input gradient is never needed.
        let patches = T * c.patchesPerFrame, pk = 3 * c.patchSize * c.patchSize
        out.append(Use(group: "patch embedding forward", shape: GemmShape(transA: false, transB: true, m: patches, n: D, k: pk), count: 1))
        if backbone {
            out.append(Use(group: "patch embedding weight gradient", shape: GemmShape(transA: true, transB: false, m: D, n: pk, k: patches), count: 1))
        }
        let uses = temporal ? 2 : 1     // AIM runs the frozen attention twice: across frames, then within them
        linear(D, 3 * D, uses: uses * L, tunable: backbone, group: "attn in_proj")
        linear(D, D, uses: uses * L, tunable: backbone, group: "attn out_proj")
        linear(D, c.mlpHidden, uses: L, tunable: backbone, group: "mlp c_fc")
        linear(c.mlpHidden, D, uses: L, tunable: backbone, group: "mlp c_proj")
        if !c.adapters.isEmpty {
            linear(D, A, uses: c.adapters.count * L, tunable: adaptersTunable, group: "adapter D_fc1")
            linear(A, D, uses: c.adapters.count * L, tunable: adaptersTunable, group: "adapter D_fc2")
        }
        for (name, S, len) in [("spatial", T, N)] + (temporal ? [("temporal", N, T)] : []) {
            let p = S * H
            out.append(Use(group: "\(name) attention Q·Kᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: L))
            out.append(Use(group: "\(name) attention P·V", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: L))
            if backward && len > attentionProbabilitiesKeptMaxLength {
                out.append(Use(group: "\(name) attention Q·Kᵀ again in backward (P recomputed, not kept)",
                               shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: L))
            }
            if backward {
                out.append(Use(group: "\(name) attention backward dV = Pᵀ·dO, dK = dSᵀ·Q", shape: GemmShape(transA: true, transB: false, m: len, n: dh, k: len, pairs: p), count: 2 * L))
                out.append(Use(group: "\(name) attention backward dP = dO·Vᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: L))
                out.append(Use(group: "\(name) attention backward dQ = dS·K", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: L))
            }
        }
        return out
    }
}

/// Raw sgemm time of each distinct shape (median of rounds), summed over each step's GEMMs.
struct Roofline {
    var gflop: [Double] = []
    var seconds: [Double] = []
    var shapeTable = BenchTable(title: "The AIM step's GEMMs at their fastest (the roofline's terms)",
                                columns: ["GEMM", "shape", "calls per step", "ms per call (median)", "GFLOP/s", "s per step", "library"])
    /// Every linear shape under every fp32 library, side by side.
    var libraryTable = BenchTable(title: "", columns: [])

    static func measure(configs: [ModelConfig], _ context: BenchContext) -> Roofline {
        let lists = configs.map(StepGemms.list)
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
