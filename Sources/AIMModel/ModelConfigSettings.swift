/// Builds a `ModelConfig` from `model.*` settings (values as YAML/JSON give them: Int, Double,
/// String, Bool, [String]); keys not given keep their defaults. Used by the config layer and by
/// the parity fixtures, whose metadata stores the settings they were made with.
extension ModelConfig {
    public init(settings: [String: Any]) throws {
        self.init()
        for (key, value) in settings where key.hasPrefix("model.") {
            try set(key, value)
        }
    }

    public mutating func set(_ key: String, _ value: Any) throws {
        func bad(_ why: String) -> ModelError { .invalidConfig(key: key, reason: why) }
        func int() throws -> Int {
            if let v = value as? Int { return v }
            if let v = value as? Double, v == v.rounded() { return Int(v) }
            if let s = value as? String, let v = Int(s) { return v }
            throw bad("expected an integer, got \(value)")
        }
        func ints(_ list: [Any]) throws -> [Int] {
            try list.map { item in
                if let v = item as? Int { return v }
                if let v = item as? Double, v == v.rounded(), abs(v) < 1e9 { return Int(v) }
                if let s = item as? String, let v = Int(s) { return v }
                throw bad("expected integers, got \(item)")
            }
        }
        func double() throws -> Double {
            if let v = value as? Double { return v }
            if let v = value as? Int { return Double(v) }
            if let s = value as? String, let v = Double(s) { return v }
            throw bad("expected a number, got \(value)")
        }
        func string() throws -> String {
            if let v = value as? String { return v }
            throw bad("expected a string, got \(value)")
        }
        func bool() throws -> Bool {
            if let v = value as? Bool { return v }
            if let s = value as? String, let v = Bool(s) { return v }
            throw bad("expected true or false, got \(value)")
        }
        func choice<E: RawRepresentable & CaseIterable>(_: E.Type) throws -> E where E.RawValue == String {
            let s = try string()
            guard let e = E(rawValue: s) else {
                throw bad("'\(s)' is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return e
        }
        switch key {
        case "model.backbone": backbone = try choice(Backbone.self)
        case "model.input_resolution": inputResolution = try int()
        case "model.patch_size":
            if let list = value as? [Any] {
                let v = try ints(list)
                switch v.count {
                case 1: patchSize = v[0]
                case 3: swinPatch = v
                default: throw bad("expected an integer (ViT) or a list of 3 (t, h, w) (Swin), got \(v.count) values")
                }
            } else { patchSize = try int() }
        case "model.embed_dim": embedDim = try int()
        case "model.depths":
            guard let list = value as? [Any] else { throw bad("expected a list of integers") }
            depths = try ints(list)
        case "model.num_heads":
            guard let list = value as? [Any] else { throw bad("expected a list of integers") }
            numHeads = try ints(list)
        case "model.window_size":
            if let list = value as? [Any] { windowSize = try ints(list) } else { windowSize = [try int()] }
        case "model.width": width = try int()
        case "model.layers": layers = try int()
        case "model.heads": heads = try int()
        case "model.mlp_ratio": mlpRatio = try double()
        case "model.num_frames": numFrames = try int()
        case "model.num_classes": numClasses = try int()
        case "model.adapters":
            guard let list = value as? [Any] else { throw bad("expected a list of temporal/spatial/joint") }
            adapters = []
            for item in list {
                guard let s = item as? String, let k = AdapterKind(rawValue: s) else {
                    throw bad("'\(item)' is not one of temporal, spatial, joint")
                }
                adapters.insert(k)
            }
        case "model.num_tadapter": numTAdapter = try int()
        case "model.adapter_scale": adapterScale = Float(try double())
        case "model.adapter_mlp_ratio": adapterMLPRatio = try double()
        case "model.adapter_layers": adapterLayers = try choice(AdapterLayers.self)
        case "model.tune": tune = try choice(Tune.self)
        case "model.divided_space_time": dividedSpaceTime = try bool()
        case "model.drop_path_rate": dropPathRate = Float(try double())
        case "model.head_dropout": headDropout = Float(try double())
        case "model.pretrained": pretrained = try string()
        case "model.precision": precision = try choice(Precision.self)
        default: throw bad("unknown model key")
        }
    }
}
