import Foundation
import CAMX

// bf16 matrix products for linear layers (model.precision: bf16), on AMX tiles where the CPU
// has them (AMXMatmul.swift), else through oneDNN's matmul (Debian libdnnl 2.6; AVX-512 BF16
// where the CPU has it; also the weight gradients), with the semantics of PyTorch's
// CPU autocast: operands rounded to bf16, accumulation and outputs in fp32, fp32 master
// weights. A frozen weight's bf16 copy is made once; a tunable weight is rounded at each
// product (no copy held); activations and output gradients are converted per call (or the
// forward's bf16 input is kept for the weight gradient). Weight gradients (dW += dyᵀ·x) are
// bf16 products too, accumulated into the fp32 gradient.
// oneDNN threads with OpenMP (OMP_NUM_THREADS, default: all cores). Every oneDNN status other
// than success becomes a thrown `OneDNNError`; `BF16Support.check()` says beforehand whether
// this CPU can run these products at all.

/// Which kernel multiplies the bf16 operands, chosen once per process.
public enum BF16Products {
    /// AMX tile products (AMXMatmul.swift) where this CPU and Linux allow them, unless
    /// `AIM_BF16_GEMM=onednn`; oneDNN's matmul otherwise, and for shapes the tiles do not take.
    /// Why not by a timed probe as the fp32 library: the choice changes the summation order, and
    /// a run resumed in another process must multiply as the first did; the bench measures both.
    public static let tiles: Bool = AMX.isAvailable && !turnedOff
    private static let turnedOff = ProcessInfo.processInfo.environment["AIM_BF16_GEMM"] == "onednn"

    /// For logs and benchmark headers.
    public static var description: String {
        if tiles { return "AMX tiles (ours; oneDNN for shapes not in 32-wide steps and for weight gradients)" }
        return "oneDNN matmul, isa \(OneDNNInfo.isa) (no AMX tiles: \(turnedOff ? "AIM_BF16_GEMM=onednn" : AMX.unavailableReason ?? ""))"
    }

    /// Whether a product with these K and N runs on the tiles (the forward's and input gradient's; A not transposed).
    public static func tiles(k: Int, n: Int) -> Bool { tiles && AMX.fits(k: k, n: n) }
}

/// A weight [N, K] (out × in) as a bf16 operand: either kept (frozen weights: rounded once), or
/// rounded from its fp32 master at every use into one engine buffer (tunable weights). Why per
/// use: a kept copy of a tunable weight is re-rounded at each forward anyway, and holding it
/// through the step costs 2 bytes per weight (170 MB for ViT-B/16 full finetuning); rounding
/// again for the input gradient costs one pass over the weight.
/// A kept weight is held in the layout its product reads, made at its first use: for oneDNN, in
/// oneDNN's packed layout of Wᵀ for the forward and, once an input gradient needs it, of W (the
/// row-major copy rounded at init is dropped once one packed copy exists; the other is made from
/// it); on AMX tiles, packed as Wᵀ and, at the first input gradient, as W (the tile layout
/// interleaves pairs along the product's K, so one packing cannot serve both). A frozen model's
/// layers that no gradient passes (frozen space-only: all of them) hold one copy.
public final class BF16Weight {
    public let outFeatures: Int, inFeatures: Int
    /// Row-major copy for oneDNN: until a packed copy exists, or for good where oneDNN packs nothing.
    private var data: UnsafeMutablePointer<UInt16>?
    /// oneDNN's packed layouts for the forward (Wᵀ as [K, N]) and the input gradient (W as [N, K]).
    private var forwardPacked: UnsafeMutableRawPointer?, inputGradientPacked: UnsafeMutableRawPointer?
    private var forwardPackedBytes = 0, inputGradientPackedBytes = 0
    let forwardTiles: UnsafeMutablePointer<UInt16>?
    /// Made from `forwardTiles` at the first input gradient.
    private var inputGradientTiles: UnsafeMutablePointer<UInt16>?
    let master: UnsafePointer<Float>?
    let tiles: Bool
    /// Bytes held between uses (0 when rounded per use).
    public var bytes: Int {
        let n = outFeatures * inFeatures * MemoryLayout<UInt16>.stride
        return (data == nil ? 0 : n) + (forwardTiles == nil ? 0 : n) + (inputGradientTiles == nil ? 0 : n)
            + forwardPackedBytes + inputGradientPackedBytes
    }

    public init(_ w: UnsafePointer<Float>, outFeatures N: Int, inFeatures K: Int) {
        outFeatures = N; inFeatures = K; master = nil
        tiles = BF16Products.tiles(k: K, n: N)
        if tiles {
            data = nil
            forwardTiles = amxAllocate(N * K)
        } else {
            data = .allocate(capacity: N * K)
            forwardTiles = nil
        }
        refresh(from: w)
    }

    /// No copy kept: each product rounds `w` (which must outlive this object) into the engine's weight buffer.
    public init(roundingPerUse w: UnsafePointer<Float>, outFeatures N: Int, inFeatures K: Int) {
        outFeatures = N; inFeatures = K; master = w; data = nil; forwardTiles = nil; inputGradientTiles = nil
        tiles = BF16Products.tiles(k: K, n: N)
    }

    /// Re-rounds the (changed) fp32 weight into the same storage (nothing to do when rounded per use).
    public func refresh(from w: UnsafePointer<Float>) {
        if let forwardTiles { amxPackTransposed(forwardTiles, w, n: outFeatures, k: inFeatures) }
        if let inputGradientTiles { amxPackRows(inputGradientTiles, w, k: outFeatures, n: inFeatures) }
        if master != nil || tiles { return }
        dropPacked()
        if data == nil { data = .allocate(capacity: outFeatures * inFeatures) }
        toBF16(data!, w, count: outFeatures * inFeatures)
    }

    private func dropPacked() {
        forwardPacked?.deallocate(); inputGradientPacked?.deallocate()
        forwardPacked = nil; inputGradientPacked = nil; forwardPackedBytes = 0; inputGradientPackedBytes = 0
    }

    /// The bf16 operand of one oneDNN product, the forward's (Wᵀ) or the input gradient's (W): a
    /// packed copy (made now from the row-major copy or the other packed one if missing), the
    /// row-major copy where oneDNN packs nothing, or `master` rounded now into the engine's weight slot.
    func operand(_ engine: OneDNNMatmulEngine, forward: Bool) throws -> BF16Operand {
        // `transposed` of a packed operand: how it lies row-major again (the engine's fallback).
        if master == nil, let packed = try packedOperand(engine, forward: forward) { return BF16Operand(pointer: packed, transposed: forward, packed: true) }
        if let data { return BF16Operand(pointer: data, transposed: forward, packed: false) }
        let buf = engine.activations(outFeatures * inFeatures, slot: OneDNNMatmulEngine.weightSlot)
        toBF16(buf, master!, count: outFeatures * inFeatures)
        return BF16Operand(pointer: buf, transposed: forward, packed: false)
    }

    /// This orientation's packed copy, made on first use; nil where oneDNN has no packed layout for it.
    private func packedOperand(_ engine: OneDNNMatmulEngine, forward: Bool) throws -> UnsafeRawPointer? {
        if let p = forward ? forwardPacked : inputGradientPacked { return UnsafeRawPointer(p) }
        // The product's [K, N]: Wᵀ (strides 1, K) forward, W (strides K, 1) for the input gradient.
        let (K, N) = forward ? (inFeatures, outFeatures) : (outFeatures, inFeatures)
        guard let layout = try engine.packedLayout(K: K, N: N) else { return nil }
        let plain: UnsafeMutablePointer<UInt16>
        if let data { plain = data } else {
            // Row-major again from the other orientation's packed copy (an exact permutation).
            plain = engine.activations(outFeatures * inFeatures, slot: OneDNNMatmulEngine.weightSlot)
            let other = try engine.packedLayout(K: N, N: K)!
            try engine.repack(K: N, N: K, plain: plain, strides: forward ? (inFeatures, 1) : (1, inFeatures), layout: other,
                              packed: (forward ? inputGradientPacked : forwardPacked)!, toPacked: false)
        }
        let packed = UnsafeMutableRawPointer.allocate(byteCount: layout.bytes, alignment: 64)
        try engine.repack(K: K, N: N, plain: plain, strides: forward ? (1, inFeatures) : (inFeatures, 1), layout: layout,
                          packed: packed, toPacked: true)
        if forward { forwardPacked = packed; forwardPackedBytes = layout.bytes }
        else { inputGradientPacked = packed; inputGradientPackedBytes = layout.bytes }
        data?.deallocate(); data = nil
        return UnsafeRawPointer(packed)
    }

    /// The packed tile operand: Wᵀ (`forward`) or W, kept or packed now from `master`.
    func tileOperand(_ engine: OneDNNMatmulEngine, forward: Bool) -> UnsafePointer<UInt16> {
        if forward, let forwardTiles { return UnsafePointer(forwardTiles) }
        if !forward, let forwardTiles {
            if inputGradientTiles == nil {
                let t: UnsafeMutablePointer<UInt16> = amxAllocate(outFeatures * inFeatures)
                amxRepackForInputGradient(t, forwardTiles, n: outFeatures, k: inFeatures)
                inputGradientTiles = t
            }
            return UnsafePointer(inputGradientTiles!)
        }
        let buf = engine.activations(outFeatures * inFeatures, slot: OneDNNMatmulEngine.weightSlot)
        if forward { amxPackTransposed(buf, master!, n: outFeatures, k: inFeatures) }
        else { amxPackRows(buf, master!, k: outFeatures, n: inFeatures) }
        return UnsafePointer(buf)
    }
    deinit { data?.deallocate(); dropPacked(); forwardTiles?.deallocate(); inputGradientTiles?.deallocate() }
}

/// Bytes of the bf16 operand buffers the linear layers convert activations into (0 in fp32).
public var bf16OperandBytes: Int { OneDNNMatmulEngine.operandBytes }

/// Round to nearest even, as PyTorch's and oneDNN's fp32 → bf16 conversions (NaN stays NaN).
/// With AVX-512 the same integer rounding runs 16 lanes wide in CAMX (`camx_to_bf16`, the same
/// bits): 0.38 against 0.45 ns per value side by side on the AMX Xeon, 2 threads, memory-bound
/// (the bf16 AIM step rounds 482 M values, 0.15–0.2 s). Elsewhere a plain loop the compiler
/// vectorises for AVX2 (the same rounding written with Swift's SIMD16 types ran 25× slower).
public func toBF16(_ out: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<Float>, count: Int) {
    Threads.parallelFor(count, grain: 1 << 14) { r in roundToBF16Serially(out + r.lowerBound, x + r.lowerBound, r.count) }
}

/// `toBF16` on the calling thread only (a block inside a parallel loop); the same bits.
@inline(__always) func roundToBF16Serially(_ out: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<Float>, _ n: Int) {
    if roundsWithAVX512 { camx_to_bf16(out, x, n); return }
    for i in 0..<n { out[i] = toBF16(x[i]) }
}

/// out = fp32(x) for n bf16 values on the calling thread (exact: the bits shifted up). Written over
/// 0..<n of two base pointers, so the loop vectorises (indexing by `i + j` kept an overflow check
/// per value and ran scalar: the bf16 GELU then took 2.5× the fp32 one).
@inline(__always) func widenFromBF16Serially(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<UInt16>, _ n: Int) {
    for j in 0..<n { out[j] = Float(bitPattern: UInt32(x[j]) &<< 16) }
}

/// AVX-512 F/BW/VL: CAMX's element-wise bf16 kernels (rounding, the bf16 activations) can run.
let roundsWithAVX512 = CPUFeatures.current.contains([.avx512f, .avx512bw, .avx512vl])

@inline(__always) func toBF16(_ x: Float) -> UInt16 {
    let u = x.bitPattern
    if x.isNaN { return UInt16(truncatingIfNeeded: u >> 16) | 0x40 }
    return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
}

/// y = scale · (x · Wᵀ + b) [+ residual]; `out` overwritten, or added to when `accumulate`.
/// `keepInput` [M, K] (optional) receives bf16(x), the operand this product reads, for the weight
/// gradient in backward (`linearBackwardBF16(inputBF16:)`), as autocast saves the cast input.
/// `residual` [M, N] and `scale` go inside oneDNN's product as post-ops (as the fp32 path with
/// oneDNN); on tiles, or where oneDNN has no kernel for them, the residual is laid down first and
/// a scaled product goes through a temporary.
public func linearForwardBF16(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: BF16Weight, bias: UnsafePointer<Float>?,
    rows M: Int, accumulate: Bool = false, keepInput: UnsafeMutablePointer<UInt16>? = nil,
    residual: UnsafePointer<Float>? = nil, scale: Float = 1
) throws {
    if M == 0 { return }
    let engine = try OneDNNMatmulEngine.shared()
    let x = keepInput ?? engine.activations(M * weight.inFeatures, slot: 0)
    toBF16(x, input, count: M * weight.inFeatures)
    // Why only without `accumulate`: then the post-op order, ((x·Wᵀ + b) + residual), is the order
    // of laying the residual down first, so the bits do not depend on the path.
    if (residual != nil && !accumulate) || scale != 1, !weight.tiles {
        do {
            try engine.matmul(M: M, K: weight.inFeatures, N: weight.outFeatures, src: x, weights: weight.operand(engine, forward: true),
                              bias: bias, dst: out, accumulate: accumulate, residual: residual, scale: scale)
            return
        } catch is OneDNNReferenceOnly {}
    }
    if scale != 1 {
        // The product into a temporary, then scaled into `out` (callers avoid this: `scalesInside`).
        let N = weight.outFeatures, t = UnsafeMutablePointer<Float>.allocate(capacity: M * N)
        defer { t.deallocate() }
        try forwardProduct(out: t, x: x, weight: weight, bias: bias, rows: M, accumulate: false, engine)
        Threads.parallelFor(M, grain: 64) { r in
            for i in r {
                let o = out + i * N, p = t + i * N, res = residual.map { $0 + i * N }
                for j in 0..<N { o[j] = (accumulate ? o[j] : 0) + scale * p[j] + (res?[j] ?? 0) }
            }
        }
        return
    }
    var accumulate = accumulate
    if let residual { addResidual(into: out, residual, count: M * weight.outFeatures, accumulate: accumulate); accumulate = true }
    try forwardProduct(out: out, x: x, weight: weight, bias: bias, rows: M, accumulate: accumulate, engine)
}

/// `linearForwardBF16` for an input already in bf16 [M, K] (an activation that wrote its output
/// as the next product's operand): no rounding pass.
public func linearForwardBF16(
    out: UnsafeMutablePointer<Float>, roundedInput x: UnsafePointer<UInt16>, weight: BF16Weight, bias: UnsafePointer<Float>?,
    rows M: Int, accumulate: Bool = false
) throws {
    if M == 0 { return }
    try forwardProduct(out: out, x: x, weight: weight, bias: bias, rows: M, accumulate: accumulate, try OneDNNMatmulEngine.shared())
}

/// y = bf16(x · Wᵀ + b) [M, N]: the fp32 result rounded as it is written (as `toBF16` rounds it),
/// for an output only bf16 products and bf16 readers use (fc1's output, which autocast returns in
/// bf16): no fp32 output and no rounding pass. x is `roundedInput` (bf16) or `input` (rounded here).
/// Returns false, writing nothing, where it cannot run: on AMX tiles (they write fp32), or where
/// oneDNN has no real kernel for it; the caller then takes the fp32 output and rounds.
@discardableResult
public func linearForwardBF16(
    roundedOut: UnsafeMutablePointer<UInt16>, input: UnsafePointer<Float>?, roundedInput: UnsafePointer<UInt16>?,
    weight: BF16Weight, bias: UnsafePointer<Float>?, rows M: Int
) throws -> Bool {
    precondition((input == nil) != (roundedInput == nil), "linearForwardBF16(roundedOut:): one input, fp32 or bf16")
    if weight.tiles { return false }
    if M == 0 { return true }
    let engine = try OneDNNMatmulEngine.shared()
    let x: UnsafePointer<UInt16>
    if let roundedInput { x = roundedInput } else {
        let rounded = engine.activations(M * weight.inFeatures, slot: 0)
        toBF16(rounded, input!, count: M * weight.inFeatures)
        x = UnsafePointer(rounded)
    }
    do {
        try engine.matmul(M: M, K: weight.inFeatures, N: weight.outFeatures, src: x, weights: weight.operand(engine, forward: true),
                          bias: bias, roundedDst: roundedOut)
    } catch is OneDNNReferenceOnly {
        return false
    }
    return true
}

private func forwardProduct(out: UnsafeMutablePointer<Float>, x: UnsafePointer<UInt16>, weight: BF16Weight, bias: UnsafePointer<Float>?,
                            rows M: Int, accumulate: Bool, _ engine: OneDNNMatmulEngine) throws {
    let K = weight.inFeatures, N = weight.outFeatures
    if weight.tiles {
        amxMatmul(m: M, k: K, n: N, a: x, b: weight.tileOperand(engine, forward: true), bias: bias, c: out, accumulate: accumulate)
        return
    }
    try engine.matmul(M: M, K: K, N: N, src: x, weights: weight.operand(engine, forward: true),
                      bias: bias, dst: out, accumulate: accumulate)
}

/// dx = dy · W (W [N, K]); `dInput` overwritten, or added to when `accumulateInput`.
public func linearInputGradientBF16(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, weight: BF16Weight, rows M: Int,
    accumulateInput: Bool = false
) throws {
    try linearBackwardBF16(dInput: dInput, dWeight: nil, dBias: nil, dOut: dOut, input: nil, weight: weight, rows: M,
                       accumulateInput: accumulateInput)
}

/// The whole backward of a linear layer in bf16: dx = dy·W (if `dInput`; overwritten or added to),
/// dW += dyᵀ·x (if `dWeight`; needs `input`), db += Σ rows dy in fp32 (if `dBias`).
/// dy is rounded to bf16 once for both products. The weight gradient reads `inputBF16` (the
/// forward's `keepInput`) when given, else rounds `input`: the same bits either way.
/// `inputResidual` [M, K] is added to dInput last (a skip connection's gradient): inside oneDNN's
/// product where it can, after the product otherwise (the same order, so the same bits).
public func linearBackwardBF16(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOut: UnsafePointer<Float>, input: UnsafePointer<Float>?, inputBF16: UnsafePointer<UInt16>? = nil,
    weight: BF16Weight, rows M: Int, accumulateInput: Bool = false, inputResidual: UnsafePointer<Float>? = nil
) throws {
    if M == 0 { return }
    let K = weight.inFeatures, N = weight.outFeatures
    if dInput != nil || dWeight != nil {
        let engine = try OneDNNMatmulEngine.shared()
        let dy = engine.activations(M * N, slot: 0)
        toBF16(dy, dOut, count: M * N)
        if let dInput {
            try inputGradientProduct(dInput: dInput, dy: dy, weight: weight, rows: M, accumulate: accumulateInput, residual: inputResidual, engine)
        }
        if let dWeight {
            let x: UnsafePointer<UInt16>
            if let inputBF16 { x = inputBF16 } else {
                guard let input else { preconditionFailure("linearBackwardBF16: a weight gradient needs the layer input") }
                let xs = engine.activations(M * K, slot: 1)
                toBF16(xs, input, count: M * K)
                x = UnsafePointer(xs)
            }
            // [N, K] += dyᵀ [N, M] · x [M, K], dy read through transposed strides.
            try engine.matmul(M: N, K: M, N: K, src: dy, transposedSource: true, weights: x, transposedWeights: false,
                                     bias: nil, dst: dWeight, accumulate: true)
        }
    }
    if let dBias { sumRows(into: dBias, dOut, M, N) }
}

/// dx = dy · W for dy already in bf16 [M, N] (an activation's backward that wrote it as this
/// product's operand); input gradient only (a weight or bias gradient would need dy in fp32).
public func linearInputGradientBF16(
    dInput: UnsafeMutablePointer<Float>, roundedDOut dy: UnsafePointer<UInt16>, weight: BF16Weight, rows M: Int,
    accumulateInput: Bool = false
) throws {
    if M == 0 { return }
    try inputGradientProduct(dInput: dInput, dy: dy, weight: weight, rows: M, accumulate: accumulateInput, try OneDNNMatmulEngine.shared())
}

private func inputGradientProduct(dInput: UnsafeMutablePointer<Float>, dy: UnsafePointer<UInt16>, weight: BF16Weight, rows M: Int,
                                  accumulate: Bool, residual: UnsafePointer<Float>? = nil, _ engine: OneDNNMatmulEngine) throws {
    let K = weight.inFeatures, N = weight.outFeatures
    if weight.tiles {
        amxMatmul(m: M, k: N, n: K, a: dy, b: weight.tileOperand(engine, forward: false), bias: nil, c: dInput, accumulate: accumulate)
    } else {
        let w = try weight.operand(engine, forward: false)
        do {
            try engine.matmul(M: M, K: N, N: K, src: dy, weights: w, bias: nil, dst: dInput, accumulate: accumulate, residual: residual)
            return
        } catch is OneDNNReferenceOnly {
            try engine.matmul(M: M, K: N, N: K, src: dy, weights: w, bias: nil, dst: dInput, accumulate: accumulate)
        }
    }
    if let residual { addInPlace(dInput, residual, count: M * K) }
}
