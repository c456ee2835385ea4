import AIMTensor

/// Swaps the two middle axes of `[A, P, Q, D]` into `[A, Q, P, D]` (rows of D floats are moved
/// whole). With P = T frames and Q = N tokens this is einops' `'(b t) n d -> (b n) t d'`;
/// calling it with P and Q exchanged undoes it. Rows of fp32 or of bf16 bits alike.
public func swapMiddleAxes<Element>(out: UnsafeMutablePointer<Element>, input: UnsafePointer<Element>, outer A: Int, p P: Int, q Q: Int,
                                    rowLength D: Int) {
    Threads.parallelFor(A * Q, grain: 8) { range in
        for aq in range {
            let a = aq / Q, q = aq % Q
            for p in 0..<P {
                (out + ((a * Q + q) * P + p) * D).update(from: input + ((a * P + p) * Q + q) * D, count: D)
            }
        }
    }
}

/// `'b c t h w -> (b t) c h w'`: video clips into a batch of frames.
public func videoToFrames(out: UnsafeMutablePointer<Float>, video: UnsafePointer<Float>, batch B: Int, channels C: Int, frames T: Int, pixels HW: Int) {
    Threads.parallelFor(B * T, grain: 1) { range in
        for bt in range {
            let b = bt / T, t = bt % T
            for c in 0..<C {
                (out + (bt * C + c) * HW).update(from: video + ((b * C + c) * T + t) * HW, count: HW)
            }
        }
    }
}
