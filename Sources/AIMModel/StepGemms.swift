import AIMTensor

// The matrix products of one training step, by shape: what the step computes, so the bench can
// time them raw (the roofline) and the trainer can choose the fastest GEMM library for exactly
// the shapes its model runs (`GemmChoice`).

/// Every GEMM of one training step of `c` (batch 1): what our step computes, so its raw sgemm
/// time is the step's fp32 roofline. The head (1×768·768×400) is left out (< 1 MFLOP).
public enum StepGemms {
    public struct Use: Sendable {
        public let group: String; public let shape: GemmShape; public let count: Int
        /// A frozen linear weight's forward or input gradient: the weight a bf16 step holds packed.
        public let frozenWeight: Bool
        /// Runs in fp32 in a bf16 step too (the fold's products: their result is a weight).
        public let fp32Only: Bool
        /// A linear layer's forward with its bias (`linearForward`): one oneDNN matmul with the bias
        /// inside, or the output filled with the bias and multiplied into, as the probe times it.
        public let biased: Bool
        public init(group: String, shape: GemmShape, count: Int, frozenWeight: Bool = false, fp32Only: Bool = false, biased: Bool = false) {
            self.group = group; self.shape = shape; self.count = count; self.frozenWeight = frozenWeight; self.fp32Only = fp32Only
            self.biased = biased
        }
        /// What the GEMM probe times for it.
        public var probed: GemmProbe.Use { GemmProbe.Use(shape: shape, count: count, biased: biased) }
    }

    /// The products of one linear layer (`rows` × `inF` → `outF`, `uses` times a step): its forward,
    /// the input gradient when backward reaches it, the weight gradient when it is tunable.
    static func linearUses(_ inF: Int, _ outF: Int, rows: Int, uses: Int, tunable: Bool, backward: Bool, group: String) -> [Use] {
        let kind = tunable ? "tunable" : "frozen"
        var out = [Use(group: "\(group): \(kind) forward", shape: GemmShape(transA: false, transB: true, m: rows, n: outF, k: inF), count: uses,
                       frozenWeight: !tunable, biased: true)]
        if backward {
            out.append(Use(group: "\(group): \(kind) input gradient", shape: GemmShape(transA: false, transB: false, m: rows, n: inF, k: outF),
                           count: uses, frozenWeight: !tunable))
        }
        if backward && tunable {
            out.append(Use(group: "\(group): weight gradient", shape: GemmShape(transA: true, transB: false, m: outF, n: inF, k: rows), count: uses))
        }
        return out
    }

    /// `clips`: clips per forward (the micro-batch); the token rows of every product scale with it.
    public static func list(_ c: ModelConfig, clips: Int = 1) -> [Use] {
        if c.isSwin { return swinList(c, clips: clips) }
        let T = c.numFrames, N = c.tokensPerFrame, D = c.width, H = c.heads, dh = D / H, A = c.adapterHidden
        let M = clips * T * N, L = c.layers
        let backbone = c.tune == .all
        let adaptersTunable = c.tune != .head
        // Backward reaches the blocks when a block or the embedding below them is tunable.
        let backward = backbone || (adaptersTunable && !c.adapters.isEmpty)
        // Blocks that run the frozen attention a second time, across frames (`model.adapter_layers`
        // places the adapters, and the temporal pass with them).
        let temporalBlocks = (0..<L).filter { c.blockHas(.temporal, $0) }.count
        let temporal = temporalBlocks > 0
        var out: [Use] = []
        func linear(_ inF: Int, _ outF: Int, uses: Int, tunable: Bool, rows: Int = M, group: String) {
            out += linearUses(inF, outF, rows: rows, uses: uses, tunable: tunable, backward: backward, group: group)
        }
        // Patch embedding (a linear over 16×16×3 patches); its input gradient is never needed.
        let patches = clips * T * c.patchesPerFrame, pk = 3 * c.patchSize * c.patchSize
        out.append(Use(group: "patch embedding forward", shape: GemmShape(transA: false, transB: true, m: patches, n: D, k: pk), count: 1))
        if backbone {
            out.append(Use(group: "patch embedding weight gradient", shape: GemmShape(transA: true, transB: false, m: D, n: pk, k: patches), count: 1))
        }
        // The temporal pass's frozen out_proj is folded into T_Adapter's fc1 (`ProjectionFold`);
        // the fold's two small products run in fp32 in either precision.
        let folded = temporal && !backbone
        // The last block's classRowsOnly (`ClassRowsBlock`, below) starts at the spatial attention's
        // queries: its scores are one row per frame and head (vector loops, not listed) and its
        // out_proj runs on the frames' class rows (in the TimeSformers too: their spatial attention
        // is per frame).
        let classRows = c.architecture == .imagenetTimeSformer ? clips : clips * T
        let fullSpatial = L - 1
        linear(D, 3 * D, uses: L + temporalBlocks, tunable: backbone, group: "attn in_proj")
        linear(D, D, uses: fullSpatial + (folded ? 0 : temporalBlocks), tunable: backbone, group: "attn out_proj")
        linear(D, D, uses: 1, tunable: backbone, rows: clips * T, group: "attn out_proj, class rows")
        if folded {
            out.append(Use(group: "temporal out_proj folded into T_Adapter D_fc1: W₁·W_p", shape: GemmShape(transA: false, transB: false, m: A, n: D, k: D),
                           count: temporalBlocks, fp32Only: true))
            if backward && adaptersTunable {
                out.append(Use(group: "T_Adapter D_fc1 weight gradient through the fold: (dhᵀ·a)·W_pᵀ",
                               shape: GemmShape(transA: false, transB: true, m: A, n: D, k: D), count: temporalBlocks, fp32Only: true))
            }
        }
        // The last block runs its MLP (and AIM's S/MLP adapters) on the class tokens alone
        // (`ClassRowsBlock`): one per frame, one per video in the IN-21K TimeSformer.
        linear(D, c.mlpHidden, uses: L - 1, tunable: backbone, group: "mlp c_fc")
        linear(c.mlpHidden, D, uses: L - 1, tunable: backbone, group: "mlp c_proj")
        linear(D, c.mlpHidden, uses: 1, tunable: backbone, rows: classRows, group: "mlp c_fc, class rows")
        linear(c.mlpHidden, D, uses: 1, tunable: backbone, rows: classRows, group: "mlp c_proj, class rows")
        if !c.adapters.isEmpty {
            let adapters = (0..<L).reduce(0) { n, i in n + c.adapters.filter { c.blockHas($0, i) }.count }
            let classRowAdapters = c.adapters.filter { $0 != .temporal && c.blockHas($0, L - 1) }.count
            let uses = adapters - classRowAdapters
            linear(D, A, uses: uses, tunable: adaptersTunable, group: "adapter D_fc1")
            linear(A, D, uses: uses, tunable: adaptersTunable, group: "adapter D_fc2")
            if classRowAdapters > 0 {
                linear(D, A, uses: classRowAdapters, tunable: adaptersTunable, rows: classRows, group: "adapter D_fc1, class rows")
                linear(A, D, uses: classRowAdapters, tunable: adaptersTunable, rows: classRows, group: "adapter D_fc2, class rows")
            }
        }
        for (name, S, len, blocks) in [("spatial", T, N, fullSpatial)] + (temporal ? [("temporal", N, T, temporalBlocks)] : []) {
            let p = clips * S * H
            out.append(Use(group: "\(name) attention Q·Kᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: blocks))
            out.append(Use(group: "\(name) attention P·V", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: blocks))
            if backward && len > attentionProbabilitiesKeptMaxLength {
                out.append(Use(group: "\(name) attention Q·Kᵀ again in backward (P recomputed, not kept)",
                               shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: blocks))
            }
            if backward {
                out.append(Use(group: "\(name) attention backward dV = Pᵀ·dO, dK = dSᵀ·Q", shape: GemmShape(transA: true, transB: false, m: len, n: dh, k: len, pairs: p), count: 2 * blocks))
                out.append(Use(group: "\(name) attention backward dP = dO·Vᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: blocks))
                out.append(Use(group: "\(name) attention backward dQ = dS·K", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: blocks))
            }
        }
        return out
    }
}

