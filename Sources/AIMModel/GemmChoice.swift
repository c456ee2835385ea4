import AIMConfig
import AIMTensor
import Foundation

/// The fp32 GEMM library a run uses: forced by `gemm:` / `AIM_GEMM`, else (`auto`) the one the
/// probe measured fastest on this model's linear shapes at this thread count — cached, and
/// decided by one process (rank 0) whose answer `share` hands to all, so every rank runs the
/// same products.
public struct GemmChoice {
    public let library: GemmLibrary
    /// Why: "set by gemm: onednn", or the probe's figures and where they are cached.
    public let reason: String

    public init(library: GemmLibrary, reason: String) { self.library = library; self.reason = reason }

    /// Chooses and selects the library. `share` returns the deciding process's text on every
    /// process (a broadcast; identity alone).
    public static func apply(config: Config, decides: Bool = true, share: (String) -> String = { $0 },
                             workDir: URL? = nil) throws -> GemmChoice {
        let setting = config.string("gemm").lowercased()
        let env = ProcessInfo.processInfo.environment["AIM_GEMM"]?.lowercased() ?? ""
        if setting != "auto" || !(env.isEmpty || env == "auto") {
            let lib = try Gemm.resolve(setting)
            try Gemm.select(lib)
            return GemmChoice(library: lib, reason: setting != "auto" ? "set by gemm: \(setting)" : "set by AIM_GEMM=\(env)")
        }
        var text = ""
        if decides {
            let choice = try measured(config: config, workDir: workDir)
            text = choice.library.rawValue + "\n" + choice.reason
        }
        text = share(text)
        let parts = text.split(separator: "\n", maxSplits: 1).map(String.init)
        let lib = GemmLibrary(rawValue: parts.first ?? "") ?? .openblas
        // A library rank 0 has but this rank cannot load is an error, not a silent mix.
        try Gemm.select(lib)
        return GemmChoice(library: lib, reason: parts.count > 1 ? parts[1] : "")
    }

    /// The probe's choice for this model on this machine, from the cache when it has it.
    /// `remeasure`: probe even when the cache has an answer (and replace it).
    public static func measured(config: Config, workDir: URL?, remeasure: Bool = false) throws -> GemmChoice {
        try measured(model: try ModelConfig(config), workDir: workDir, remeasure: remeasure)
    }

    /// Timed on one clip's shapes whatever the micro-batch: C clips per forward run the same
    /// products with C times the rows, and the libraries ranked the same at 1 and 8 clips (ViT-B/16,
    /// Zen 4: 3.87 / 3.55 / 3.69 s per clip against 3.72 / 3.49 / 3.64), while timing 8 clips' rows
    /// took 15 s instead of 2. One answer then serves every micro-batch of a model.
    public static func measured(model mc: ModelConfig, workDir: URL?, remeasure: Bool = false) throws -> GemmChoice {
        let uses = StepGemms.list(mc, clips: 1).map(\.probed)
        let machine = GemmProbe.machineKey(threads: Threads.count)
        let key = GemmChoiceCache.key(machine: machine, shapes: uses)
        let cache = GemmChoiceCache.location(fallback: workDir).map(GemmChoiceCache.init)
        if !remeasure, let cache, let hit = cache.lookup(key) {
            return GemmChoice(library: hit.chosen, reason: "measured fastest for this model (\(hit.figures) per clip's linear products, "
                              + "\(hit.measuredAt)); cached in \(cache.file.path)")
        }
        let result = GemmProbe.measure(uses)
        var whereCached = "not cached (no writable cache folder)"
        if let cache {
            do { try cache.store(result, key: key, machine: machine, model: mc.summary); whereCached = "cached in \(cache.file.path)" } catch {
                whereCached = "not cached: \(error)"
            }
        }
        return GemmChoice(library: result.chosen, reason: "measured fastest for this model (\(result.figures) per clip's linear products, "
                          + String(format: "probe %.2f s, %d round(s)); ", result.probeSeconds, result.rounds) + whereCached)
    }
}
