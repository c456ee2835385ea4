import AIMModel
import AIMTensor
import Foundation

/// Issue 19's side-by-side: the Swin-B training step at the paper's K400 input (32×224², batch 1,
/// fp32), AIM on Swin (adapters + head tunable) and the full-finetuning VideoSwin-B, ours against
/// PyTorch's (bench/torch_step.py, models from tools/reference_state.py at the real Swin-B sizes).
struct SwinTorchComparisonSection: BenchSection {
    let title = "Swin-B training step side by side: ours vs PyTorch"
    let summary = """
        AIM Swin-B (configs/k400/aim_swinb_in21k_32f.yaml: tunable = names containing Adapter + cls_head, \
        9.17M, as the official tools/train.py) and VideoSwin-B (configs/k400/videoswin_b_in21k_32f.yaml, all \
        88.05M tunable), 32×224², batch 1, random weights, drop path and head dropout 0; one step = \
        forward + cross-entropy + backward + AdamW over the tunable parameters. PyTorch runs \
        `bench/torch_step.py --models swin_aim|videoswin` (our transcription in `tools/reference_state.py`, the \
        one the Swin parity fixtures come from, checked against the official classes by \
        `tools/crosscheck_official_swin.py`) with the same thread count, each (model, precision) in its own process. \
        Ours and PyTorch's alternate step by step: PyTorch's child builds its model and then runs one step each \
        time one of ours has finished (`torch_step.py --paced`), so the two sides of a row sample the machine \
        within seconds of each other (this machine's speed drifts by tens of percent over minutes, \
        docs/PERFORMANCE.md). Both models are in memory at once; each side's peak is its own process's. A step takes seconds, so only \
        \(SwinTorchComparisonSection.steps) timed steps after one warm-up are run per side (min / median / max); \
        memory is measured as in the ViT side-by-side (peak RSS growth). bf16 rows (where the CPU has bf16 \
        products): ours with model.precision bf16 (every linear but the head multiplies in bf16, fp32 accumulation \
        and attention), PyTorch under bf16 autocast.
        """

    static let steps = 3

    struct Variant {
        let key: String        // torch_step.py's model name
        let name: String
        let config: ModelConfig
    }

    static let variants: [Variant] = {
        var aim = ModelConfig()   // the defaults are Swin-B's embed/depths/heads; the backbone is set here
        aim.backbone = .swin2d; aim.numFrames = 32; aim.inputResolution = 224; aim.swinPatch = [2, 4, 4]
        aim.embedDim = 128; aim.depths = [2, 2, 18, 2]; aim.numHeads = [4, 8, 16, 32]; aim.windowSize = [7]
        aim.tune = .adapters; aim.dropPathRate = 0; aim.headDropout = 0
        var video = aim
        video.backbone = .videoswin; video.windowSize = [8, 7, 7]; video.adapters = []; video.tune = .all
        return [Variant(key: "swin_aim", name: "AIM Swin-B (adapters + head tunable)", config: aim),
                Variant(key: "videoswin", name: "VideoSwin-B (all tunable)", config: video)]
    }()

    /// fp32 always; bf16 (oneDNN bf16 products, PyTorch bf16 autocast) where the CPU has bf16 products.
    static var precisions: [String] { BF16Support.unavailableReason == nil ? ["fp32", "bf16"] : ["fp32"] }

    func run(_ context: BenchContext) throws -> [BenchTable] {
        var ours: [(variant: Variant, precision: String, step: OurStep)] = []
        var torch: [TorchReport.Result] = []
        var torchInfo: String?
        for v in Self.variants {
            for precision in Self.precisions {
                var c = v.config
                c.precision = precision == "bf16" ? .bf16 : .fp32
                // PyTorch's steps alternate with ours one by one (its child is built first and waits).
                let peer = try context.torchPython.map {
                    try PacedTorchStep(python: $0, script: TorchComparisonSection.torchScript, model: v.key, precision: precision,
                                       threads: context.threads, context)
                }
                ours.append((v, precision, try OurStep.measure(c, name: v.name + " " + precision, steps: Self.steps, context,
                                                               between: peer.map { p in { _ in try p.step() } })))
                if let peer { torch.append(try peer.finish()) }
            }
        }
        if let python = context.torchPython { torchInfo = try TorchReport.version(python: python, context) }
        return [stepTable(ours, torch, torchInfo), profileTable(ours.filter { $0.precision == "fp32" }.map(\.step))]
    }

    private func stepTable(_ ours: [(variant: Variant, precision: String, step: OurStep)], _ torch: [TorchReport.Result],
                           _ info: String?) -> BenchTable {
        var t = BenchTable(title: "Swin-B step time and peak memory, ours vs PyTorch (\(Self.steps) timed steps each)",
                           columns: ["model", "precision", "tunable params", "our step s (min / median / max)", "PyTorch step s (min / median / max)",
                                     "speed-up (PyTorch ÷ ours)", "our peak MB", "PyTorch peak MB", "memory ours ÷ PyTorch"])
        for (v, precision, o) in ours {
            let p = torch.first { $0.model == v.key && $0.precision == precision }
            t.rows.append([v.name, precision == "bf16" ? "bf16 (PyTorch: autocast)" : "fp32", p.map { "\($0.tunable_params)" } ?? "—", o.timing.triple,
                           p.map { "\(fixed($0.step_s_min, 2)) / \(fixed($0.step_s_median, 2)) / \(fixed($0.step_s_max, 2))" } ?? "—",
                           p.map { fixed($0.step_s_median / o.timing.median, 2) + "×" } ?? "—",
                           fixed(o.peakGrowthMB, 0), p.map { fixed($0.peak_rss_growth_mb, 0) } ?? "—",
                           p.map { fixed(o.peakGrowthMB / $0.peak_rss_growth_mb, 2) } ?? "—"])
        }
        if let version = info {
            t.notes.append("PyTorch \(version), \(Self.steps) timed steps after 1 warm-up, each right after one of ours (paced). Speed-up > 1: ours is faster. Issue 19's goals for AIM Swin-B (fp32): speed-up ≥ 1.25×, memory ours ÷ PyTorch ≤ 0.6.")
        } else {
            t.notes.append("PyTorch was not run (no `--torch-python`; `make bench` passes one).")
        }
        if let reason = BF16Support.unavailableReason { t.notes.append("bf16 not run: \(reason).") }
        t.notes.append("Our peak: VmHWM reset through /proc/self/clear_refs before each model\(OurStep.peakResetWorks ? "" : " (the reset failed here, so later models' peaks are upper bounds)").")
        return t
    }

    private func profileTable(_ ours: [OurStep]) -> BenchTable {
        OurStep.profileTable(ours, title: "Where our Swin-B step's time goes (one extra step with StepProfile on)",
                             columns: Self.variants.map { "\($0.name) s (share)" },
                             rest: "rest: window partition/shift copies, patch merging, residual adds, patch embedding, head, zeroing, AdamW")
    }

}
