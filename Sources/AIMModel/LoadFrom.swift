import AIMTensor

/// What `load_from` took from a trained model's file.
public struct LoadFromReport {
    /// Tunable weights read from the file.
    public var loaded: [String] = []
    /// Tunable weights the file holds in another shape ("name: file [400, 768], model [20, 768]"),
    /// left as initialised: a head for another class count, as mmcv skips it with a warning.
    public var misshapen: [String] = []
    /// Tunable weights not in the file, left as initialised.
    public var missing: [String] = []
    /// Frozen weights the file also holds, found equal to the model's (from model.pretrained).
    public var frozenMatched = 0
    /// Weights of the file this model does not have (an AIM file given to a space-only model:
    /// its adapters), not read: mmcv's strict=False lists them as unexpected keys.
    public var unused: [String] = []
}

extension Recognizer {
    /// mmaction2's `load_from`: the starting weights of a new run from a trained model's file (an
    /// aim-swift checkpoint, or a full weights file such as `tools/convert_checkpoint.py
    /// from-official` writes). The tunable weights of matching name and shape are read; the
    /// frozen ones stay those of model.pretrained, which is what a checkpoint gives back on resume
    /// and evaluation. So a file whose frozen weights differ (adapters trained on another
    /// backbone) is refused: its adapters would be read against features they never saw.
    public func loadFrom(path: String) throws -> LoadFromReport {
        let file = try SafetensorsFile(path: path)
        var report = LoadFromReport()
        var differing: [String] = []
        for p in store.parameters {
            guard file.contains(p.name) else {
                if p.tunable { report.missing.append(p.name) }
                continue
            }
            let shape = try file.shape(of: p.name)
            guard squeeze(shape) == squeeze(p.shape) else {
                let text = "\(p.name): file \(shape), model \(p.shape)"
                if p.tunable { report.misshapen.append(text) } else { differing.append(text) }
                continue
            }
            if p.tunable {
                try file.readFloats(named: p.name, into: p.data, count: p.count)
                if let i = (0..<p.count).first(where: { !p.data[$0].isFinite }) {
                    throw ModelError.weights(path: path, problems: ["\(p.name): value \(i) is \(p.data[i]) (weights must be finite)"])
                }
                report.loaded.append(p.name)
                continue
            }
            guard !p.fp32Released else {
                throw ModelError.weights(path: path, problems: ["load_from is read before bf16 gives the frozen fp32 weights back"])
            }
            // Equal up to float rounding of a conversion (relative to the tensor's scale); another
            // backbone differs by the weights' own size.
            let theirs = Tensor([p.count])
            try file.readFloats(named: p.name, into: theirs.data, count: p.count)
            var scale: Float = 1e-12, worst: Float = 0
            for i in 0..<p.count {
                scale = max(scale, abs(p.data[i]))
                worst = max(worst, abs(theirs.data[i] - p.data[i]))
            }
            if !(worst <= 1e-5 * scale) { differing.append("\(p.name) (differs by up to \(worst))") } else { report.frozenMatched += 1 }
        }
        report.unused = file.names.filter { !$0.hasPrefix("optimizer.") && store[$0] == nil }.sorted()
        if !differing.isEmpty {
            let source = config.pretrained.isEmpty ? "drawn from train.seed (no model.pretrained)" : "of model.pretrained \(config.pretrained)"
            throw ModelError.weights(path: path, problems: [
                "load_from: \(differing.count) frozen weights in the file are not those \(source): \(firstFew(differing, separator: "; ")); "
                + "its tunable weights were trained on another backbone. Set model.pretrained to the backbone they were trained with "
                + "(a finetuned backbone becomes one with aim-model export-backbone)"])
        }
        if report.loaded.isEmpty {
            let theirs = file.names.filter { !$0.hasPrefix("optimizer.") }.sorted().first ?? "none"
            throw ModelError.weights(path: path, problems: [
                "load_from: none of this model's \(report.missing.count + report.misshapen.count) tunable weights is in the file with its shape "
                + "(its first key: \(theirs)\(report.misshapen.first.map { "; \($0)" } ?? "")) — a file of another model?"])
        }
        return report
    }
}

extension Recognizer {
    /// The head's rows (`cls_head.fc_cls`) reordered from the classes of `trained` to those of
    /// `wanted`, the same names in another order: row i becomes the row of `wanted[i]`. False
    /// (nothing changed) when the names are not the same set or the head has another size.
    public func reorderHead(trained: [String], wanted: [String]) -> Bool {
        guard trained != wanted, Set(trained) == Set(wanted), Set(wanted).count == wanted.count,
              let w = store["cls_head.fc_cls.weight"], w.shape.count == 2, w.shape[0] == wanted.count else { return false }
        let rows = wanted.map { trained.firstIndex(of: $0)! }, d = w.shape[1]
        let oldW = Array(UnsafeBufferPointer(start: w.data, count: w.count))
        for (i, j) in rows.enumerated() { (w.data + i * d).update(from: Array(oldW[(j * d)..<(j * d + d)]), count: d) }
        if let b = store["cls_head.fc_cls.bias"], b.count == wanted.count {
            let oldB = Array(UnsafeBufferPointer(start: b.data, count: b.count))
            for (i, j) in rows.enumerated() { b.data[i] = oldB[j] }
        }
        return true
    }
}
