// GELU (exact, erf form: nn.GELU's default) and CLIP's QuickGELU x·σ(1.702x).
// Forward may run in place (out == input); backward reads the forward's input.
// The functions are static members of a protocol so the generic drivers below are specialised
// per activation and the vector math is inlined into the loop (closures were not).

import CAMX

private let invSqrt2: Float = 0.707_106_781_186_547_524_4
private let invSqrt2Pi: Float = 0.398_942_280_401_432_677_9
private let quickAlpha: Float = 1.702

protocol VectorActivation {
    static func value(_ x: F16) -> F16
    static func derivative(_ x: F16) -> F16
}

/// x·Φ(x); d/dx = Φ(x) + x·φ(x).
enum GeluFunction: VectorActivation {
    @_transparent static func value(_ x: F16) -> F16 { 0.5 * x * (1 + erf16(x * invSqrt2)) }
    @_transparent static func derivative(_ x: F16) -> F16 {
        0.5 * (1 + erf16(x * invSqrt2)) + x * invSqrt2Pi * exp16(-0.5 * x * x)
    }
}

/// x·σ(αx); d/dx = σ + α·x·σ·(1-σ).
enum QuickGeluFunction: VectorActivation {
    @_transparent static func sigmoid(_ z: F16) -> F16 { 1 / (1 + exp16(-z)) }
    @_transparent static func value(_ x: F16) -> F16 { x * sigmoid(quickAlpha * x) }
    @_transparent static func derivative(_ x: F16) -> F16 {
        let s = sigmoid(quickAlpha * x)
        return s + quickAlpha * x * s * (1 - s)
    }
}

// Each driver's loop runs over whole 16-float vectors only, in its own non-inlined function: the
// vector math then appears once per loop and is fully inlined (with a second copy for the tail, or a
// run-time `accumulate` test inside the loop, the compiler stopped inlining exp/erf and the GELU
// backward ran 3–4× slower). The tail goes through the same loop on a zero-padded stack copy.

@inline(never)
private func forwardVectors<F: VectorActivation>(_: F.Type, _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 16 <= count { store16(F.value(load16(x + i)), out + i); i += 16 }
}

@inline(never)
private func backwardVectors<F: VectorActivation>(
    _: F.Type, _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int
) {
    var i = 0
    while i + 16 <= count { store16(load16(dOut + i) * F.derivative(load16(x + i)), dInput + i); i += 16 }
}

@inline(never)
private func accumulateBackwardVectors<F: VectorActivation>(
    _: F.Type, _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int
) {
    var i = 0
    while i + 16 <= count { store16(load16(dOut + i) * F.derivative(load16(x + i)) + load16(dInput + i), dInput + i); i += 16 }
}

/// Runs `body` on the whole vectors of `0..<count`, then on the last `count % 16` floats of each
/// operand copied into zero-padded 16-float stack buffers (written back to `out`).
@inline(__always)
private func vectorsWithPaddedTail(
    _ count: Int, out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
    _ body: (_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Void
) {
    let whole = count / 16 * 16
    body(out, a, b, whole)
    let n = count - whole
    guard n > 0 else { return }
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 48) { t in
        let tOut = t.baseAddress!, tA = tOut + 16, tB = tOut + 32
        t.initialize(repeating: 0)
        tOut.update(from: out + whole, count: n)
        tA.update(from: a + whole, count: n)
        tB.update(from: b + whole, count: n)
        body(tOut, tA, tB, 16)
        (out + whole).update(from: tOut, count: n)
    }
}

private func activationForward<F: VectorActivation>(
    _ f: F.Type, _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        vectorsWithPaddedTail(r.count, out: out + r.lowerBound, x + r.lowerBound, x + r.lowerBound) { o, a, _, n in
            forwardVectors(f, o, a, n)
        }
    }
}

/// dInput (=|+=) dOut · f'(input).
/// dInput may be dOut itself (in place) when not accumulating: each vector is read before it is written.
private func activationBackward<F: VectorActivation>(
    _ f: F.Type, _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
    _ count: Int, _ accumulate: Bool
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        vectorsWithPaddedTail(r.count, out: dInput + r.lowerBound, dOut + r.lowerBound, x + r.lowerBound) { o, d, xs, n in
            if accumulate { accumulateBackwardVectors(f, o, d, xs, n) } else { backwardVectors(f, o, d, xs, n) }
        }
    }
}

public func geluForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    activationForward(GeluFunction.self, out, input, count)
}

public func geluBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int, accumulateInput: Bool = false
) {
    activationBackward(GeluFunction.self, dInput, dOut, input, count, accumulateInput)
}

public func quickGeluForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    activationForward(QuickGeluFunction.self, out, input, count)
}

public func quickGeluBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int, accumulateInput: Bool = false
) {
    activationBackward(QuickGeluFunction.self, dInput, dOut, input, count, accumulateInput)
}

// MARK: - bf16 inputs (a bf16 MLP keeps fc1's output in bf16, as autocast's Linear returns it)

/// Floats per cache-sized block: the rounding or widening of a block and the activation on it run
/// back to back, so each value crosses memory once (why: a separate rounding pass cost about 4 % of
/// an AIM bf16 step).
private let bf16Block = 2048

/// x ← bf16(x) (bits to `keep`) for one block, then `body` on it.
private func blocksRoundingToBF16(_ count: Int, _ x: UnsafeMutablePointer<Float>, _ keep: UnsafeMutablePointer<UInt16>,
                                  _ body: (_ offset: Int, _ n: Int) -> Void) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        var i = r.lowerBound
        while i < r.upperBound {
            let n = min(bf16Block, r.upperBound - i)
            roundToBF16Serially(keep + i, x + i, n)
            widenFromBF16Serially(x + i, keep + i, n)
            body(i, n)
            i += n
        }
    }
}

/// `body` on each block of `x` widened to fp32 in a stack buffer.
private func blocksWidenedFromBF16(_ count: Int, _ x: UnsafePointer<UInt16>,
                                   _ body: (_ offset: Int, _ n: Int, _ xs: UnsafePointer<Float>) -> Void) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: bf16Block) { t in
            let xs = t.baseAddress!
            var i = r.lowerBound
            while i < r.upperBound {
                let n = min(bf16Block, r.upperBound - i)
                widenFromBF16Serially(xs, x + i, n)
                body(i, n, xs)
                i += n
            }
        }
    }
}

/// `body` fills a stack block of n ≤ `bf16Block` floats, which is then rounded to bf16 at `out`.
private func blockRoundedTo(_ out: UnsafeMutablePointer<UInt16>, _ n: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: bf16Block) { t in
        body(t.baseAddress!)
        roundToBF16Serially(out, t.baseAddress!, n)
    }
}

/// x ← bf16(x) in place (bits to `keep`), outBF16 = bf16(GELU(x)) (`quick`: QuickGELU): the
/// activation written as the next bf16 product's operand, as autocast's GELU returns bf16 (why:
/// the product's own rounding pass read it back as fp32; the same bits either way).
public func activationForwardRoundingInput(quick: Bool, outBF16: UnsafeMutablePointer<UInt16>, input x: UnsafeMutablePointer<Float>,
                                           keep: UnsafeMutablePointer<UInt16>, count: Int) {
    func run<F: VectorActivation>(_ f: F.Type) {
        blocksRoundingToBF16(count, x, keep) { i, n in
            blockRoundedTo(outBF16 + i, n) { o in vectorsWithPaddedTail(n, out: o, x + i, x + i) { o, a, _, m in forwardVectors(f, o, a, m) } }
        }
    }
    if quick { run(QuickGeluFunction.self) } else { run(GeluFunction.self) }
}

/// outBF16 = bf16(GELU(x)) (`quick`: QuickGELU) for bf16 `x`.
public func activationForward(quick: Bool, outBF16: UnsafeMutablePointer<UInt16>, inputBF16 x: UnsafePointer<UInt16>, count: Int) {
    if roundsWithAVX512 {
        Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
            camx_activation_bf16(quick ? 1 : 0, outBF16 + r.lowerBound, x + r.lowerBound, r.count)
        }
        return
    }
    func run<F: VectorActivation>(_ f: F.Type) {
        blocksWidenedFromBF16(count, x) { i, n, xs in
            blockRoundedTo(outBF16 + i, n) { o in vectorsWithPaddedTail(n, out: o, xs, xs) { o, a, _, m in forwardVectors(f, o, a, m) } }
        }
    }
    if quick { run(QuickGeluFunction.self) } else { run(GeluFunction.self) }
}

/// dInputBF16 = bf16(dOut · f'(x)) for bf16 `x`: the gradient as the next bf16 product's operand
/// (for a layer below that needs no fp32 gradient: no weight or bias gradient).
public func activationBackward(quick: Bool, dInputBF16: UnsafeMutablePointer<UInt16>, dOut: UnsafePointer<Float>,
                               inputBF16 x: UnsafePointer<UInt16>, count: Int) {
    if roundsWithAVX512 {
        Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
            camx_activation_backward_bf16(quick ? 1 : 0, dInputBF16 + r.lowerBound, nil, dOut + r.lowerBound, x + r.lowerBound, r.count)
        }
        return
    }
    func run<F: VectorActivation>(_ f: F.Type) {
        blocksWidenedFromBF16(count, x) { i, n, xs in
            blockRoundedTo(dInputBF16 + i, n) { o in vectorsWithPaddedTail(n, out: o, dOut + i, xs) { o, d, s, m in backwardVectors(f, o, d, s, m) } }
        }
    }
    if quick { run(QuickGeluFunction.self) } else { run(GeluFunction.self) }
}

/// dInput = dOut · f'(x) for bf16 `x`; dInput may be dOut itself.
public func activationBackward(quick: Bool, dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>,
                               inputBF16 x: UnsafePointer<UInt16>, count: Int) {
    if roundsWithAVX512 {
        Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
            camx_activation_backward_bf16(quick ? 1 : 0, nil, dInput + r.lowerBound, dOut + r.lowerBound, x + r.lowerBound, r.count)
        }
        return
    }
    func run<F: VectorActivation>(_ f: F.Type) {
        blocksWidenedFromBF16(count, x) { i, n, xs in
            vectorsWithPaddedTail(n, out: dInput + i, dOut + i, xs) { o, d, s, m in backwardVectors(f, o, d, s, m) }
        }
    }
    if quick { run(QuickGeluFunction.self) } else { run(GeluFunction.self) }
}
