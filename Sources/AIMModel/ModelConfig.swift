/// Everything that shapes a model: the `model.*` keys of an experiment config.
public struct ModelConfig: Equatable, Sendable {
    public enum Backbone: String, Sendable, CaseIterable {
        case clip, imagenet, timesformer
        /// AIM on Swin (SwinTransformer2D_Adapter) and the full-finetuning Video Swin (SwinTransformer3D).
        case swin2d, videoswin
    }
    public enum AdapterKind: String, Sendable, CaseIterable, Comparable {
        case temporal, spatial, joint
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }
    public enum AdapterLayers: String, Sendable, CaseIterable {
        case all, bottom6, top6, skip
    }
    public enum Tune: String, Sendable, CaseIterable {
        case adapters, all, head
    }
    public enum Precision: String, Sendable, CaseIterable {
        case fp32, bf16
    }

    public var backbone: Backbone = .clip
    public var inputResolution = 224
    public var patchSize = 16
    public var width = 768
    public var layers = 12
    public var heads = 12
    public var mlpRatio = 4.0
    public var numFrames = 8
    public var numClasses = 400
    public var adapters: Set<AdapterKind> = [.temporal, .spatial, .joint]
    public var numTAdapter = 1
    public var adapterScale: Float = 0.5
    public var adapterMLPRatio = 0.25
    public var adapterLayers: AdapterLayers = .all
    public var tune: Tune = .adapters
    public var dividedSpaceTime = false
    public var dropPathRate: Float = 0.2
    public var headDropout: Float = 0.5
    public var pretrained = ""
    public var precision: Precision = .fp32

    // The Swin family (model.backbone swin2d | videoswin); the ViT keys above do not apply to it.
    public var embedDim = 128
    public var depths = [2, 2, 18, 2]
    public var numHeads = [4, 8, 16, 32]
    /// One value for swin2d (square 2D windows), three (t, h, w) for videoswin.
    public var windowSize = [7]
    /// (t, h, w) of the Conv3d patch embedding.
    public var swinPatch = [2, 4, 4]

    public init() {}

    public var isSwin: Bool { backbone == .swin2d || backbone == .videoswin }

    /// Which of the four architectures (docs/MODEL_REFERENCE.md §1–§4) this config builds.
    public enum Architecture: Sendable { case clipAIM, imagenetAIM, clipTimeSformer, imagenetTimeSformer, swinAIM, videoSwin }

    public var architecture: Architecture {
        switch backbone {
        case .swin2d: return .swinAIM
        case .videoswin: return .videoSwin
        case .clip: return dividedSpaceTime ? .clipTimeSformer : .clipAIM
        case .timesformer: return .clipTimeSformer
        case .imagenet: return dividedSpaceTime ? .imagenetTimeSformer : .imagenetAIM
        }
    }

    /// One line naming the model's shape, e.g. "clip AIM, width 768, 12 layers, 8×224², tune adapters".
    public var summary: String {
        let kind: String
        switch architecture {
        case .clipAIM, .imagenetAIM, .swinAIM: kind = adapters.isEmpty ? "space-only" : "AIM"
        case .clipTimeSformer, .imagenetTimeSformer: kind = "TimeSformer"
        case .videoSwin: kind = "VideoSwin"
        }
        let size = isSwin ? "embed \(embedDim), depths \(depths.map(String.init).joined(separator: "-"))"
                          : "width \(width), \(layers) layers, patch \(patchSize)"
        return "\(backbone.rawValue) \(kind), \(size), \(numFrames)×\(inputResolution)², tune \(tune.rawValue)"
    }

    public var gridSize: Int { inputResolution / patchSize }
    public var patchesPerFrame: Int { gridSize * gridSize }
    public var tokensPerFrame: Int { patchesPerFrame + 1 }
    public var mlpHidden: Int { Int(Double(width) * mlpRatio) }
    public var adapterHidden: Int { Int(Double(width) * adapterMLPRatio) }
    public var isCLIPStyle: Bool { architecture == .clipAIM || architecture == .clipTimeSformer }
    public var layerNormEps: Float { isCLIPStyle ? 1e-5 : 1e-6 }

    /// Whether block `i` carries adapters (the `model.adapter_layers` positions).
    public func blockIsAdapted(_ i: Int) -> Bool {
        guard !adapters.isEmpty else { return false }
        switch adapterLayers {
        case .all: return true
        case .bottom6: return i < 6
        case .top6: return i >= layers - 6
        case .skip: return i % 2 == 0
        }
    }

    public func blockHas(_ kind: AdapterKind, _ i: Int) -> Bool { blockIsAdapted(i) && adapters.contains(kind) }

    /// `temporal_embedding` exists only where some block adapts temporally (or in the CLIP TimeSformer).
    public var hasTemporalEmbedding: Bool {
        switch architecture {
        case .clipTimeSformer: return true
        case .imagenetTimeSformer: return false
        case .clipAIM, .imagenetAIM: return (0..<layers).contains { blockHas(.temporal, $0) }
        case .swinAIM, .videoSwin: return false
        }
    }

    /// Drop-path rate of block i: linspace(0, rate, layers)[i], as the official Transformer.
    public func dropPath(block i: Int) -> Float {
        layers <= 1 ? 0 : dropPathRate * Float(i) / Float(layers - 1)
    }

    /// Checks sizes that would otherwise fail deep inside a kernel.
    public func validate() throws {
        func fail(_ key: String, _ why: String) -> ModelError { .invalidConfig(key: key, reason: why) }
        if isSwin { return try validateSwin() }
        guard inputResolution > 0, patchSize > 0, inputResolution % patchSize == 0 else {
            throw fail("model.input_resolution", "\(inputResolution) is not a positive multiple of model.patch_size \(patchSize)")
        }
        guard width > 0, heads > 0, width % heads == 0 else {
            throw fail("model.heads", "width \(width) is not divisible by \(heads) heads")
        }
        guard layers > 0 else { throw fail("model.layers", "must be positive, got \(layers)") }
        guard numFrames > 0 else { throw fail("model.num_frames", "must be positive, got \(numFrames)") }
        guard numClasses > 0 else { throw fail("model.num_classes", "must be positive, got \(numClasses)") }
        guard numTAdapter == 1 || numTAdapter == 2 else { throw fail("model.num_tadapter", "must be 1 or 2, got \(numTAdapter)") }
        guard mlpHidden > 0 else { throw fail("model.mlp_ratio", "\(mlpRatio) gives an empty MLP for width \(width)") }
        guard adapterHidden > 0 else { throw fail("model.adapter_mlp_ratio", "gives an empty bottleneck for width \(width)") }
        if (architecture == .clipTimeSformer || architecture == .imagenetTimeSformer) && !adapters.isEmpty {
            throw fail("model.adapters", "must be [] for the divided space-time TimeSformer baselines")
        }
        if (adapterLayers == .bottom6 || adapterLayers == .top6) && layers < 6 {
            throw fail("model.adapter_layers", "\(adapterLayers.rawValue) needs at least 6 layers, model has \(layers)")
        }
    }
}

public enum ModelError: Error, CustomStringConvertible {
    case invalidConfig(key: String, reason: String)
    case weights(path: String, problems: [String])
    case input(String)

    public var description: String {
        switch self {
        case let .invalidConfig(key, reason): return "model config: \(key): \(reason)"
        case let .weights(path, problems): return "\(path): " + problems.joined(separator: "; ")
        case let .input(msg): return msg
        }
    }
}
