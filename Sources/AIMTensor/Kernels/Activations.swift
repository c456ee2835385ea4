// GELU (exact, erf form: nn.GELU's default) and CLIP's QuickGELU x·σ(1.702x).
// Forward may run in place (out == input); backward reads the forward's input.
// The functions are static members of a protocol so the generic drivers below are specialised
// per activation and the vector math is inlined into the loop (closures were not).

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
