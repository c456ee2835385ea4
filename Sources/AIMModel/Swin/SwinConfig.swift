/// Sizes of the Swin family derived from a ModelConfig, and the checks that refuse a config the
/// official code would fail on (or that this implementation does not run), naming the key.
extension ModelConfig {
    /// Spatial side of the token grid at stage `i` (after i patch mergings). The patch embedding pads
    /// the input to a patch multiple and each merging pads an odd grid by one (videoswin, official
    /// F.pad; swin2d configs are checked to need neither), hence the rounding up.
    public func swinResolution(stage i: Int) -> Int {
        var r = (inputResolution + swinPatch[1] - 1) / swinPatch[1]
        for _ in 0..<i { r = (r + 1) / 2 }
        return r
    }
    /// Temporal tokens (T / patch_t, rounded up: videoswin pads the clip's end).
    public var swinTemporalTokens: Int { (numFrames + swinPatch[0] - 1) / swinPatch[0] }
    /// Whether the patch embedding pads the clip (frames or side not a patch multiple: videoswin only).
    public var swinPadsClip: Bool { numFrames % swinPatch[0] != 0 || inputResolution % swinPatch[1] != 0 }
    public func swinWidth(stage i: Int) -> Int { embedDim << i }
    public var swinFeatureWidth: Int { swinWidth(stage: depths.count - 1) }

    /// swin2d: the 2D window of stage i and its shift for odd blocks, clipped as the official
    /// SwinTransformerBlock does (`min(input_resolution) <= window_size`: one window, no shift).
    public func swin2dWindow(stage i: Int) -> (window: Int, shift: Int) {
        let r = swinResolution(stage: i), w = windowSize[0]
        return r <= w ? (r, 0) : (w, w / 2)
    }

    /// videoswin: get_window_size of the official code on the stage's (T', H', W').
    public func videoSwinWindow(stage i: Int) -> (window: [Int], shift: [Int]) {
        let size = [swinTemporalTokens, swinResolution(stage: i), swinResolution(stage: i)]
        var w = windowSize, s = windowSize.map { $0 / 2 }
        for d in 0..<3 where size[d] <= windowSize[d] { w[d] = size[d]; s[d] = 0 }
        return (w, s)
    }

    func validateSwin() throws {
        func fail(_ key: String, _ why: String) -> ModelError { .invalidConfig(key: key, reason: why) }
        guard !depths.isEmpty, depths.allSatisfy({ $0 > 0 }) else { throw fail("model.depths", "must be a non-empty list of positive integers, got \(depths)") }
        guard numHeads.count == depths.count else {
            throw fail("model.num_heads", "has \(numHeads.count) entries but model.depths has \(depths.count): one head count per stage")
        }
        guard embedDim > 0 else { throw fail("model.embed_dim", "must be positive, got \(embedDim)") }
        for (i, h) in numHeads.enumerated() where h <= 0 || swinWidth(stage: i) % h != 0 {
            throw fail("model.num_heads", "stage \(i) width \(swinWidth(stage: i)) is not divisible by \(h) heads")
        }
        guard swinPatch.count == 3, swinPatch.allSatisfy({ $0 > 0 }), swinPatch[1] == swinPatch[2] else {
            throw fail("model.patch_size", "must be a list of 3 positive integers (t, h, w) with h = w, got \(swinPatch)")
        }
        guard numFrames > 0 else { throw fail("model.num_frames", "must be positive, got \(numFrames)") }
        // swin2d: the official num_Ttokens = num_frames // patch_t disagrees with the padded clip's tokens.
        guard backbone != .swin2d || numFrames % swinPatch[0] == 0 else {
            throw fail("model.num_frames", "\(numFrames) is not a multiple of the temporal patch \(swinPatch[0]) "
                       + "(swin2d: the official temporal relative-position table is sized for num_frames // \(swinPatch[0]) tokens)")
        }
        guard numClasses > 0 else { throw fail("model.num_classes", "must be positive, got \(numClasses)") }
        guard mlpHidden(width: embedDim) > 0 else { throw fail("model.mlp_ratio", "\(mlpRatio) gives an empty MLP") }
        let stages = depths.count
        guard inputResolution > 0 else { throw fail("model.input_resolution", "must be positive, got \(inputResolution)") }
        // swin2d: the official PatchMerging asserts even grids (and its stages are sized from the unpadded
        // input). videoswin pads instead, in PatchEmbed3D and PatchMerging, as we do.
        guard backbone != .swin2d || inputResolution % (swinPatch[1] << (stages - 1)) == 0 else {
            throw fail("model.input_resolution", "\(inputResolution) must be a multiple of patch \(swinPatch[1]) × 2^\(stages - 1) "
                       + "so that every patch merging halves an even grid (swin2d: the official PatchMerging asserts it)")
        }
        switch backbone {
        case .swin2d:
            guard windowSize.count == 1, windowSize[0] > 0 else {
                throw fail("model.window_size", "swin2d takes one window side, got \(windowSize)")
            }
            guard Int(Double(embedDim) * adapterMLPRatio) > 0 else { throw fail("model.adapter_mlp_ratio", "gives an empty bottleneck") }
            for i in 0..<stages {
                let r = swinResolution(stage: i), (w, _) = swin2dWindow(stage: i)
                guard r % w == 0 else {
                    throw fail("model.window_size", "window \(w) does not divide the \(r)×\(r) token grid of stage \(i + 1) "
                               + "(input \(inputResolution)): the official window_partition would fail")
                }
            }
        case .videoswin:
            guard windowSize.count == 3, windowSize.allSatisfy({ $0 > 0 }) else {
                throw fail("model.window_size", "videoswin takes a list of 3 window sizes (t, h, w), got \(windowSize)")
            }
            if tune == .adapters { throw fail("model.tune", "videoswin has no adapters: use all (full finetuning) or head") }
            // Any window fits: a grid that is not a window multiple is zero-padded as the official
            // SwinTransformerBlock3D does (WindowGeometry.padded).
        default: break
        }
    }

    func mlpHidden(width: Int) -> Int { Int(Double(width) * mlpRatio) }
}
