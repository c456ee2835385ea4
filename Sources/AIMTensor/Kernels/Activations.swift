// GELU (exact, erf form: nn.GELU's default) and CLIP's QuickGELU x·σ(1.702x).
// Forward may run in place (out == input); backward reads the forward's input.

private let invSqrt2: Float = 0.707_106_781_186_547_524_4
private let invSqrt2Pi: Float = 0.398_942_280_401_432_677_9
private let quickAlpha: Float = 1.702

/// Elementwise kernel driver: parallel chunks, 16 lanes at a time.
@inline(__always) private func elementwise(
    _ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, _ f: (F16) -> F16
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        map16(out + r.lowerBound, x + r.lowerBound, r.count, f)
    }
}

/// dInput (=|+=) dOut · f'(input).
@inline(__always) private func elementwiseBackward(
    _ dInput: UnsafeMutablePointer<Float>, _ dOut: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
    _ count: Int, _ accumulate: Bool, _ derivative: (F16) -> F16
) {
    Threads.parallelFor(count, grain: elementwiseGrain / 4) { r in
        let lo = r.lowerBound
        if accumulate {
            var i = 0
            let n = r.count, dx = dInput + lo, dy = dOut + lo, xs = x + lo
            while i + 16 <= n {
                store16(load16(dx + i) + load16(dy + i) * derivative(load16(xs + i)), dx + i)
                i += 16
            }
            if i < n {
                let k = n - i
                let v = loadPartial(dx + i, k) + loadPartial(dy + i, k) * derivative(loadPartial(xs + i, k))
                storePartial(v, dx + i, k)
            }
        } else {
            zip16(dInput + lo, dOut + lo, x + lo, r.count) { dy, xv in dy * derivative(xv) }
        }
    }
}

public func geluForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    elementwise(out, input, count) { x in 0.5 * x * (1 + erf16(x * invSqrt2)) }
}

/// d/dx [x·Φ(x)] = Φ(x) + x·φ(x).
public func geluBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int, accumulateInput: Bool = false
) {
    elementwiseBackward(dInput, dOut, input, count, accumulateInput) { x in
        0.5 * (1 + erf16(x * invSqrt2)) + x * invSqrt2Pi * exp16(-0.5 * x * x)
    }
}

@inline(__always) private func sigmoid16(_ z: F16) -> F16 { 1 / (1 + exp16(-z)) }

public func quickGeluForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, count: Int) {
    elementwise(out, input, count) { x in x * sigmoid16(quickAlpha * x) }
}

/// d/dx [x·σ(αx)] = σ + α·x·σ·(1-σ).
public func quickGeluBackward(
    dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
    count: Int, accumulateInput: Bool = false
) {
    elementwiseBackward(dInput, dOut, input, count, accumulateInput) { x in
        let s = sigmoid16(quickAlpha * x)
        return s + quickAlpha * x * s * (1 - s)
    }
}
