import AIMTensor

// Thin wrappers that bind kernels to named parameters. Each backward computes weight
// gradients only for tunable parameters (frozen ones have `grad == nil`), so freezing is data.

typealias FloatPtr = UnsafeMutablePointer<Float>

/// The first error a kernel threw during a pass. Only the bf16 products (oneDNN) can fail; the
/// layers and blocks stay non-throwing, so a failing product fills its output with NaN, the pass
/// runs to its end, and the recognizer throws this error at the pass boundary.
enum PassFailure {
    nonisolated(unsafe) private static var first: Error?

    static func record(_ error: Error, output: FloatPtr?, count: Int) {
        if first == nil { first = error }
        output?.update(repeating: .nan, count: count)
    }

    static func rethrow() throws {
        if let e = first { first = nil; throw e }
    }
}

struct LinearLayer {
    let weight: Parameter
    let bias: Parameter?
    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }
    /// The backward needs the layer input only to form the weight gradient.
    var needsInput: Bool { weight.tunable }
    /// bf16: the weight gradient reads only bf16(input), so that is what is kept (2 bytes a value,
    /// not 4, as autocast saves the cast input); pass `keepInput` / `inputBF16`, not the fp32 input.
    var keepsInputInBF16: Bool { needsInput && weight.reducedPrecision }

    init(_ store: ParameterStore, _ name: String, in inF: Int, out outF: Int, bias hasBias: Bool = true,
         weightInit: Initialization = .truncatedNormal(std: 0.02), biasInit: Initialization = .zeros) {
        weight = store.register(name + ".weight", [outF, inF], weightInit)
        bias = hasBias ? store.register(name + ".bias", [outF], biasInit) : nil
    }

    init(weight: Parameter, bias: Parameter?) { self.weight = weight; self.bias = bias }

    /// `keepInput` (bf16 only): receives bf16(input) [rows, in] for the weight gradient.
    /// `residual`: a tensor [rows, out] added to the output (a skip connection), inside the product
    /// where the library can. `scale` weights the product and bias before they are added (inside
    /// the product where `scalesInside`).
    func forward(_ out: FloatPtr, _ input: UnsafePointer<Float>, rows: Int, accumulate: Bool = false,
                 keepInput: UnsafeMutablePointer<UInt16>? = nil, residual: UnsafePointer<Float>? = nil, scale: Float = 1) {
        precondition(keepInput == nil || weight.reducedPrecision, "a bf16 input is kept only by a bf16 linear")
        StepProfile.measure(weight.tunable ? .tunableGEMM : .frozenGEMM) {
            if weight.reducedPrecision {
                do {
                    try linearForwardBF16(out: out, input: input, weight: weight.bf16(), bias: bias?.data, rows: rows, accumulate: accumulate,
                                          keepInput: keepInput, residual: residual, scale: scale)
                } catch { PassFailure.record(error, output: out, count: rows * outFeatures) }
            } else {
                linearForward(out: out, input: input, weight: weight.data, bias: bias?.data,
                              rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, accumulate: accumulate, residual: residual,
                              scale: scale)
            }
        }
    }

    /// `inputBF16` (bf16 only): the forward's `keepInput`, read instead of `input`.
    /// `weightGradient: false` computes the input gradient only (the weight and bias gradients were formed by an earlier call).
    /// `inputResidual`: added to dInput (a skip connection's gradient), inside the product where the library can.
    func backward(dInput: FloatPtr?, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>?, inputBF16: UnsafePointer<UInt16>? = nil,
                  rows: Int, accumulateInput: Bool = false, weightGradient: Bool = true, inputResidual: UnsafePointer<Float>? = nil) {
        let dWeight = weightGradient ? weight.gradData : nil, dBias = weightGradient ? bias?.gradData : nil
        StepProfile.measure(weight.tunable ? .tunableGEMM : .frozenGEMM) {
            if weight.reducedPrecision {
                do {
                    try linearBackwardBF16(dInput: dInput, dWeight: dWeight, dBias: dBias, dOut: dOut, input: input,
                                           inputBF16: inputBF16, weight: weight.bf16(), rows: rows, accumulateInput: accumulateInput,
                                           inputResidual: inputResidual)
                } catch { PassFailure.record(error, output: dInput, count: rows * inFeatures) }
                return
            }
            linearBackward(dInput: dInput, dWeight: dWeight, dBias: dBias, dOut: dOut,
                           input: input, weight: weight.data, rows: rows, inFeatures: inFeatures,
                           outFeatures: outFeatures, accumulateInput: accumulateInput, inputResidual: inputResidual)
        }
    }

    /// bf16 only: the input already rounded to bf16 (an activation's bf16 output), so no rounding pass.
    func forward(_ out: FloatPtr, roundedInput: UnsafePointer<UInt16>, rows: Int, accumulate: Bool = false) {
        precondition(weight.reducedPrecision, "a rounded input goes to a bf16 linear only")
        StepProfile.measure(weight.tunable ? .tunableGEMM : .frozenGEMM) {
            do {
                try linearForwardBF16(out: out, roundedInput: roundedInput, weight: weight.bf16(), bias: bias?.data, rows: rows,
                                      accumulate: accumulate)
            } catch { PassFailure.record(error, output: out, count: rows * outFeatures) }
        }
    }

    /// bf16 through oneDNN only: out = bf16(x·Wᵀ + b) written in bf16 (x fp32, or `roundedInput`).
    /// False (nothing written) where that cannot run here (AMX tiles, or no oneDNN kernel for it):
    /// the caller then takes the fp32 output.
    func forward(roundedOutput out: UnsafeMutablePointer<UInt16>, _ input: UnsafePointer<Float>?, roundedInput: UnsafePointer<UInt16>?,
                 rows: Int) -> Bool {
        guard weight.reducedPrecision else { return false }
        return StepProfile.measure(weight.tunable ? .tunableGEMM : .frozenGEMM) {
            do {
                return try linearForwardBF16(roundedOut: out, input: input, roundedInput: roundedInput, weight: weight.bf16(),
                                             bias: bias?.data, rows: rows)
            } catch {
                PassFailure.record(error, output: nil, count: 0)
                return true
            }
        }
    }

    /// Whether the backward forms no weight or bias gradient (then only dx = dy·W, which can read a bf16 dy).
    var needsOnlyInputGradient: Bool { weight.gradData == nil && bias?.gradData == nil }

    /// bf16 only, input gradient only (`needsOnlyInputGradient`): dy already rounded to bf16.
    func inputGradient(_ dInput: FloatPtr, roundedDOut: UnsafePointer<UInt16>, rows: Int, accumulateInput: Bool = false) {
        precondition(weight.reducedPrecision && needsOnlyInputGradient, "a rounded dy goes to a bf16 linear with no weight gradient only")
        StepProfile.measure(weight.tunable ? .tunableGEMM : .frozenGEMM) {
            do {
                try linearInputGradientBF16(dInput: dInput, roundedDOut: roundedDOut, weight: weight.bf16(), rows: rows,
                                            accumulateInput: accumulateInput)
            } catch { PassFailure.record(error, output: dInput, count: rows * inFeatures) }
        }
    }

    /// Whether `forward` applies a `scale` inside the product (fp32, or bf16 through oneDNN); the tile
    /// kernels take none, so a scaled bf16 forward there goes through a temporary.
    var scalesInside: Bool { !weight.reducedPrecision || !BF16Products.tiles(k: inFeatures, n: outFeatures) }

    var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }
    func macs(rows: Int) -> Int { rows * inFeatures * outFeatures }
}

struct LayerNormLayer {
    let weight: Parameter
    let bias: Parameter
    let eps: Float
    var channels: Int { weight.shape[0] }

    init(_ store: ParameterStore, _ name: String, channels: Int, eps: Float) {
        weight = store.register(name + ".weight", [channels], .ones)
        bias = store.register(name + ".bias", [channels], .zeros)
        self.eps = eps
    }

    /// `normalized` (optional) receives x̂, which can stand in for the input in backward.
    func forward(_ out: FloatPtr, _ input: UnsafePointer<Float>, mean: FloatPtr?, rstd: FloatPtr?, normalized: FloatPtr? = nil, rows: Int) {
        StepProfile.measure(.layerNorm) {
            layerNormForward(out: out, input: input, weight: weight.data, bias: bias.data, mean: mean, rstd: rstd,
                             normalized: normalized, rows: rows, channels: channels, eps: eps)
        }
    }

    /// `forward` with the output written in bf16 only (for bf16 products that read nothing else).
    func forward(roundedOutput out: UnsafeMutablePointer<UInt16>, _ input: UnsafePointer<Float>, mean: FloatPtr?, rstd: FloatPtr?,
                 normalized: FloatPtr? = nil, rows: Int) {
        StepProfile.measure(.layerNorm) {
            layerNormForward(out: nil, roundedOut: out, input: input, weight: weight.data, bias: bias.data, mean: mean, rstd: rstd,
                             normalized: normalized, rows: rows, channels: channels, eps: eps)
        }
    }

    /// The forward's output again from its x̂ (same bits).
    func output(_ out: FloatPtr, normalized: UnsafePointer<Float>, rows: Int) {
        StepProfile.measure(.layerNorm) {
            layerNormAffine(out: out, normalized: normalized, weight: weight.data, bias: bias.data, rows: rows, channels: channels)
        }
    }

    /// Backward from the forward's x̂ and rstd instead of its input and mean (same bits).
    /// `addend`: dInput = addend + the gradient (a residual's gradient, without copying it in first).
    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, normalized: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                  rows: Int, accumulateInput: Bool, addend: UnsafePointer<Float>? = nil) {
        StepProfile.measure(.layerNorm) {
            layerNormBackward(dInput: dInput, dWeight: weight.gradData, dBias: bias.gradData, dOut: dOut, input: normalized,
                              weight: weight.data, mean: nil, rstd: rstd, rows: rows, channels: channels,
                              accumulateInput: accumulateInput, inputIsNormalized: true, addend: addend)
        }
    }

    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
                  mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, accumulateInput: Bool, addend: UnsafePointer<Float>? = nil) {
        StepProfile.measure(.layerNorm) {
            layerNormBackward(dInput: dInput, dWeight: weight.gradData, dBias: bias.gradData, dOut: dOut, input: input,
                              weight: weight.data, mean: mean, rstd: rstd, rows: rows, channels: channels,
                              accumulateInput: accumulateInput, addend: addend)
        }
    }

    var parameters: [Parameter] { [weight, bias] }
}

/// The AIM bottleneck adapter: D_fc1 (D→D/4) → exact GELU → D_fc2 (D/4→D), optional skip.
/// Official init: trunc-normal fc1, and D_fc2 weight and bias zero (the adapter starts as
/// identity with skip, as zero without).
struct AdapterLayer {
    let fc1: LinearLayer
    let fc2: LinearLayer
    let skip: Bool
    var hidden: Int { fc1.outFeatures }

    init(_ store: ParameterStore, _ name: String, width: Int, hidden: Int, skip: Bool) {
        fc1 = LinearLayer(store, name + ".D_fc1", in: width, out: hidden)
        fc2 = LinearLayer(store, name + ".D_fc2", in: hidden, out: width, weightInit: .zeros)
        self.skip = skip
    }

    /// out = [x +] scale · fc2(gelu(fc1(x))); `h` receives fc1's output (kept for backward).
    /// With `accumulate`, the adapter output (and skip) is added to `out`. `scale` weights the
    /// adapter output (inside fc2 where `scalesInside`).
    /// bf16 (`keepsInputInBF16`): `keepInput` receives bf16(x), the operand fc1's weight gradient
    /// reads; or `roundedInput` is bf16(x) made by the caller (kept there), so x is not rounded again.
    /// x may be nil with `roundedInput` and no skip (then nothing reads it).
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>?, h: FloatPtr, scratch: Arena, rows: Int, accumulate: Bool = false,
                 scale: Float = 1, keepInput: UnsafeMutablePointer<UInt16>? = nil, roundedInput: UnsafePointer<UInt16>? = nil) {
        precondition(x != nil || (roundedInput != nil && !skip), "AdapterLayer.forward: no input")
        let g = scratch.buffer("adapter.g", rows * hidden)
        if let roundedInput { fc1.forward(h, roundedInput: roundedInput, rows: rows) }
        else { fc1.forward(h, x!, rows: rows, keepInput: keepInput) }
        StepProfile.measure(.activation) { geluForward(out: g, input: h, count: rows * hidden) }
        fc2.forward(out, g, rows: rows, accumulate: accumulate, residual: skip ? x : nil, scale: scale)
    }

    /// Whether `forward` can scale its output inside fc2 (fp32, or a bf16 product through oneDNN).
    var scalesInside: Bool { fc2.scalesInside }

    /// bf16 with a tunable fc1: its weight gradient reads bf16(x), so callers keep that (2 bytes a
    /// value) instead of x (4), and pass it to `backward` as `xBF16` (why: x was rounded again there).
    var keepsInputInBF16: Bool { fc1.keepsInputInBF16 }

    /// The forward's output again from its kept `h`, for an adapter without skip (same bits:
    /// the same products on the same rows).
    func output(_ out: FloatPtr, h: UnsafePointer<Float>, scratch: Arena, rows: Int) {
        precondition(!skip, "an adapter with skip needs its input to rebuild its output")
        let g = scratch.buffer("adapter.g", rows * hidden)
        StepProfile.measure(.activation) { geluForward(out: g, input: h, count: rows * hidden) }
        fc2.forward(out, g, rows: rows, accumulate: false)
    }

    /// dx (=, or += with accumulateInput) from dOut (nil: weight gradients only); weight grads from the saved x (or its
    /// bf16 `xBF16`, `keepsInputInBF16`) and h.
    func backward(dInput dx: FloatPtr?, dOut: UnsafePointer<Float>, x: UnsafePointer<Float>?, xBF16: UnsafePointer<UInt16>? = nil,
                  h: UnsafePointer<Float>, scratch: Arena, rows: Int, accumulateInput: Bool) {
        let dh = hiddenGradient(dOut: dOut, h: h, scratch: scratch, rows: rows)
        fc1.backward(dInput: dx, dOut: dh, input: x, inputBF16: xBF16, rows: rows, accumulateInput: accumulateInput,
                     inputResidual: skip ? dOut : nil)
    }

    /// fc2's gradients (when tunable) and d(fc1's output) [rows, hidden] from dOut: the backward up to
    /// fc1, for a caller that runs fc1's own backward another way (`ProjectionFold`). The result
    /// lives in `scratch` (under "adapter.dg").
    func hiddenGradient(dOut: UnsafePointer<Float>, h: UnsafePointer<Float>, scratch: Arena, rows: Int) -> UnsafePointer<Float> {
        let g = scratch.buffer("adapter.g", rows * hidden)
        let dg = scratch.buffer("adapter.dg", rows * hidden)
        if fc2.weight.tunable { StepProfile.measure(.activation) { geluForward(out: g, input: h, count: rows * hidden) } }
        fc2.backward(dInput: dg, dOut: dOut, input: g, rows: rows)
        StepProfile.measure(.activation) { geluBackward(dInput: dg, dOut: dg, input: h, count: rows * hidden) }   // in place
        return UnsafePointer(dg)
    }

    var parameters: [Parameter] { fc1.parameters + fc2.parameters }
    func macs(rows: Int) -> Int { fc1.macs(rows: rows) + fc2.macs(rows: rows) }
}

/// Attention over sequences up to this length keeps its probabilities for backward; longer ones
/// recompute them (at least `attentionDirectMaxLength`: those kernels need kept probabilities).
public let attentionProbabilitiesKeptMaxLength = max(32, attentionDirectMaxLength)

/// Multi-head self-attention with packed q|k|v projection (nn.MultiheadAttention / timm Attention).
struct AttentionLayer {
    let qkv: LinearLayer
    let proj: LinearLayer
    let heads: Int
    var width: Int { proj.outFeatures }

    /// CLIP names: `attn.in_proj_weight`, `attn.in_proj_bias`, `attn.out_proj.{weight,bias}`.
    static func clip(_ store: ParameterStore, _ name: String, width D: Int, heads: Int) -> AttentionLayer {
        let w = store.register(name + ".in_proj_weight", [3 * D, D], .truncatedNormal(std: 0.02))
        let b = store.register(name + ".in_proj_bias", [3 * D], .zeros)
        let proj = LinearLayer(store, name + ".out_proj", in: D, out: D)
        return AttentionLayer(qkv: LinearLayer(weight: w, bias: b), proj: proj, heads: heads)
    }

    /// timm names: `attn.qkv`, `attn.proj`.
    static func timm(_ store: ParameterStore, _ name: String, width D: Int, heads: Int) -> AttentionLayer {
        AttentionLayer(qkv: LinearLayer(store, name + ".qkv", in: D, out: 3 * D),
                       proj: LinearLayer(store, name + ".proj", in: D, out: D), heads: heads)
    }

    /// Where the attention probabilities [S, H, L, L] are kept for backward: short sequences
    /// (the temporal pass, L = T) keep them; long ones (197 tokens of a frame: 15 MB per ViT-B
    /// block) do not, and backward recomputes them from q and k (one Q·Kᵀ product and softmax,
    /// about 1 % of a step, for 12–13 % of the activations kept).
    /// The short-sequence bf16 kernel recomputes them too (an L × L softmax per head, in registers).
    func probabilities(_ arena: Arena, _ key: String, _ count: Int, length: Int) -> FloatPtr? {
        length <= attentionProbabilitiesKeptMaxLength && !runsShortInBF16(length) ? arena.buffer(key, count) : nil
    }

    /// Where q | k | v [rows, 3D] are kept between forward and backward.
    enum KeptQKV {
        case fp32(FloatPtr)
        /// Written in bf16 by a frozen in_proj: only the bf16 attention reads them (`writesQKVInBF16`).
        case bf16(UnsafeMutablePointer<UInt16>)

        /// The same rows as the attention kernels read them.
        var rows: AttentionQKVRows {
            switch self { case .fp32(let p): return .fp32(UnsafePointer(p)); case .bf16(let p): return .bf16(UnsafePointer(p)) }
        }
    }

    /// The kept q | k | v for `rows` rows of sequences of `length`, under `key` in `arena` (bf16 ones
    /// under `key` + "16": 2 bytes a value instead of 4, and no rounding pass in forward or backward).
    func keptQKV(_ arena: Arena, _ key: String, rows: Int, length L: Int) -> KeptQKV {
        writesQKVInBF16(L) ? .bf16(arena.bf16Buffer(key + "16", rows * 3 * width)) : .fp32(arena.buffer(key, rows * 3 * width))
    }

    /// Whether in_proj is a frozen bf16 product, which reads only bf16(x): a caller may then give
    /// `forward` the input in bf16 (e.g. written so by a LayerNorm), and need not make it in fp32.
    var readsOnlyRoundedInput: Bool { qkv.weight.reducedPrecision && !qkv.needsInput }

    /// Whether in_proj writes q | k | v in bf16: a frozen bf16 product (so no weight gradient reads
    /// its input or output) whose output only a bf16 attention reads: through oneDNN, which rounds
    /// fp32 q | k | v exactly so, or the short-sequence kernel, which reads bf16 only (as autocast's
    /// Linear returns bf16).
    private func writesQKVInBF16(_ L: Int) -> Bool { readsOnlyRoundedInput && (runsShortInBF16(L) || onOneDNNInBF16(L)) }

    /// Whether a bf16 model's attention over sequences of `length` runs on the short-sequence kernel
    /// (AttentionShort.swift: the temporal pass), which reads the q | k | v a frozen in_proj wrote in bf16.
    func runsShortInBF16(_ L: Int) -> Bool { readsOnlyRoundedInput && shortAttentionRuns(length: L, width: width, heads: heads) }

    /// out = proj(attention(qkv(x))) over `sequences` of `length` rows each.
    /// `qkvBuf` (from `keptQKV`), `probs` [S, H, L, L] (nil: recomputed in backward) and `attnOut` [rows, D]
    /// are the saved activations.
    /// `xKeep` / `attnOutKeep` (bf16 tunable projections): the bf16 inputs kept for the weight gradients.
    /// `xBF16`: the input already in bf16, instead of `x`, where `readsOnlyRoundedInput`.
    /// `interleaved` G > 1 (`runsShortInBF16` only): the sequences lie interleaved in groups of G
    /// (sequence (b, n) holds rows (b·L + i)·G + n), as the frames of each token do in frame order.
    /// `out` nil: stops before out_proj, left to the caller (`ProjectionFold`); the attention's output
    /// is then in `attnOut`, or for a bf16 model in `attnOutKeep`, rounded.
    /// `classQueries`: only each sequence's first row is a query (AttentionClassQuery.swift); `out`,
    /// `attnOut` and `attnOutKeep` then hold S rows, one per sequence (q | k | v still every row).
    func forward(_ out: FloatPtr?, _ x: UnsafePointer<Float>?, xBF16: UnsafePointer<UInt16>? = nil, qkvBuf: KeptQKV, probs: FloatPtr?,
                 attnOut: FloatPtr, sequences S: Int, length L: Int, interleaved: Int = 1, scratch: Arena,
                 xKeep: UnsafeMutablePointer<UInt16>? = nil, attnOutKeep: UnsafeMutablePointer<UInt16>? = nil,
                 classQueries: Bool = false) {
        let rows = S * L, outRows = classQueries ? S : rows
        precondition(!classQueries || interleaved == 1, "AttentionLayer.forward: class queries of interleaved sequences")
        precondition(out != nil || !proj.weight.reducedPrecision || attnOutKeep != nil,
                     "AttentionLayer.forward: without out_proj, a bf16 model's output goes to attnOutKeep")
        precondition(interleaved == 1 || runsShortInBF16(L), "AttentionLayer.forward: interleaved sequences need the short bf16 kernel")
        precondition((x != nil) != (xBF16 != nil) && (xBF16 == nil || readsOnlyRoundedInput), "AttentionLayer.forward: one input, bf16 only for a frozen bf16 in_proj")
        switch qkvBuf {
        case .fp32(let q):
            if let xBF16 { qkv.forward(q, roundedInput: xBF16, rows: rows) } else { qkv.forward(q, x!, rows: rows, keepInput: xKeep) }
        case .bf16(let q16):
            precondition(xKeep == nil, "a frozen in_proj keeps no input")
            if !qkv.forward(roundedOutput: q16, x, roundedInput: xBF16, rows: rows) {
                // No bf16-output kernel for this product here (AMX tiles): the fp32 output, rounded (the same bits).
                let mark = scratch.mark()
                defer { scratch.rewind(to: mark) }
                let q = scratch.buffer("attn.qkv32", rows * 3 * width)
                if let xBF16 { qkv.forward(q, roundedInput: xBF16, rows: rows) } else { qkv.forward(q, x!, rows: rows) }
                StepProfile.measure(.frozenGEMM) { toBF16(q16, q, count: rows * 3 * width) }
            }
        }
        let rowsQKV = qkvBuf.rows
        // out_proj reads only the bf16 rounding of the attention's output when it is frozen (or keeps
        // that rounding for its weight gradient): the attention then writes it in bf16 itself, into
        // the kept buffer or over attnOut's memory, which nothing else reads.
        // (Without out_proj this still holds: a bf16 model then passes attnOutKeep, the fold's operand.)
        let rounded = writesRoundedOutput(L, keeping: attnOutKeep)
            ? attnOutKeep ?? UnsafeMutableRawPointer(attnOut).assumingMemoryBound(to: UInt16.self) : nil
        StepProfile.measure(.attention) {
            if classQueries {
                classQueryAttentionForward(out: rounded == nil ? attnOut : nil, roundedOut: rounded, qkv: rowsQKV, sequences: S, length: L,
                                           width: width, heads: heads, inBF16: inBF16(L))
                return
            }
            switch rowsQKV {
            case .bf16(let q16) where runsShortInBF16(L):
                shortAttentionForward(out: rounded == nil ? attnOut : nil, roundedOut: rounded, qkv16: q16, sequences: S, length: L,
                                      width: width, heads: heads, interleaved: interleaved)
            case .bf16:
                attentionForwardOneDNN(out: attnOut, qkvRows: rowsQKV, sequences: S, length: L, width: width, heads: heads, roundedOut: rounded)
            case .fp32(let q):
                if let rounded {
                    attentionForwardOneDNN(out: attnOut, qkv: q, sequences: S, length: L, width: width, heads: heads, roundedOut: rounded)
                } else if inBF16(L) {
                    attentionForwardBF16(out: attnOut, qkv: q, sequences: S, length: L, width: width, heads: heads)
                } else {
                    attentionForward(out: attnOut, qkv: q, probs: probs, sequences: S, length: L, width: width, heads: heads)
                }
            }
        }
        guard let out else {
            if let attnOutKeep, rounded == nil { StepProfile.measure(.attention) { toBF16(attnOutKeep, attnOut, count: outRows * width) } }
            return
        }
        if let rounded {
            proj.forward(out, roundedInput: rounded, rows: outRows)
        } else {
            proj.forward(out, attnOut, rows: outRows, keepInput: attnOutKeep)
        }
    }

    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, x: UnsafePointer<Float>?, qkvBuf: KeptQKV,
                  probs: UnsafePointer<Float>?, attnOut: UnsafePointer<Float>?, sequences S: Int, length L: Int, interleaved: Int = 1,
                  scratch: Arena, accumulateInput: Bool = false, xBF16: UnsafePointer<UInt16>? = nil,
                  attnOutBF16: UnsafePointer<UInt16>? = nil, projection: Bool = true, classQueries: Bool = false) {
        let rows = S * L, outRows = classQueries ? S : rows
        precondition(interleaved == 1 || runsShortInBF16(L), "AttentionLayer.backward: interleaved sequences need the short bf16 kernel")
        precondition(!classQueries || interleaved == 1, "AttentionLayer.backward: class queries of interleaved sequences")
        // `projection` false: dOut is already the gradient of the attention's output (out_proj's input).
        var dA = dOut
        if projection {
            let d = scratch.buffer("attn.dA", outRows * width)
            proj.backward(dInput: d, dOut: dOut, input: attnOut, inputBF16: attnOutBF16, rows: outRows)
            dA = UnsafePointer(d)
        }
        let dQKV = scratch.buffer("attn.dQKV", rows * 3 * width)
        // A frozen in_proj's input gradient reads only the bf16 rounding of dQKV: written so directly.
        let rounded = (onOneDNNInBF16(L) || runsShortInBF16(L)) && qkv.needsOnlyInputGradient
            ? UnsafeMutableRawPointer(dQKV).assumingMemoryBound(to: UInt16.self) : nil
        StepProfile.measure(.attention) {
            if classQueries {
                classQueryAttentionBackward(dQKV: rounded == nil ? dQKV : nil, roundedDQKV: rounded, dOut: dA, qkv: qkvBuf.rows, sequences: S,
                                            length: L, width: width, heads: heads, inBF16: inBF16(L))
                return
            }
            switch qkvBuf {
            case .bf16(let q16) where runsShortInBF16(L):
                shortAttentionBackward(dQKV: rounded == nil ? dQKV : nil, roundedDQKV: rounded, dOut: dA, qkv16: q16, sequences: S,
                                       length: L, width: width, heads: heads, interleaved: interleaved)
            case .bf16:
                attentionBackwardOneDNN(dQKV: dQKV, dOut: dA, qkvRows: qkvBuf.rows, sequences: S, length: L, width: width,
                                        heads: heads, roundedDQKV: rounded)
            case .fp32(let q):
                if let rounded {
                    attentionBackwardOneDNN(dQKV: dQKV, dOut: dA, qkv: q, sequences: S, length: L, width: width, heads: heads,
                                            roundedDQKV: rounded)
                } else if inBF16(L) {
                    attentionBackwardBF16(dQKV: dQKV, dOut: dA, qkv: q, sequences: S, length: L, width: width, heads: heads)
                } else {
                    attentionBackward(dQKV: dQKV, dOut: dA, qkv: q, probs: probs, sequences: S, length: L, width: width, heads: heads)
                }
            }
        }
        if let rounded {
            qkv.inputGradient(dInput, roundedDOut: rounded, rows: rows, accumulateInput: accumulateInput)
        } else {
            qkv.backward(dInput: dInput, dOut: dQKV, input: x, inputBF16: xBF16, rows: rows, accumulateInput: accumulateInput)
        }
    }

    /// A bf16 model's attention over long sequences runs in bf16 (AttentionBF16.swift: AMX tiles or
    /// oneDNN), as autocast's does; the temporal pass and fp32 models use the fp32 kernels.
    func inBF16(_ L: Int) -> Bool { qkv.weight.reducedPrecision && attentionRunsInBF16(length: L, width: width, heads: heads) }

    /// Whether the bf16 attention runs through oneDNN (no AMX tiles), which can write its results in bf16.
    private func onOneDNNInBF16(_ L: Int) -> Bool {
        inBF16(L) && !attentionRunsOnTiles(length: L, headWidth: width / heads)
    }

    /// Whether the forward writes the attention's output in bf16 only: out_proj is a bf16 product
    /// that reads nothing else (frozen, or keeping that bf16 input in `keeping`).
    private func writesRoundedOutput(_ L: Int, keeping: UnsafeMutablePointer<UInt16>?) -> Bool {
        (onOneDNNInBF16(L) || runsShortInBF16(L)) && proj.weight.reducedPrecision && (!proj.needsInput || keeping != nil)
    }

    var parameters: [Parameter] { qkv.parameters + proj.parameters }
    /// fvcore convention: projections plus the two attention matrix products.
    func macs(sequences S: Int, length L: Int) -> Int {
        qkv.macs(rows: S * L) + proj.macs(rows: S * L) + 2 * S * L * L * width
    }
}

/// How many floats a layer's row-chunked temporaries hold at most (8M floats, 32 MB): the MLP's
/// activation and the window attention's output and q/k/v gradient; larger inputs go through those
/// layers in row chunks. Settable so tests can force chunking on small models.
public enum TemporaryChunking {
    nonisolated(unsafe) public static var maxFloats = 1 << 23
}

/// The transformer MLP: fc1 → activation (QuickGELU for CLIP, GELU for timm) → fc2.
struct MLPLayer {
    let fc1: LinearLayer
    let fc2: LinearLayer
    let quickGELU: Bool
    var hidden: Int { fc1.outFeatures }

    init(_ store: ParameterStore, _ name: String, width: Int, hidden: Int, clipNames: Bool) {
        fc1 = LinearLayer(store, name + (clipNames ? ".c_fc" : ".fc1"), in: width, out: hidden)
        fc2 = LinearLayer(store, name + (clipNames ? ".c_proj" : ".fc2"), in: hidden, out: width)
        quickGELU = clipNames
    }

    /// Row ranges the activation's temporaries cover at a time: the whole input, or equal chunks of at
    /// most `TemporaryChunking.maxFloats` hidden values when that is larger (why: the [rows, hidden]
    /// temporary was the largest scratch buffer of Swin's first stages, 4 of their [rows, width]
    /// tensors; the GEMMs on thousands of rows per chunk run as fast).
    func rowChunks(_ rows: Int) -> [Range<Int>] {
        let limit = max(16 * hidden, TemporaryChunking.maxFloats)
        let chunks = max(1, (rows * hidden + limit - 1) / limit)
        let step = max(16, ((rows + chunks - 1) / chunks + 15) / 16 * 16)
        return stride(from: 0, to: max(rows, 1), by: step).map { $0..<min(rows, $0 + step) }
    }

    /// bf16 products: fc1's output is kept in bf16 and the activation reads those rounded values, as
    /// under autocast (its Linear returns bf16; why: half the bytes of a block's largest kept buffer).
    var keepsPreInBF16: Bool { fc1.weight.reducedPrecision }

    /// Asks `kept` for fc1's kept output now (a block asks for its largest kept buffer first, see `Arena.carve`).
    func reserveKept(_ kept: Arena, rows: Int) { _ = keptPre(kept, rows: rows) }

    /// fc1's output [rows, hidden] as kept for backward: fp32, or bf16 bits (`keepsPreInBF16`).
    private func keptPre(_ kept: Arena, rows: Int) -> UnsafeMutableRawPointer {
        keepsPreInBF16 ? UnsafeMutableRawPointer(kept.bf16Buffer("j.pre16", rows * hidden))
            : UnsafeMutableRawPointer(kept.buffer("j.pre", rows * hidden))
    }

    /// out (+)= fc2(act(fc1(x))); fc1's output is kept in `kept` for backward; the activation lives in
    /// `scratch` (backward recomputes it from fc1's output).
    /// `roundedInput` (bf16 only): bf16(x), made by the caller for another product too, read by fc1 instead of x.
    /// x may be nil when `roundedInput` is given to a bf16 MLP (`keepsPreInBF16`), which then reads only that.
    func forward(_ out: FloatPtr, _ x: UnsafePointer<Float>?, kept: Arena, scratch: Arena, rows: Int, accumulate: Bool,
                 roundedInput: UnsafePointer<UInt16>? = nil) {
        precondition(x != nil || (roundedInput != nil && keepsPreInBF16), "MLPLayer.forward: no input")
        let chunks = rowChunks(rows), width = fc1.inFeatures
        let act = scratch.buffer("mlp.act", chunks[0].count * hidden)
        let pre = keptPre(kept, rows: rows)
        // bf16: the activation is written in bf16, fc2's operand (as autocast's GELU returns bf16).
        let act16 = keepsPreInBF16 ? scratch.bf16Buffer("mlp.act16", chunks[0].count * hidden) : nil
        for c in chunks {
            let n = c.count
            if let act16 {
                let keep = pre.assumingMemoryBound(to: UInt16.self) + c.lowerBound * hidden
                // fc1 writes its output in bf16 straight into the kept buffer where oneDNN can (as
                // autocast's Linear returns bf16); else in fp32, rounded in place into it.
                if fc1.forward(roundedOutput: keep, roundedInput == nil ? x! + c.lowerBound * width : nil,
                               roundedInput: roundedInput.map { $0 + c.lowerBound * width }, rows: n) {
                    StepProfile.measure(.activation) {
                        activationForward(quick: quickGELU, outBF16: act16, inputBF16: keep, count: n * hidden)
                    }
                } else {
                    if let roundedInput { fc1.forward(act, roundedInput: roundedInput + c.lowerBound * width, rows: n) }
                    else { fc1.forward(act, x! + c.lowerBound * width, rows: n) }
                    StepProfile.measure(.activation) {   // fc1's output rounded in place (kept), the activation into act16
                        activationForwardRoundingInput(quick: quickGELU, outBF16: act16, input: act, keep: keep, count: n * hidden)
                    }
                }
                fc2.forward(out + c.lowerBound * width, roundedInput: act16, rows: n, accumulate: accumulate)
            } else {
                let p = pre.assumingMemoryBound(to: Float.self) + c.lowerBound * hidden
                fc1.forward(p, x! + c.lowerBound * width, rows: n)
                StepProfile.measure(.activation) {
                    if quickGELU { quickGeluForward(out: act, input: p, count: n * hidden) }
                    else { geluForward(out: act, input: p, count: n * hidden) }
                }
                fc2.forward(out + c.lowerBound * width, act, rows: n, accumulate: accumulate)
            }
        }
    }

    /// A tunable fc2's weight gradient reads the activation, recomputed here from `pre` (same bits as
    /// the forward's; why: keeping it held one more [rows, hidden] tensor per block, for one activation pass).
    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, x: UnsafeMutablePointer<Float>?, kept: Arena,
                  scratch: Arena, rows: Int, accumulateInput: Bool) {
        let chunks = rowChunks(rows), width = fc1.inFeatures
        // The activation's backward runs in place (dPre overwrites dAct): one [chunk rows, hidden]
        // buffer, which first holds the recomputed activation for fc2's weight gradient.
        let dAct = scratch.buffer("mlp.dAct", chunks[0].count * hidden)
        let dPre = dAct
        let pre = keptPre(kept, rows: rows)
        // bf16: the recomputed activation (fc2's weight-gradient operand) and, when fc1 forms no
        // weight gradient, dPre are written in bf16, the products' operands; the fp32 dAct buffer
        // then only receives fc2's input gradient.
        let act16 = keepsPreInBF16 ? scratch.bf16Buffer("mlp.act16", chunks[0].count * hidden) : nil
        for c in chunks {
            let n = c.count, dO = dOut + c.lowerBound * width
            let pre16 = keepsPreInBF16 ? UnsafePointer(pre.assumingMemoryBound(to: UInt16.self) + c.lowerBound * hidden) : nil
            let p = UnsafePointer(pre.assumingMemoryBound(to: Float.self) + c.lowerBound * hidden)   // fp32 only
            if let pre16, let act16 {
                // The recomputed activation lives in act16, so fc2's whole backward is one call (dy rounded once).
                if fc2.needsInput {
                    StepProfile.measure(.activation) { activationForward(quick: quickGELU, outBF16: act16, inputBF16: pre16, count: n * hidden) }
                }
                fc2.backward(dInput: dAct, dOut: dO, input: nil, inputBF16: fc2.needsInput ? act16 : nil, rows: n)
            } else {
                if fc2.needsInput {
                    StepProfile.measure(.activation) {
                        if quickGELU { quickGeluForward(out: dAct, input: p, count: n * hidden) }
                        else { geluForward(out: dAct, input: p, count: n * hidden) }
                    }
                    fc2.backward(dInput: nil, dOut: dO, input: dAct, rows: n)
                }
                fc2.backward(dInput: dAct, dOut: dO, input: nil, rows: n, weightGradient: false)
            }
            if let pre16, let act16, fc1.needsOnlyInputGradient {
                StepProfile.measure(.activation) {
                    activationBackward(quick: quickGELU, dInputBF16: act16, dOut: dAct, inputBF16: pre16, count: n * hidden)
                }
                fc1.inputGradient(dInput + c.lowerBound * width, roundedDOut: act16, rows: n, accumulateInput: accumulateInput)
                continue
            }
            StepProfile.measure(.activation) {
                if let pre16 { activationBackward(quick: quickGELU, dInput: dPre, dOut: dAct, inputBF16: pre16, count: n * hidden) }
                else if quickGELU { quickGeluBackward(dInput: dPre, dOut: dAct, input: p, count: n * hidden) }
                else { geluBackward(dInput: dPre, dOut: dAct, input: p, count: n * hidden) }
            }
            fc1.backward(dInput: dInput + c.lowerBound * width, dOut: dPre, input: x.map { UnsafePointer($0 + c.lowerBound * width) },
                         rows: n, accumulateInput: accumulateInput)
        }
    }

    var parameters: [Parameter] { fc1.parameters + fc2.parameters }
    func macs(rows: Int) -> Int { fc1.macs(rows: rows) + fc2.macs(rows: rows) }
}
