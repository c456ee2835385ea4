import CDNNL
import COpenBLAS
import Foundation

// `gemm: auto` picks the fp32 GEMM library by measuring, not by CPU class: a class holds CPUs
// whose best library differs (on Zen 4 oneDNN ran the step 17 % faster than OpenBLAS; on Zen 5
// and Intel they were level). The probe times each available library on the linear shapes the
// configured model runs, alternating, and the choice is cached by everything that decides it.

/// What a probe measured: each library's estimated seconds for one step's linear products.
public struct GemmProbeResult: Codable, Equatable, Sendable {
    public var library: String
    public var secondsPerStep: [String: Double]
    public var rounds: Int
    public var probeSeconds: Double
    public var measuredAt: String

    public init(library: String, secondsPerStep: [String: Double], rounds: Int, probeSeconds: Double, measuredAt: String) {
        self.library = library; self.secondsPerStep = secondsPerStep; self.rounds = rounds
        self.probeSeconds = probeSeconds; self.measuredAt = measuredAt
    }

    public var chosen: GemmLibrary { GemmLibrary(rawValue: library) ?? .openblas }

    /// "openblas 0.412 s, onednn 0.371 s, blis 0.398 s" in the order of `GemmLibrary.allCases`.
    public var figures: String {
        GemmLibrary.allCases.compactMap { lib in secondsPerStep[lib.rawValue].map { "\(lib.rawValue) \(String(format: "%.3f", $0)) s" } }
            .joined(separator: ", ")
    }
}

public enum GemmProbe {
    /// A product of the step: its shape, calls per step, and whether it is a linear forward with a
    /// bias, timed as `linearForward` runs it under each library (with oneDNN one matmul that adds
    /// the bias inside; otherwise the output filled with the bias, then multiplied into). Why:
    /// timed as plain products, oneDNN and BLIS once came out level on ViT-B/16 (3.483 against
    /// 3.481 s per clip) and BLIS was cached, while in the step oneDNN ran 4.7 % faster.
    public struct Use: Sendable {
        public let shape: GemmShape, count: Int, biased: Bool
        public init(shape: GemmShape, count: Int, biased: Bool = false) {
            precondition(!biased || (!shape.transA && shape.transB), "GemmProbe.Use: a biased forward is A·Bᵀ")
            self.shape = shape; self.count = count; self.biased = biased
        }
        /// The key text of this product (shape, calls, bias).
        var text: String { "\(shape.text) x\(count)" + (biased ? " +bias" : "") }
    }

    private struct Product: Hashable { let shape: GemmShape, biased: Bool }

    /// Estimated seconds per step of `uses` (shape, calls per step) under each available library.
    /// After a warm-up, each round times every distinct shape once per library, rotating who goes
    /// first; rounds stop at `budget` seconds (after at least two). A library's estimate sums, per
    /// shape, its fastest call times the calls per step (interference from other processes only ever
    /// adds time, and hits one shape's call rather than a whole round). The first shape of the first
    /// round, the largest, is also a screen: a library more than 30 % slower than the best there is
    /// dropped (BLIS without kernels for the CPU runs 5x slower and would cost most of the budget).
    public static func measure(_ uses: [Use], libraries: [GemmLibrary]? = nil,
                               rounds maxRounds: Int = 3, budget: Double = 1.5) -> GemmProbeResult {
        let started = Date()
        var counts: [Product: Int] = [:]
        // Empty products (a width of 0, which the model's own checks refuse later) have nothing to time.
        for u in uses where u.shape.pairs == 1 && u.count > 0 && min(u.shape.m, u.shape.n, u.shape.k) > 0 {
            counts[Product(shape: u.shape, biased: u.biased), default: 0] += u.count
        }
        // Largest first (the screen takes the first); a fixed order among equal sizes.
        let shapes = counts.keys.sorted { ($0.shape.flop, $0.biased ? 1 : 0, $0.shape.text) > ($1.shape.flop, $1.biased ? 1 : 0, $1.shape.text) }
        var active = (libraries ?? GemmLibrary.allCases).filter(Gemm.isAvailable)
        let previous = Gemm.library
        defer { try? Gemm.select(previous) }
        guard let largest = shapes.first, active.count > 1 else {
            let only = active.first ?? previous
            return GemmProbeResult(library: only.rawValue, secondsPerStep: [:], rounds: 0, probeSeconds: 0,
                                   measuredAt: ISO8601DateFormatter().string(from: Date()))
        }
        let aMax = shapes.map { $0.shape.m * $0.shape.k }.max()!, bMax = shapes.map { $0.shape.k * $0.shape.n }.max()!
        let cMax = shapes.map { $0.shape.m * $0.shape.n }.max()!
        let a = Tensor([aMax]), b = Tensor([bMax]), c = Tensor([cMax]), bias = Tensor([shapes.map { $0.shape.n }.max()!])
        // A GEMM's time does not depend on its (finite, normal) values: a cheap pattern in [-0.5, 0.5)
        // instead of millions of normal draws (0.15 s of the probe for ViT-B).
        for t in [a, b, bias] {
            let p = t.data
            for i in 0..<t.count { p[i] = Float(UInt32(truncatingIfNeeded: i &* 2_654_435_761) >> 8) * 0x1p-24 - 0.5 }
        }
        func call(_ lib: GemmLibrary, _ p: Product) {
            let s = p.shape
            if p.biased {
                linearForward(out: c.data, input: a.data, weight: b.data, bias: bias.data, rows: s.m, inFeatures: s.k, outFeatures: s.n)
                return
            }
            Gemm.sgemm(lib, transA: s.transA, transB: s.transB, M: s.m, N: s.n, K: s.k, A: a.data, lda: s.transA ? s.m : s.k,
                       B: b.data, ldb: s.transB ? s.k : s.n, beta: 0, C: c.data, ldc: s.n)
        }
        func timed(_ lib: GemmLibrary, _ p: Product) -> Double {
            try? Gemm.select(lib)   // also what `linearForward` runs through
            let t0 = DispatchTime.now().uptimeNanoseconds
            call(lib, p)
            return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        // Warm-up: each library's threads, packing buffers and first-touch pages.
        for lib in active { _ = timed(lib, largest) }
        // oneDNN compiles code on first use: its sgemm a kernel per kind of product (the first Aᵀ·B
        // took 28 ms, the next 2 ms) and the fused forward a primitive per shape. Compiled here,
        // untimed and without running the large products (0.03 s for ViT-B), so that every round is
        // warm and counts: before, the whole first round was dropped, leaving one warm sample per
        // library within the budget.
        if active.contains(.onednn) {
            try? Gemm.select(.onednn)
            var smallest: [String: Product] = [:]
            for p in shapes {
                if p.biased { FusedBiasLinear.prepare(rows: p.shape.m, inFeatures: p.shape.k, outFeatures: p.shape.n) }
                else { smallest["\(p.shape.transA) \(p.shape.transB)"] = p }   // largest first: the last one stays
            }
            for p in smallest.values { call(.onednn, p) }
        }
        var fastest: [GemmLibrary: [Double]] = Dictionary(uniqueKeysWithValues: active.map { ($0, Array(repeating: Double.infinity, count: shapes.count)) })
        var screenedOut: [GemmLibrary: Double] = [:]   // its time over the best one's on the largest shape
        var round = 0
        while round < max(2, maxRounds) && (round < 2 || Date().timeIntervalSince(started) < budget) {
            for (i, s) in shapes.enumerated() {
                // Rotate who goes first, so no library always meets cold caches.
                let order = active.indices.map { active[($0 + i + round) % active.count] }
                for lib in order { fastest[lib]![i] = min(fastest[lib]![i], timed(lib, s)) }
                if round == 0 && i == 0, let best = active.map({ fastest[$0]![0] }).min() {
                    for lib in active where fastest[lib]![0] > 1.3 * best { screenedOut[lib] = fastest[lib]![0] / best }
                    active = active.filter { screenedOut[$0] == nil }
                }
            }
            round += 1
        }
        var estimate: [String: Double] = [:]
        for lib in active { estimate[lib.rawValue] = zip(fastest[lib]!, shapes).reduce(0) { $0 + $1.0 * Double(counts[$1.1]!) } }
        // Screened-out libraries: the best estimate times their ratio on the largest shape.
        if let best = estimate.values.min() {
            for (lib, ratio) in screenedOut { estimate[lib.rawValue] = best * ratio }
        }
        let chosen = active.min { estimate[$0.rawValue]! < estimate[$1.rawValue]! } ?? previous
        return GemmProbeResult(library: chosen.rawValue, secondsPerStep: estimate, rounds: round,
                               probeSeconds: Date().timeIntervalSince(started), measuredAt: ISO8601DateFormatter().string(from: Date()))
    }

    /// Everything a choice depends on besides the shapes: the CPU, the features in use, the thread
    /// count and the libraries' builds. A change of any of them measures again.
    public static func machineKey(threads: Int) -> String {
        var parts = [CPUReport.modelName, "family \(CPUReport.cpuinfoField("cpu family") ?? "?") model \(CPUReport.cpuinfoField("model") ?? "?")",
                     "features \(CPUFeatures.current)", "threads \(threads)",
                     "openblas \(openblas_get_config().map { String(cString: $0) } ?? "?") core \(OpenBLASInfo.coreName)"]
        if let v = dnnl_version()?.pointee { parts.append("onednn \(v.major).\(v.minor).\(v.patch) isa \(OneDNNInfo.isa)") }
        if Gemm.isAvailable(.blis) { parts.append(Gemm.describe(.blis)) }
        return parts.joined(separator: "; ")
    }
}

/// Probe results kept between runs, in one JSON file keyed by machine key + shapes.
public struct GemmChoiceCache {
    public let file: URL

    public init(file: URL) { self.file = file }

    /// `$XDG_CACHE_HOME/aim-swift` or `~/.cache/aim-swift`, else `fallback` (e.g. the work dir)
    /// when the home cannot be written.
    public static func location(fallback: URL?) -> URL? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { candidates.append(URL(fileURLWithPath: x).appendingPathComponent("aim-swift")) }
        if let h = env["HOME"], !h.isEmpty { candidates.append(URL(fileURLWithPath: h).appendingPathComponent(".cache/aim-swift")) }
        if let fallback { candidates.append(fallback) }
        for dir in candidates {
            if (try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)) != nil,
               access(dir.path, W_OK) == 0 {
                return dir.appendingPathComponent("gemm-choice.json")
            }
        }
        return nil
    }

    public static func key(machine: String, shapes: [GemmProbe.Use]) -> String {
        let text = machine + "|" + shapes.map(\.text).joined(separator: ";")
        return String(fnv1a64(text.utf8), radix: 16)
    }

    /// `model`: what the shapes belong to, for people reading the cache (absent in older files).
    struct Entry: Codable { var machine: String; var model: String?; var result: GemmProbeResult }

    /// Entries kept: the newest measured; each model × thread count adds one, so test suites and
    /// sweeps would otherwise grow the file without end.
    public static let capacity = 64

    private func load() -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: file.path),
              let entries = try? JSONDecoder().decode([String: Entry].self, from: data) else { return [:] }
        return entries
    }

    public func lookup(_ key: String) -> GemmProbeResult? { load()[key]?.result }

    /// Every cached choice: (machine description, model, result).
    public var entries: [(machine: String, model: String?, result: GemmProbeResult)] {
        load().values.map { ($0.machine, $0.model, $0.result) }
    }

    public func store(_ result: GemmProbeResult, key: String, machine: String, model: String? = nil) throws {
        var all = load()
        all[key] = Entry(machine: machine, model: model, result: result)
        if all.count > Self.capacity {
            // measuredAt is ISO 8601 UTC, so text order is time order.
            let oldest = all.sorted { ($0.value.result.measuredAt, $0.key) < ($1.value.result.measuredAt, $1.key) }
            for (k, _) in oldest.prefix(all.count - Self.capacity) where k != key { all[k] = nil }
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileOutput.write(try enc.encode(all), to: file.path)
    }
}
