import Foundation

// AdamW as torch.optim.AdamW (amsgrad off, maximize off):
//   p ← p·(1 - lr·wd)                       decoupled weight decay, applied first
//   m ← m + (1-β1)·(g - m)  (torch's lerp),  v ← β2·v + (1-β2)·g²
//   p ← p - (lr / (1-β1^t)) · m / (√v / √(1-β2^t) + eps)
// `t` is the 1-based step count. Scalars are formed in Double and the float operations are
// ordered as torch's single-tensor path. Elementwise, so any chunking gives the same bits.

public func adamWStep(
    params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
    m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
    lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step t: Int
) {
    precondition(t >= 1, "adamWStep: step counts from 1, got \(t)")
    let bc1 = 1 - Foundation.pow(Double(beta1), Double(t))
    let bc2 = 1 - Foundation.pow(Double(beta2), Double(t))
    let stepSize = Float(Double(lr) / bc1)
    let bc2Sqrt = Float(bc2.squareRoot())
    let decay = Float(1 - Double(lr) * Double(weightDecay))
    let b2 = beta2, c1 = 1 - beta1, c2 = 1 - beta2
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        for i in r {
            let g = grads[i]
            let mi = m[i] + c1 * (g - m[i])
            let vi = v[i] * b2 + c2 * (g * g)
            m[i] = mi; v[i] = vi
            params[i] = params[i] * decay - stepSize * (mi / (vi.squareRoot() / bc2Sqrt + eps))
        }
    }
}
