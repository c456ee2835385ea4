// Elementwise helpers the model needs between kernels (residual adds, scaling).
// Each element is computed independently, so any chunking gives the same bits.

/// Elements per parallel chunk below which splitting costs more than it saves.
let elementwiseGrain = 1 << 15

/// y += x.
public func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        zip16(y + r.lowerBound, y + r.lowerBound, x + r.lowerBound, r.count) { $0 + $1 }
    }
}

/// out = a + b (out may alias a or b).
public func add(out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        zip16(out + r.lowerBound, a + r.lowerBound, b + r.lowerBound, r.count) { $0 + $1 }
    }
}

/// out = x over both cores (why: one thread's memcpy leaves half the memory bandwidth unused on
/// the [rows, channels] tensors of a block, tens of MB in Swin's first stage).
public func copyParallel(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        (out + r.lowerBound).update(from: x + r.lowerBound, count: r.count)
    }
}

/// y *= s.
public func scale(_ y: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
    Threads.parallelFor(count, grain: elementwiseGrain) { r in
        map16(y + r.lowerBound, y + r.lowerBound, r.count) { $0 * s }
    }
}

/// out[r, :] = input[r, :] · rowScales[r] (overwrite, or += when `accumulate`, or base[r, :] +
/// when `base` is given). Serves drop-path forward and backward: the caller maps each sample's
/// scale to its rows.
public func scaleRows(
    out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rowScales: UnsafePointer<Float>,
    rows: Int, cols: Int, accumulate: Bool = false, base: UnsafePointer<Float>? = nil
) {
    precondition(rows >= 0 && cols >= 0, "scaleRows: bad sizes rows=\(rows) cols=\(cols)")
    precondition(!(accumulate && base != nil), "scaleRows: accumulate adds to out, base adds another tensor; not both")
    Threads.parallelFor(rows, grain: max(1, elementwiseGrain / max(cols, 1))) { rs in
        for i in rs {
            let s = rowScales[i], o = out + i * cols, x = input + i * cols
            if let base {
                zip16(o, base + i * cols, x, cols) { $0 + $1 * s }
            } else if accumulate {
                zip16(o, o, x, cols) { $0 + $1 * s }
            } else {
                map16(o, x, cols) { $0 * s }
            }
        }
    }
}
