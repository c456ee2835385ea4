import AIMTensor

/// Parameter and FLOP counts per module, in fvcore's convention: one per multiply-accumulate of
/// every convolution, linear layer and attention matrix product, plus 5 per element of each
/// LayerNorm (softmax, GELU and additions are not counted). Counted for one view (batch 1).
public struct ModuleCount: Sendable {
    public let module: String
    public let parameters: Int
    public let tunable: Int
    public let flops: Int
}

extension Recognizer {
    public func moduleCounts() -> [ModuleCount] {
        let (hp, ht) = (head.parameters.reduce(0) { $0 + $1.count }, head.parameters.filter(\.tunable).reduce(0) { $0 + $1.count })
        return backbone.moduleCounts()
            + [ModuleCount(module: "cls_head.fc_cls", parameters: hp, tunable: ht, flops: backbone.featureWidth * config.numClasses)]
    }

    public var totalParameters: Int { store.totalCount }
    public var tunableParameterCount: Int { store.tunableCount }
    /// FLOPs (MACs) of one view.
    public var flopsPerView: Int { moduleCounts().reduce(0) { $0 + $1.flops } }
}

func parameterCounts(_ ps: [Parameter]) -> (Int, Int) {
    (ps.reduce(0) { $0 + $1.count }, ps.filter(\.tunable).reduce(0) { $0 + $1.count })
}

extension ViTBackbone {
    func moduleCounts() -> [ModuleCount] {
        let c = config, T = c.numFrames, N = c.tokensPerFrame, D = c.width, L = N - 1
        let dims = Dims(B: 1, T: T, N: N, D: D)
        func count(_ ps: [Parameter]) -> (Int, Int) {
            (ps.reduce(0) { $0 + $1.count }, ps.filter(\.tunable).reduce(0) { $0 + $1.count })
        }
        var rows: [ModuleCount] = []
        let embed = [patchWeight, patchBias, classToken, positional, temporal].compactMap { $0 } + (lnPre?.parameters ?? [])
        let (ep, et) = count(embed)
        let patchFlops = T * L * D * 3 * c.patchSize * c.patchSize
        rows.append(ModuleCount(module: "embeddings", parameters: ep, tunable: et,
                                flops: patchFlops + (lnPre != nil ? 5 * T * N * D : 0)))
        let blockPrefix = videoLayout || config.architecture == .imagenetAIM ? "blocks" : "transformer.resblocks"
        for (i, b) in blocks.enumerated() {
            let (p, t) = count(b.parameters)
            rows.append(ModuleCount(module: "\(blockPrefix).\(i)", parameters: p, tunable: t, flops: b.flops(dims: dims)))
        }
        // The official ln_post / norm runs on every token before the class token is taken.
        let postRows = videoLayout ? 1 + L * T : T * N
        let (lp, lt) = count(lnPost.parameters)
        rows.append(ModuleCount(module: lnPost.weight.name.replacingOccurrences(of: "backbone.", with: "").replacingOccurrences(of: ".weight", with: ""),
                                parameters: lp, tunable: lt, flops: 5 * postRows * D))
        return rows
    }
}
