// aim-model: inspect a model config (parameters, GFLOPs) or run a model on given weights/input.
import AIMConfig
import AIMModel
import AIMTensor
import ArgumentParser
import Foundation

struct AIMModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-model",
        abstract: "Inspect or run an AIM / baseline video model.",
        subcommands: [Info.self, ShowConfig.self, Run.self, ExportBackbone.self, CPU.self])
}

struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "YAML experiment config (configs/…).")
    var config: String
    @Option(name: .customLong("set"), help: "Override: key=value (repeatable).")
    var overrides: [String] = []

    func load() throws -> Config { try Config.load(path: config, overrides: overrides) }
}

struct CPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "This CPU's class and the kernels aim-swift picks for it (fp32 GEMM library, bf16, OpenBLAS core).",
        discussion: "AIM_CPU_FEATURES=avx2,fma narrows the features (to check what an AVX2-only CPU would run); AIM_GEMM or the gemm config key picks the fp32 GEMM library.")
    @Flag(help: "Print only `export NAME=value` lines for the settings a process here should start with (for make test).")
    var exports = false
    @Option(help: "Measure the fp32 GEMM libraries on this config's linear shapes (what `gemm: auto` does at the start of a run).")
    var config: String?
    @Option(name: .customLong("set"), help: "Override for --config: key=value (repeatable).")
    var overrides: [String] = []
    @Option(help: "Threads for the measurement (default: the config's, else all cores).")
    var threads: Int?
    @Flag(help: "With --config: measure again even when the cache has this model's answer.")
    var remeasure = false

    func validate() throws {
        if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
    }

    func run() throws {
        if exports {
            for (k, v) in ProcessEnvironment.recommendedSettings.sorted(by: { $0.key < $1.key }) {
                print("export \(k)=\(v)")
            }
            return
        }
        let f = CPUFeatures.current
        print("cpu:            \(CPUReport.summary)")
        print("class:          \(f.cpuClass.rawValue)")
        let env = ProcessInfo.processInfo.environment
        let replaced = env["AIM_REPLACED_OPENBLAS_CORETYPE"].map { "; the environment's \($0) does not fit this class and was replaced" } ?? ""
        print("OpenBLAS core:  \(OpenBLASInfo.coreName)\(env["OPENBLAS_CORETYPE"].map { " (OPENBLAS_CORETYPE=\($0)\(replaced))" } ?? "")")
        print("oneDNN isa:     \(OneDNNInfo.isa)")
        for lib in GemmLibrary.allCases {
            print("gemm \(lib.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(Gemm.isAvailable(lib) ? Gemm.describe(lib) : "unavailable")")
        }
        if let forced = env["AIM_GEMM"], !forced.isEmpty, forced.lowercased() != "auto" {
            print("fp32 GEMM:      \(try Gemm.resolve("auto").rawValue) (AIM_GEMM=\(forced))")
        } else {
            print("fp32 GEMM:      gemm: auto measures the libraries on each model's linear shapes when a run starts (about 1-2 s for ViT-B), once per CPU, thread count and model; `gemm:` / AIM_GEMM force one")
        }
        if let cfgPath = config {
            var cfg = try Config.load(path: cfgPath, overrides: overrides)
            try cfg.set("gemm", .string("auto"))
            Threads.set(threads ?? (cfg.int("threads") > 0 ? cfg.int("threads") : Threads.defaultCount()))
            let choice = try GemmChoice.measured(config: cfg, workDir: nil, remeasure: remeasure)
            print("this model:     \(choice.library.rawValue) at \(Threads.count) thread(s), timed on one clip's shapes — \(choice.reason)")
        }
        if let cache = GemmChoiceCache.location(fallback: nil).map(GemmChoiceCache.init) {
            let entries = cache.entries
            print("choice cache:   \(cache.file.path) (\(entries.count) entr\(entries.count == 1 ? "y" : "ies"))")
            for e in entries.sorted(by: { $0.result.measuredAt < $1.result.measuredAt }) {
                let threads = e.machine.split(separator: ";").first { $0.contains("threads") }.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                print("  \(e.result.measuredAt)  \(e.model ?? "model not recorded"), \(threads): \(e.result.library) (\(e.result.figures))")
            }
        }
        print("bf16:           \(BF16Support.unavailableReason.map { "unavailable — " + $0 } ?? "available: " + BF16Products.description)")
    }
}

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print a config as aim-train reads it: every key and its value, bases, defaults and --set merged, each with a line saying what it means (mmaction2's tools/analysis/print_config.py). The output is itself a config file.")
    @OptionGroup var options: ConfigOptions
    @Flag(name: .customLong("no-comments"), help: "Keys and values only.") var noComments = false

    func run() throws {
        let config = try options.load()
        print(config.yamlText(header: ["\(options.config)\(options.overrides.isEmpty ? "" : " with " + options.overrides.map { "--set " + $0 }.joined(separator: " ")): every key"],
                              describe: !noComments), terminator: "")
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-module parameters and GFLOPs (fvcore convention).")
    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print {total_params, tunable_params, gflops_per_view, views, gflops} as JSON.")
    var json = false

    func run() throws {
        let config = try options.load()
        let mc = try ModelConfig(config)
        let model = try Recognizer(config: mc, initialize: false)
        let rows = model.moduleCounts()
        let perView = Double(rows.reduce(0) { $0 + $1.flops }) / 1e9
        let clips = config.int("data.test_num_clips"), crops = config.string("data.test_crop") == "three" ? 3 : 1
        let views = clips * crops
        let total = model.totalParameters, tunable = model.tunableParameterCount
        let gflops = (perView * Double(views)).rounded(.down)
        if json {
            let obj: [String: Any] = ["total_params": total, "tunable_params": tunable, "gflops_per_view": perView,
                                      "views": views, "gflops": gflops]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("config: \(options.config)  architecture: \(mc.architecture)  tune: \(mc.tune.rawValue)")
        let w = max(24, rows.map(\.module.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        print(pad("module", w) + lpad("params", 14) + lpad("tunable", 14) + lpad("GFLOPs/view", 14))
        for r in rows {
            print(pad(r.module, w) + lpad("\(r.parameters)", 14) + lpad("\(r.tunable)", 14)
                  + lpad(String(format: "%.3f", Double(r.flops) / 1e9), 14))
        }
        print(pad("total", w) + lpad("\(total)", 14) + lpad("\(tunable)", 14) + lpad(String(format: "%.3f", perView), 14))
        print(String(format: "params %.1fM, tunable %.2fM, %.2f GFLOPs/view × %d views (%d×%d×%d) = %.0f GFLOPs",
                     Double(total) / 1e6, Double(tunable) / 1e6, perView, views, mc.numFrames, clips, crops, gflops))
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forward (and backward) on given weights and input, deterministically.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Recognizer weights (safetensors, official keys backbone.… / cls_head.…).")
    var weights: String
    @Option(help: "Input safetensors: video float32 [B,3,T,H,W] (normalised), label int64 [B].")
    var input: String
    @Option(help: "Output safetensors: logits, and with --backward loss and grad.<key>.")
    var output: String
    @Flag(help: "Also compute the mean cross-entropy and every tunable parameter's gradient.")
    var backward = false
    @Option(help: "Threads for OpenBLAS and our loops (default: cores ÷ ranks).")
    var threads: Int?

    func run() throws {
        let config = try options.load()
        try Gemm.select(try Gemm.resolve(config.string("gemm")))
        Threads.set(threads ?? Threads.defaultCount())
        let mc = try ModelConfig(config)
        let model = try Recognizer(config: mc, initialize: false)
        try model.loadWeights(path: weights, strict: true)
        let file = try SafetensorsFile(path: input)
        let video = try file.tensor(named: "video")
        let R = mc.inputResolution
        guard video.shape.count == 5, video.shape[0] >= 1, video.shape[1] == 3, video.shape[2] == mc.numFrames, video.shape[3] == R, video.shape[4] == R else {
            throw ModelError.input("\(input): video has shape \(video.shape), the config expects [B, 3, \(mc.numFrames), \(R), \(R)] with B ≥ 1")
        }
        // A NaN or infinite pixel would give NaN logits that look like an answer.
        if let i = (0..<video.count).first(where: { !video.data[$0].isFinite }) {
            throw ModelError.input("\(input): video value \(i) is \(video.data[i]) (values must be finite)")
        }
        let B = video.shape[0]
        let logits = try model.forward(video: video.data, context: PassContext(batch: B, training: false))
        var writer = SafetensorsWriter(metadata: ["config": options.config])
        writer.add("logits", tensor: logits)
        if backward {
            guard file.contains("label") else { throw ModelError.input("\(input): no 'label' tensor (int64 [B]) for --backward") }
            let labels = try file.int64Array(named: "label").map { Int($0) }
            guard labels.count == B else { throw ModelError.input("\(input): label has \(labels.count) entries for a batch of \(B)") }
            if let bad = labels.first(where: { $0 < 0 || $0 >= mc.numClasses }) {
                throw ModelError.input("\(input): label \(bad) is outside 0..<\(mc.numClasses)")
            }
            let K = mc.numClasses
            let loss = labels.withUnsafeBufferPointer { crossEntropyForward(logits: logits.data, labels: $0.baseAddress!, batch: B, classes: K) }
            let dLogits = Tensor([B, K])
            labels.withUnsafeBufferPointer {
                crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: B, classes: K)
            }
            model.store.zeroGrads()
            try model.backward(dLogits: dLogits.data)
            writer.add("loss", floats: [loss], shape: [])
            model.addGradients(to: &writer)
        }
        try writer.save(to: output)
    }
}

struct ExportBackbone: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-backbone",
        abstract: "Write the image backbone of a trained model as a pretrained-backbone file (no backbone. prefix, no adapters, no temporal_embedding, no head) — what model.pretrained reads.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Weights or checkpoint holding every backbone parameter (e.g. a tune: all run's latest.safetensors).")
    var checkpoint: String
    @Option(help: "Output safetensors.")
    var output: String

    func run() throws {
        let mc = try ModelConfig(try options.load())
        let model = try Recognizer(config: mc, initialize: false)
        try model.loadWeights(path: checkpoint, strict: false, ignoring: ["optimizer."])
        let file = try SafetensorsFile(path: checkpoint)
        var writer = SafetensorsWriter(metadata: ["source": checkpoint, "format": "aim-swift-backbone"])
        var written = 0
        for p in model.store.parameters where p.name.hasPrefix("backbone.") {
            let key = String(p.name.dropFirst("backbone.".count))
            // swin2d's temporal bias tables belong to the temporal pass (sized by the frame count), not to the image model.
            if key.contains("Adapter") || key.hasPrefix("temporal_embedding") || key.contains("temporal_position_bias_table") { continue }
            guard file.contains(p.name) else { throw ModelError.weights(path: checkpoint, problems: ["no \(p.name): export needs every backbone weight (train with model.tune: all)"]) }
            writer.add(key, tensor: p.value)
            written += 1
        }
        try writer.save(to: output)
        print("wrote \(written) backbone tensors to \(output)")
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
do {
    var command = try AIMModelCommand.parseAsRoot()
    try command.run()
} catch {
    if let e = error as? ModelError { Console.errorRaw("aim-model: \(e)\n"); Foundation.exit(1) }
    if let e = error as? ConfigError { Console.errorRaw("aim-model: \(e)\n"); Foundation.exit(1) }
    if let e = error as? SafetensorsError { Console.errorRaw("aim-model: \(e)\n"); Foundation.exit(1) }
    if let e = error as? FileWriteError { Console.errorRaw("aim-model: \(e)\n"); Foundation.exit(74) }
    AIMModelCommand.exit(withError: error)
}
