import CAMX
import Foundation

// AdamW as torch.optim.AdamW (amsgrad off, maximize off):
//   p ← p·(1 - lr·wd)                       decoupled weight decay, applied first
//   m ← m + (1-β1)·(g - m)  (torch's lerp),  v ← β2·v + (1-β2)·g²
//   p ← p - (lr / (1-β1^t)) · m / (√v / √(1-β2^t) + eps)
// `t` is the 1-based step count. Scalars are formed in Double and the float operations are
// ordered as torch's single-tensor path. Elementwise, so any chunking gives the same bits.

/// The per-step scalars of one AdamW update, formed in Double as torch forms them.
public struct AdamWCoefficients: Sendable {
    public let decay: Float, stepSize: Float, bc2Sqrt: Float, eps: Float, beta2: Float, c1: Float, c2: Float

    public init(lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step t: Int) {
        precondition(t >= 1, "adamWStep: step counts from 1, got \(t)")
        let bc1 = 1 - Foundation.pow(Double(beta1), Double(t))
        let bc2 = 1 - Foundation.pow(Double(beta2), Double(t))
        stepSize = Float(Double(lr) / bc1)
        bc2Sqrt = Float(bc2.squareRoot())
        decay = Float(1 - Double(lr) * Double(weightDecay))
        self.eps = eps; self.beta2 = beta2; c1 = 1 - beta1; c2 = 1 - beta2
    }
}

/// Returns whether any parameter or moment it wrote is inf or NaN (the trainer's check, without a
/// pass of its own). On x86-64 the update is CAMX's AVX2 loop (`camx_adamw`: Swift's square root
/// kept the loop scalar, 3.6 ns a value), the same operations in the same order, so the same bits as
/// `adamWScalar`.
@discardableResult
public func adamWStep(
    params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
    m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
    lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step t: Int
) -> Bool {
    let c = AdamWCoefficients(lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, step: t)
    var nonFinite = [Bool](repeating: false, count: Threads.count)
    nonFinite.withUnsafeMutableBufferPointer { flags in
        _ = forEachChunk(count, grain: elementwiseGrain) { chunk, r in
            let (p, g, mo, vo) = (params + r.lowerBound, grads + r.lowerBound, m + r.lowerBound, v + r.lowerBound)
            #if arch(x86_64)
            flags[chunk] = camx_adamw(p, g, mo, vo, r.count, c.decay, c.stepSize, c.bc2Sqrt, c.eps, c.beta2, c.c1, c.c2) != 0
            #else
            flags[chunk] = adamWScalar(p, g, mo, vo, r.count, c)
            #endif
        }
    }
    return nonFinite.contains(true)
}

/// The update value by value (the reference for `camx_adamw`'s bits, and the path off x86-64);
/// returns whether it wrote an inf or NaN.
public func adamWScalar(_ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                        _ v: UnsafeMutablePointer<Float>, _ count: Int, _ c: AdamWCoefficients) -> Bool {
    var bad = false
    for i in 0..<count {
        let g = grads[i]
        let mi = m[i] + c.c1 * (g - m[i])
        let vi = v[i] * c.beta2 + c.c2 * (g * g)
        m[i] = mi; v[i] = vi
        params[i] = params[i] * c.decay - c.stepSize * (mi / (vi.squareRoot() / c.bc2Sqrt + c.eps))
        bad = bad || !params[i].isFinite || !mi.isFinite || !vi.isFinite
    }
    return bad
}
