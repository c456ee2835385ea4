import AIMModel
import AIMTensor
import Foundation

/// Issue 7's side-by-side: our training step (forward, cross-entropy, backward, AdamW) against
/// PyTorch's (bench/torch_step.py in a subprocess, same models, same thread count), the fp32
/// sgemm roofline of the step's own GEMMs measured in the same run, and where our time goes.
struct TorchComparisonSection: BenchSection {
    let title = "Training step side by side: ours vs PyTorch, and the sgemm roofline"
    let summary = """
        ViT-B/16 CLIP, 8×224², batch 1, random weights, one step = forward + cross-entropy + backward + AdamW \
        (AdamW over the tunable parameters only, as both sides train). Ours and PyTorch's run in the same \
        `make bench` with the same thread count; PyTorch runs `bench/torch_step.py` (models from \
        `tools/reference_state.py`, fused SDPA attention, fp32 and `torch.autocast('cpu', dtype=torch.bfloat16)`), \
        each (model, precision) in its own process, its steps alternating one by one with ours of the same model \
        and precision (`--paced`), so both sides sample the machine within seconds of each other. \
        Step time: median of the timed steps after one warm-up. \
        Memory: peak RSS (VmHWM) minus RSS before the model was built (PyTorch: right after `import torch`); \
        weights, optimizer state, activations and allocator caches all count. Roofline: raw `cblas_sgemm` \
        on every GEMM shape of the step, timed alone, times its count per step.
        """

    static let steps = 5
    static let torchScript = "bench/torch_step.py"

    struct Variant {
        let key: String          // torch_step.py's model name
        let name: String
        let precision: ModelConfig.Precision
        /// The fp32 GEMM library of the linear layers (nil: this CPU class's default).
        var gemm: GemmLibrary? = nil
        let edit: (inout ModelConfig) -> Void
        var label: String { name + (gemm.map { ", gemm: \($0.rawValue)" } ?? ", default (gemm: auto → \(TorchComparisonSection.defaultLibrary.rawValue))") }
    }

    /// What `gemm: auto` chose for this run (aim-bench selects it before any section runs).
    nonisolated(unsafe) static var defaultLibrary = Gemm.library

    /// fp32 with the default GEMM library first; AIM fp32 again with each other library this machine
    /// has (which one `gemm: auto` should pick is decided on whole steps too); bf16 where the CPU has it.
    static let variants: [Variant] = {
        var v = [
            Variant(key: "aim", name: "AIM (adapters tunable)", precision: .fp32) { _ in },
            Variant(key: "full", name: "full finetuning (space-only, all tunable)", precision: .fp32) { $0.adapters = []; $0.tune = .all },
            Variant(key: "frozen", name: "frozen space-only (ln_post + head)", precision: .fp32) { $0.adapters = [] },
        ]
        for lib in GemmLibrary.allCases where lib != Gemm.library && Gemm.isAvailable(lib) {
            v.append(Variant(key: "aim", name: "AIM (adapters tunable)", precision: .fp32, gemm: lib) { _ in })
        }
        guard BF16Support.isAvailable else { return v }
        // model.precision bf16: every linear's GEMMs in bf16 (oneDNN), fp32 master weights, as autocast.
        return v + [
            Variant(key: "aim", name: "AIM (adapters tunable)", precision: .bf16) { _ in },
            Variant(key: "full", name: "full finetuning (space-only, all tunable)", precision: .bf16) { $0.adapters = []; $0.tune = .all },
            Variant(key: "frozen", name: "frozen space-only (ln_post + head)", precision: .bf16) { $0.adapters = [] },
        ]
    }()

    static func config(_ v: Variant) -> ModelConfig {
        var c = ModelConfig()
        c.dropPathRate = 0; c.headDropout = 0
        c.precision = v.precision
        v.edit(&c)
        return c
    }

    func run(_ context: BenchContext) throws -> [BenchTable] {
        var ours: [OurStep] = []
        var torchResults: [TorchReport.Result] = []
        let defaultLibrary = Gemm.library
        Self.defaultLibrary = defaultLibrary
        for v in Self.variants {
            try Gemm.select(v.gemm ?? defaultLibrary)
            defer { try? Gemm.select(defaultLibrary) }
            // With the default library, PyTorch's same model and precision alternates with ours step by
            // step (its child waits for each of ours); the other libraries' rows reuse that result.
            let peer = try context.torchPython.flatMap { python in
                v.gemm != nil ? nil : try PacedTorchStep(python: python, script: Self.torchScript, model: v.key,
                                                         precision: v.precision.rawValue, threads: context.threads, context)
            }
            ours.append(try OurStep.measure(Self.config(v), name: "\(v.label) \(v.precision.rawValue)", steps: Self.steps, context,
                                            between: peer.map { p in { _ in try p.step() } }))
            if let peer { torchResults.append(try peer.finish()) }
        }
        let alternation = try LibraryAlternation.table(Self.config(Self.variants[0]), defaultLibrary: defaultLibrary, context)
        let roofline = Roofline.measure(configs: Self.variants.map { Self.config($0) }, context)
        let paced = try PacedRoofline.measure(Self.variants.filter { $0.key == "aim" && $0.gemm == nil }
                                                  .map { ("\($0.label) \($0.precision.rawValue)", Self.config($0)) },
                                              library: defaultLibrary, roofline, context)
        var torch: TorchReport?
        var torchNote = ""
        if let python = context.torchPython {
            torch = TorchReport(torch_version: try TorchReport.version(python: python, context), threads: context.threads,
                                steps: Self.steps, warmup: 1, results: torchResults)
        } else {
            torchNote = "PyTorch was not run (no `--torch-python`; `make bench` passes one)."
        }
        var tables = [stepTable(ours, torch, torchNote)] + (alternation.map { [$0] } ?? [])
            + [PacedRoofline.table(paced), rooflineTable(ours, roofline), profileTable(ours), roofline.libraryTable, roofline.shapeTable]
        if !roofline.bf16Table.rows.isEmpty { tables.append(roofline.bf16Table) }
        if let reason = BF16Support.unavailableReason {
            tables.insert(.skipped("bf16 rows (ours and PyTorch autocast)", reason), at: 1)
        }
        return tables
    }

    private func stepTable(_ ours: [OurStep], _ torch: TorchReport?, _ note: String) -> BenchTable {
        var t = BenchTable(title: "Step time and peak memory, ours vs PyTorch (\(Self.steps) timed steps each)",
                           columns: ["model", "ours", "our step s (min / median / max)", "PyTorch", "PyTorch step s (min / median / max)",
                                     "speed-up (PyTorch ÷ ours)", "our peak MB", "PyTorch peak MB", "memory ours ÷ PyTorch"])
        for (v, o) in zip(Self.variants, ours) {
            let peers = torch?.results.filter { $0.model == v.key } ?? []
            for p in peers.isEmpty ? [nil] : peers.map({ Optional($0) }) {
                t.rows.append([v.label, v.precision.rawValue, o.timing.triple,
                               p.map { "\($0.precision)" } ?? "—",
                               p.map { "\(fixed($0.step_s_min, 2)) / \(fixed($0.step_s_median, 2)) / \(fixed($0.step_s_max, 2))" } ?? "—",
                               p.map { fixed($0.step_s_median / o.timing.median, 2) + "×" } ?? "—",
                               fixed(o.peakGrowthMB, 0), p.map { fixed($0.peak_rss_growth_mb, 0) } ?? "—",
                               p.map { fixed(o.peakGrowthMB / $0.peak_rss_growth_mb, 2) } ?? "—"])
            }
        }
        if let torch { t.notes.append("PyTorch \(torch.torch_version), \(torch.threads) threads, \(torch.steps) timed steps after \(torch.warmup) warm-up, each right after one of our default-library steps of the same model and precision (paced); the other rows compare with those same PyTorch steps. Speed-up > 1: ours is faster.") }
        if !note.isEmpty { t.notes.append(note) }
        let env = ProcessInfo.processInfo.environment
        t.notes.append("Our process ran with OMP_WAIT_POLICY=\(env["OMP_WAIT_POLICY"] ?? "(unset: libgomp's default, a short spin then sleep)") and OPENBLAS_THREAD_TIMEOUT=\(env["OPENBLAS_THREAD_TIMEOUT"] ?? "(unset)"), as every aim-swift executable runs by default: our loops, oneDNN's products and the OpenBLAS/BLIS products (split over our threads) all run on one OpenMP team, so its threads' short spin after a call takes nothing from another pool. The PyTorch child runs without OPENBLAS_THREAD_TIMEOUT.")
        t.notes.append("Our peak: VmHWM reset through /proc/self/clear_refs before each model\(OurStep.peakResetWorks ? "" : " (the reset failed here, so later models' peaks are upper bounds)").")
        return t
    }

    private func rooflineTable(_ ours: [OurStep], _ r: Roofline) -> BenchTable {
        var t = BenchTable(title: "Our step against the fp32 sgemm roofline (same run)",
                           columns: ["model", "GEMM GFLOP per step", "roofline s (fastest library per shape)", "our step s (median)", "roofline ÷ ours",
                                     "our GFLOP/s", "our linear + attention s (profiled step)", "their share of the step", "non-GEMM share",
                                     "bf16 roofline s", "bf16 roofline ÷ ours"])
        for (i, o) in ours.enumerated() {
            let gemm = o.phase(.frozenGEMM) + o.phase(.tunableGEMM) + o.phase(.attention)
            t.rows.append([Self.variants[i].label + " " + Self.variants[i].precision.rawValue, fixed(r.gflop[i], 0), fixed(r.seconds[i], 2), fixed(o.timing.median, 2),
                           fixed(100 * r.seconds[i] / o.timing.median, 0) + " %", fixed(r.gflop[i] / o.timing.median, 0),
                           fixed(gemm, 2), fixed(100 * gemm / o.profiledStep, 0) + " %",
                           fixed(100 * (1 - gemm / o.profiledStep), 0) + " %",
                           Self.variants[i].precision == .bf16 ? r.bf16Seconds[i].map { fixed($0, 2) } ?? "—" : "—",
                           Self.variants[i].precision == .bf16 ? r.bf16Seconds[i].map { fixed(100 * $0 / o.timing.median, 0) + " %" } ?? "—" : "—"])
        }
        t.notes.append("The roofline takes each linear shape at the fastest fp32 library's median (table \"\(r.libraryTable.title)\"), and attention's per-head products at OpenBLAS's, as our kernels run them. bf16 rows are measured against the same fp32 roofline, so they may exceed 100 %.")
        t.notes.append("bf16 roofline: the linear shapes through the fastest bf16 kernel alone, oneDNN's matmul or AMX tiles per shape, and attention's products over the frames' tokens as bare bf16 products (tiles, or oneDNN without AMX) where our step runs them in bf16, else at their fp32 time (table \"\(r.bf16Table.title)\"); bf16 rows are measured against it (the goal: ≥ 85 % for AIM).")
        t.notes.append("Roofline ÷ ours is the \"% of the fp32 sgemm roofline\" (the goal: ≥ 90 % for AIM fp32 with the default library). Non-GEMM share: the profiled step's time outside linear-layer GEMMs and attention kernels (attention kernels include their softmax; patch embedding, head, rearranges, residual adds, LayerNorm, GELU and AdamW are outside).")
        return t
    }

    private func profileTable(_ ours: [OurStep]) -> BenchTable {
        OurStep.profileTable(ours, title: "Where our step's time goes (one extra step with StepProfile on)",
                             columns: Self.variants.map { "\($0.label) \($0.precision.rawValue) s (share)" },
                             rest: "rest: rearranges, copies, residual adds, patch embedding, head, zeroing, AdamW")
    }

}

// MARK: - our step

/// One training step of a model as the trainer runs it (batch 1, random frames, cross-entropy,
/// AdamW), on a model built as the trainer builds it.
final class BenchTrainingStep {
    let model: Recognizer
    private let config: ModelConfig
    private let video: Buffer
    private let labels = [3]
    private let dLogits: Tensor
    private let m: Tensor, v: Tensor

    init(_ c: ModelConfig) throws {
        config = c
        model = try Recognizer(config: c, seed: 1)
        model.releaseFrozenFP32Weights()   // as the trainer does in bf16
        video = Buffer(3 * c.numFrames * c.inputResolution * c.inputResolution, seed: 7)
        dLogits = Tensor([1, c.numClasses])
        m = Tensor([model.store.tunableCount]); v = Tensor([model.store.tunableCount])
    }

    func run(_ t: Int) throws {
        // Gradients cleared first, as the trainer and PyTorch's zero_grad(set_to_none=True) do,
        // so the last step's gradients are not held through this forward.
        model.store.zeroGrads()
        let logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true, step: UInt64(t)))
        labels.withUnsafeBufferPointer {
            crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: 1, classes: config.numClasses)
        }
        try model.backward(dLogits: dLogits.data)
        adamWStep(params: model.store.tunableValues.data, grads: model.store.tunableGrads.data, m: m.data, v: v.data,
                  count: model.store.tunableCount, lr: 3e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step: t)
    }
}

struct OurStep {
    var timing: Timing
    var peakGrowthMB: Double
    var profile: [Double]          // seconds per StepProfile.Phase
    var profiledStep: Double
    func phase(_ p: StepProfile.Phase) -> Double { profile[p.rawValue] }

    /// Seconds and share of each StepProfile phase per measured variant, the unprofiled rest, and
    /// the profiled step (the ViT and the Swin side-by-side sections).
    static func profileTable(_ ours: [OurStep], title: String, columns: [String], rest: String) -> BenchTable {
        var t = BenchTable(title: title, columns: ["phase"] + columns)
        for ph in StepProfile.Phase.allCases {
            t.rows.append([ph.label] + ours.map { "\(fixed($0.phase(ph), 2)) (\(fixed(100 * $0.phase(ph) / $0.profiledStep, 0)) %)" })
        }
        t.rows.append([rest] + ours.map { o in
            let r = o.profiledStep - o.profile.reduce(0, +)
            return "\(fixed(r, 2)) (\(fixed(100 * r / o.profiledStep, 0)) %)"
        })
        t.rows.append(["profiled step"] + ours.map { fixed($0.profiledStep, 2) })
        return t
    }

    nonisolated(unsafe) static var peakResetWorks = true

    /// `between(t)` runs after each of our steps (warm-up included), outside our timing: the paced
    /// side-by-side runs one PyTorch step there.
    static func measure(_ c: ModelConfig, name: String, steps: Int, _ context: BenchContext,
                        between: ((Int) throws -> Void)? = nil) throws -> OurStep {
        // The previous model's memory goes back to the system first (glibc keeps freed heap pages
        // otherwise), so this model's peak counts only what it uses.
        releaseFreedHeap()
        peakResetWorks = resetPeakRSS() && peakResetWorks
        let base = procStatusKB("VmRSS")
        let runner = try BenchTrainingStep(c)
        let model = runner.model
        func step(_ t: Int) throws { try runner.run(t) }
        var samples: [Double] = []
        for t in 1...(steps + 1) {
            let s = try seconds { try step(t) }
            if t > 1 { samples.append(s) }
            context.log("  ours \(name): step \(t) \(fixed(s, 2)) s\(t == 1 ? " (warm-up)" : "")")
            try between?(t)
        }
        context.log("  ours \(name): kept for backward \(fixed(Double(model.keptBytes) / 1e6, 0)) MB (\(fixed(Double(model.lentBytes) / 1e6, 0)) MB of it in gradient memory), scratch \(fixed(Double(model.scratchBytes) / 1e6, 0)) MB, "
                    + "unkept \(fixed(Double(model.unkeptBytes) / 1e6, 0)) MB, parameters \(fixed(Double(model.store.totalCount * 4) / 1e6, 0)) MB")
        StepProfile.reset(); StepProfile.enabled = true
        let profiled = try seconds { try step(steps + 2) }
        StepProfile.enabled = false
        let peak = procStatusKB("VmHWM")
        return OurStep(timing: Timing(samples: samples), peakGrowthMB: Double(peak - base) / 1024,
                       profile: StepProfile.Phase.allCases.map { StepProfile.seconds($0) }, profiledStep: profiled)
    }
}

/// glibc's malloc_trim(0) (its header is not in Swift's Glibc module): returns freed heap pages.
func releaseFreedHeap() {
    guard let sym = dlsym(nil, "malloc_trim") else { return }
    typealias Trim = @convention(c) (Int) -> Int32
    _ = unsafeBitCast(sym, to: Trim.self)(0)
}

/// A field of /proc/self/status in kB (0 if unreadable).
func procStatusKB(_ field: String) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }
    return 0
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0: write "5" to clear_refs).
func resetPeakRSS() -> Bool {
    guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? h.close() }
    do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
    return true
}

// MARK: - PyTorch

struct TorchReport {
    struct Result: Decodable {
        let model: String
        let precision: String
        let step_s_median: Double
        let step_s_min: Double
        let step_s_max: Double
        let peak_rss_growth_mb: Double
        let tunable_params: Int
    }
    let torch_version: String
    let threads: Int
    let steps: Int
    let warmup: Int
    let results: [Result]
}

extension TorchReport {
    /// `torch.__version__` of that interpreter.
    static func version(python: String, _ context: BenchContext) throws -> String {
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: python.contains("/") ? python : "/usr/bin/env")
        p.arguments = (python.contains("/") ? [] : [python]) + ["-c", "import torch; print(torch.__version__)"]
        p.environment = childEnvironment(threads: context.threads)
        p.standardOutput = out
        do { try p.run() } catch { throw BenchError("cannot start \(python): \(error.localizedDescription)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchError("\(python) cannot import torch (status \(p.terminationStatus))") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The PyTorch child's environment: our thread count, none of our own settings.
    static func childEnvironment(threads: Int) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OMP_NUM_THREADS"] = "\(threads)"
        // Our wait-policy and OpenBLAS-core settings (tools/bench.sh, ProcessEnvironment) are for our
        // thread pools and kernels; PyTorch keeps its defaults.
        env["OMP_WAIT_POLICY"] = nil; env["OPENBLAS_THREAD_TIMEOUT"] = nil
        for k in (env["AIM_STARTED_WITHOUT"] ?? "").split(separator: ",") { env[String(k)] = nil }
        env["AIM_STARTED_WITHOUT"] = nil
        // An emulated CPU class (AIM_CPU_FEATURES) holds PyTorch to the same instruction sets: its
        // own kernels (ATen), MKL's GEMMs and oneDNN's.
        for (k, v) in TorchReport.isaLimits(CPUFeatures.current.cpuClass) where CPUFeatures.isOverridden { env[k] = v }
        return env
    }

    /// PyTorch's own switches for an instruction-set ceiling (nothing above AVX-512 is limited).
    static func isaLimits(_ cls: CPUClass) -> [String: String] {
        switch cls {
        case .avx2: return ["ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"]
        case .baseline: return ["ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"]
        case .avx512: return ["ONEDNN_MAX_CPU_ISA": "AVX512_CORE"]
        case .avx512bf16, .amx: return [:]
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = "aim-bench: " + d }
}
