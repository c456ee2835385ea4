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
    @inline(__always) static func value(_ x: F16) -> F16 { 0.5 * x * (1 + erf16(x * invSqrt2)) }
    @inline(__always) static func derivative(_ x: F16) -> F16 {
        0.5 * (1 + erf16(x * invSqrt2)) + x * invSqrt2Pi * exp16(-0.5 * x * x)
    }
}

/// x·σ(αx); d/dx = σ + α·x·σ·(1-σ).
enum QuickGeluFunction: VectorActivation {
    @inline(__always) static func sigmoid(_ z: F16) -> F16 { 1 / (1 + exp16(-z)) }
    @inline(__always) static func value(_ x: F16) -> F16 { x * sigmoid(quickAlpha * x) }
    @inline(__always) static func derivative(_ x: F16) -> F16 {
        let s = sigmoid(quickAlpha * x)
        return s + quickAlpha * x * s * (1 - s)
    }
}

private func activationForward<F: VectorActivation>(
    _: F.Type, _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        var i = r.lowerBound
        while i + 16 <= r.upperBound { store16(F.value(load16(x + i)), out + i); i += 16 }
        if i < r.upperBound {
            let n = r.upperBound - i
            storePartial(F.value(loadPartial(x + i, n)), out + i, n)
        }
    }
}

/// dInput (=|+=) dOut · f'(input).
/// dInput may be dOut itself (in place) when not accumulating: each vector is read before it is written.
private func activationBackward<F: VectorActivation>(
    _: F.Type, _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
    _ count: Int, _ accumulate: Bool
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            var v = load16(dOut + i) * F.derivative(load16(x + i))
            if accumulate { v += load16(dInput + i) }
            store16(v, dInput + i)
            i += 16
        }
        if i < r.upperBound {
            let n = r.upperBound - i
            var v = loadPartial(dOut + i, n) * F.derivative(loadPartial(x + i, n))
            if accumulate { v += loadPartial(dInput + i, n) }
            storePartial(v, dInput + i, n)
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
