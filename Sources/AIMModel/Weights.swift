import AIMTensor

/// What a strict load found, like PyTorch's `load_state_dict` report.
public struct LoadReport: CustomStringConvertible {
    public var loaded: [String] = []
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var misshapen: [String] = []
    public var description: String {
        "loaded \(loaded.count), missing \(missing.count), unexpected \(unexpected.count), mis-shaped \(misshapen.count)"
    }
}

extension Recognizer {
    /// The model a run starts from: the config's pretrained backbone (`model.pretrained`), and
    /// everything the file does not hold drawn from `seed` — the values `Recognizer(config:seed:)`
    /// draws, without drawing the ones the file replaces. `pretrained`: the load's report (nil
    /// without a pretrained file).
    public static func startingPoint(config c: ModelConfig, seed: UInt64) throws -> (model: Recognizer, pretrained: LoadReport?) {
        let model = try Recognizer(config: c, initialize: false)
        return (model, try model.start(seed: seed))
    }

    /// `startingPoint` for a model built with `initialize: false`.
    @discardableResult
    public func start(seed: UInt64) throws -> LoadReport? {
        guard !config.pretrained.isEmpty else { store.initialize(seed: seed); return nil }
        let report = try loadPretrainedBackbone(path: config.pretrained)
        // Frozen weights never train: one missing from the file would stay at its random draw for
        // the whole run (a file of another backbone, or an empty one, trained on silently before).
        // What the official code draws itself is the exception: adapters, temporal embedding and head
        // (frozen too under `tune: head`), and swin2d's temporal bias tables, which it draws and freezes.
        let drawnByOfficialCode = Recognizer.tunableKeywords + ["temporal_position_bias_table"]
        let missingFrozen = report.missing.filter { name in
            !(store[name]?.tunable ?? true) && !drawnByOfficialCode.contains { name.contains($0) }
        }
        if !missingFrozen.isEmpty {
            throw ModelError.weights(path: config.pretrained, problems: [
                "\(missingFrozen.count) of this model's frozen weights are not in the file (\(firstFew(missingFrozen.map { String($0.dropFirst("backbone.".count)) })); "
                + "\(report.loaded.count) matched): frozen weights never train, so the run would learn on random features — "
                + "a file of another backbone (model.backbone \(config.backbone.rawValue)), or cut short?"])
        }
        store.initialize(seed: seed, skipping: Set(report.loaded))
        return report
    }

    /// Loads recognizer weights (keys `backbone.…`, `cls_head.…`) from a safetensors file.
    /// `strict`: every parameter must be present with its shape and nothing else may be in the
    /// file except the listed `ignoring` prefixes (e.g. `grad.`, `video`) — otherwise throws,
    /// listing every problem. Non-strict loads what matches and reports the rest.
    @discardableResult
    public func loadWeights(path: String, strict: Bool = true, ignoring: [String] = []) throws -> LoadReport {
        let file = try SafetensorsFile(path: path)
        return try load(from: file, keyMap: { $0 }, strict: strict, ignoring: ignoring)
    }

    /// Loads a pretrained image backbone written by `tools/export_pretrained.py` (the backbone's
    /// own state dict, no `backbone.` prefix), as the official `init_weights` does with
    /// `strict=False`: adapters, `temporal_embedding` and the head stay as initialised.
    /// TimeSformer variants copy the spatial attention into the temporal one, as the official code.
    @discardableResult
    public func loadPretrainedBackbone(path: String) throws -> LoadReport {
        let file = try SafetensorsFile(path: path)
        let arch = config.architecture
        let names = Set(file.names)
        func source(_ ours: String) -> String? {
            guard ours.hasPrefix("backbone.") else { return nil }
            var k = String(ours.dropFirst("backbone.".count))
            if names.contains(k) { return k }
            switch arch {
            case .clipTimeSformer:
                k = k.replacingOccurrences(of: ".t_attn.", with: ".attn.").replacingOccurrences(of: ".t_norm.", with: ".ln_1.")
            case .imagenetTimeSformer:
                k = k.replacingOccurrences(of: ".temporal_attn.", with: ".attn.").replacingOccurrences(of: ".temporal_norm1.", with: ".norm1.")
                if k.hasPrefix("norm.") { k = "ln_post." + k.dropFirst("norm.".count) }
            default: break
            }
            return names.contains(k) ? k : nil
        }
        // Video Swin from a 2D Swin file: each relative_position_bias_table [(2wh−1)(2ww−1), H] is
        // repeated over the 2·wd−1 temporal offsets, as SwinTransformer3D.inflate_weights does (a
        // table of another spatial window, which the official code resizes bicubically, stays mis-shaped
        // here: `tools/export_pretrained.py swin --window W` does that resize when the file is written).
        var inflated: [String] = []
        if arch == .videoSwin {
            let repeats = 2 * config.windowSize[0] - 1
            for p in store.parameters where p.name.hasSuffix("relative_position_bias_table") {
                guard let key = source(p.name), let shape = try? file.shape(of: key), shape.count == 2,
                      shape[1] == p.shape[1], shape[0] * repeats == p.shape[0], repeats > 1 else { continue }
                try file.readFloats(named: key, into: p.data, count: shape[0] * shape[1])
                for r in 1..<repeats { (p.data + r * shape[0] * shape[1]).update(from: p.data, count: shape[0] * shape[1]) }
                inflated.append(p.name)
            }
        }
        var report = try load(from: file, keyMap: { inflated.contains($0) ? nil : source($0) }, strict: false, ignoring: [])
        report.missing.removeAll { inflated.contains($0) }
        report.loaded += inflated
        report.unexpected.removeAll { k in inflated.contains { source($0) == k } }
        // A checkpoint of the other family (Swin for a ViT config or the reverse) shares no key:
        // refuse it before any step rather than train from random weights.
        if report.loaded.isEmpty, let theirs = file.names.sorted().first,
           let ours = store.parameters.first(where: { $0.name.hasPrefix("backbone.") }) {
            let shape = (try? file.shape(of: theirs)).map { "\($0)" } ?? "?"
            throw ModelError.weights(path: file.path, problems: [
                "no weight of this \(config.backbone.rawValue) backbone is in the file: its first key is \(theirs) \(shape), "
                + "this model's first is \(ours.name.dropFirst("backbone.".count)) \(ours.shape) (a checkpoint of another backbone family?)"])
        }
        return report
    }

    private func load(from file: SafetensorsFile, keyMap: (String) -> String?, strict: Bool, ignoring: [String]) throws -> LoadReport {
        var report = LoadReport()
        var used = Set<String>()
        for p in store.parameters {
            guard let key = keyMap(p.name), file.contains(key) else { report.missing.append(p.name); continue }
            let shape = try file.shape(of: key)
            // PyTorch shapes may carry leading 1s that ours drop (or vice versa): compare element counts and squeezed dims.
            guard squeeze(shape) == squeeze(p.shape) else {
                report.misshapen.append("\(p.name): file \(shape), model \(p.shape)")
                used.insert(key); continue
            }
            guard !p.fp32Released else {
                throw ModelError.weights(path: file.path, problems: ["\(p.name): the model's fp32 copy of this frozen weight was "
                    + "already given back for its bf16 copy (model.precision bf16); load weights before training starts"])
            }
            try file.readFloats(named: key, into: p.data, count: p.count)
            // A NaN or infinity in a weight gives NaN logits, which top-k then reads as an answer.
            if let i = (0..<p.count).first(where: { !p.data[$0].isFinite }) {
                throw ModelError.weights(path: file.path, problems: ["\(key): value \(i) is \(p.data[i]) (weights must be finite)"])
            }
            report.loaded.append(p.name); used.insert(key)
        }
        report.unexpected = file.names.filter { n in !used.contains(n) && !ignoring.contains { n.hasPrefix($0) } }
        store.dropBF16Copies()   // bf16 copies of frozen weights are made from the values just loaded
        if !report.misshapen.isEmpty || (strict && (!report.missing.isEmpty || !report.unexpected.isEmpty)) {
            var problems: [String] = []
            // The first mismatch says what is wrong (another architecture, another class count);
            // a whole model's key list would bury it.
            if !report.misshapen.isEmpty { problems.append("mis-shaped: " + firstFew(report.misshapen, separator: "; ")) }
            // Not strict (a checkpoint of tunable weights, a pretrained backbone), missing weights come
            // from elsewhere: naming them beside a mis-shaped one would mislead.
            if !report.missing.isEmpty && strict { problems.append("missing keys: " + firstFew(report.missing)) }
            if !report.unexpected.isEmpty && strict { problems.append("unexpected keys: " + firstFew(report.unexpected)) }
            throw ModelError.weights(path: file.path, problems: problems)
        }
        return report
    }

    /// Adds every parameter (or only the tunable ones) to a writer under its official key.
    public func addWeights(to writer: inout SafetensorsWriter, tunableOnly: Bool = false, prefix: String = "") {
        for p in store.parameters where !tunableOnly || p.tunable {
            writer.add(prefix + p.name, tensor: p.value)
        }
    }

    /// Adds `grad.<key>` for every tunable parameter.
    public func addGradients(to writer: inout SafetensorsWriter) {
        for p in store.parameters where p.tunable { writer.add("grad." + p.name, tensor: p.grad!) }
    }
}

/// A shape without its 1s: PyTorch shapes may carry leading 1s that ours drop (or the reverse).
func squeeze(_ s: [Int]) -> [Int] { s.filter { $0 != 1 } }

/// The first `limit` items, then how many there are in all.
func firstFew(_ items: [String], limit: Int = 5, separator: String = ", ") -> String {
    items.prefix(limit).joined(separator: separator) + (items.count > limit ? " … (\(items.count) in all)" : "")
}
