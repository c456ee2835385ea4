import AIMTensor

extension StepGemms {
    /// Every GEMM of one Swin training step (batch `clips`): the stages' linears at their own token
    /// counts and widths, the window (and swin2d's temporal) attention products, PatchMerging, the
    /// Conv3d patch embedding — what `GemmChoice` times to pick the fp32 library for a Swin run.
    static func swinList(_ c: ModelConfig, clips: Int) -> [Use] {
        let aim = c.backbone == .swin2d
        let all = c.tune == .all
        let backward = all || (aim && c.tune == .adapters && !c.adapters.isEmpty)
        var out: [Use] = []
        func linear(_ inF: Int, _ outF: Int, rows: Int, uses: Int, tunable: Bool, group: String) {
            guard uses > 0 else { return }
            out += linearUses(inF, outF, rows: rows, uses: uses, tunable: tunable, backward: backward, group: group)
        }
        func attention(_ name: String, pairs p: Int, length len: Int, headWidth dh: Int, uses: Int) {
            guard uses > 0 else { return }
            out.append(Use(group: "\(name) Q·Kᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: uses))
            out.append(Use(group: "\(name) P·V", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: uses))
            if backward {
                out.append(Use(group: "\(name) backward dV = Pᵀ·dO, dK = dSᵀ·Q", shape: GemmShape(transA: true, transB: false, m: len, n: dh, k: len, pairs: p), count: 2 * uses))
                out.append(Use(group: "\(name) backward dP = dO·Vᵀ", shape: GemmShape(transA: false, transB: true, m: len, n: len, k: dh, pairs: p), count: uses))
                out.append(Use(group: "\(name) backward dQ = dS·K", shape: GemmShape(transA: false, transB: false, m: len, n: dh, k: len, pairs: p), count: uses))
            }
        }
        let T = c.swinTemporalTokens, p = c.swinPatch, C0 = c.embedDim
        let R0 = clips * T * c.swinResolution(stage: 0) * c.swinResolution(stage: 0), pk = 3 * p[0] * p[1] * p[2]
        out.append(Use(group: "patch embedding forward", shape: GemmShape(transA: false, transB: true, m: R0, n: C0, k: pk), count: 1))
        if all { out.append(Use(group: "patch embedding weight gradient", shape: GemmShape(transA: true, transB: false, m: C0, n: pk, k: R0), count: 1)) }
        for s in 0..<c.depths.count {
            let res = c.swinResolution(stage: s), C = c.swinWidth(stage: s), H = c.numHeads[s], dh = C / H
            let rows = clips * T * res * res, depth = c.depths[s]
            let temporal = aim && c.adapters.contains(.temporal) ? (depth + 1) / 2 : 0
            let adapters = temporal + (c.adapters.contains(.spatial) ? depth : 0) + (c.adapters.contains(.joint) ? depth : 0)
            let A = Int(Double(C) * c.adapterMLPRatio)
            let L: Int = aim ? c.swin2dWindow(stage: s).window * c.swin2dWindow(stage: s).window : c.videoSwinWindow(stage: s).window.reduce(1, *)
            let windowRows = aim ? rows : clips * zip([T, res, res], c.videoSwinWindow(stage: s).window).reduce(1) { $0 * (($1.0 + $1.1 - 1) / $1.1 * $1.1) }
            // videoswin's window attention runs on the grid zero-padded to window multiples (swin2d:
            // never padded, so its temporal pass shares the row count).
            linear(C, 3 * C, rows: windowRows, uses: depth + temporal, tunable: all, group: "stage \(s + 1) attn qkv")
            // The temporal pass's frozen proj is folded into T_Adapter's fc1 (`ProjectionFold`); the
            // fold's two small products run in fp32 in either precision.
            let folded = all ? 0 : temporal
            linear(C, C, rows: windowRows, uses: depth + temporal - folded, tunable: all, group: "stage \(s + 1) attn proj")
            if folded > 0 {
                out.append(Use(group: "stage \(s + 1) temporal proj folded into T_Adapter D_fc1: W₁·W_p",
                               shape: GemmShape(transA: false, transB: false, m: A, n: C, k: C), count: folded, fp32Only: true))
                if backward && c.tune != .head {
                    out.append(Use(group: "stage \(s + 1) T_Adapter D_fc1 weight gradient through the fold: (dhᵀ·a)·W_pᵀ",
                                   shape: GemmShape(transA: false, transB: true, m: A, n: C, k: C), count: folded, fp32Only: true))
                }
            }
            linear(C, c.mlpHidden(width: C), rows: rows, uses: depth, tunable: all, group: "stage \(s + 1) mlp fc1")
            linear(c.mlpHidden(width: C), C, rows: rows, uses: depth, tunable: all, group: "stage \(s + 1) mlp fc2")
            if aim {
                linear(C, A, rows: rows, uses: adapters, tunable: c.tune != .head, group: "stage \(s + 1) adapter D_fc1")
                linear(A, C, rows: rows, uses: adapters, tunable: c.tune != .head, group: "stage \(s + 1) adapter D_fc2")
            }
            attention("stage \(s + 1) window attention", pairs: windowRows / L * H, length: L, headWidth: dh, uses: depth)
            if aim { attention("stage \(s + 1) temporal attention", pairs: clips * res * res * H, length: T, headWidth: dh, uses: temporal) }
            if s + 1 < c.depths.count {
                let merged = clips * T * c.swinResolution(stage: s + 1) * c.swinResolution(stage: s + 1)   // an odd grid pads first
                linear(4 * C, 2 * C, rows: merged, uses: 1, tunable: all, group: "stage \(s + 1) patch merging")
            }
        }
        return out
    }
}
