// Row permutations as strided copies: window partition / reverse with a cyclic shift, the
// temporal (b n) t ↔ (b t) n swap and Swin's 2×2 patch merging are all "row r of the output is
// row index[r] of the input" over rows of a fixed width, so one gather and its adjoint serve them.

/// out[r] = input[index[r]] for r < rows, each row `width` floats; a negative index gives a row of
/// zeros (padding, e.g. Video Swin's PatchMerging of an odd grid).
public func gatherRows(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, index: UnsafePointer<Int32>,
                       rows: Int, width: Int) {
    gatherRowBytes(out: UnsafeMutableRawPointer(out), input: UnsafeRawPointer(input), index: index, rows: rows,
                   rowBytes: width * MemoryLayout<Float>.stride)
}

/// The same over bf16 rows (a bf16 model's LayerNorm output gathered into windows, as its product reads it).
public func gatherRows(out: UnsafeMutablePointer<UInt16>, input: UnsafePointer<UInt16>, index: UnsafePointer<Int32>,
                       rows: Int, width: Int) {
    gatherRowBytes(out: UnsafeMutableRawPointer(out), input: UnsafeRawPointer(input), index: index, rows: rows,
                   rowBytes: width * MemoryLayout<UInt16>.stride)
}

/// Rows as bytes: both element types share one loop (zero bits are 0 in either).
private func gatherRowBytes(out: UnsafeMutableRawPointer, input: UnsafeRawPointer, index: UnsafePointer<Int32>, rows: Int, rowBytes: Int) {
    Threads.parallelFor(rows, grain: max(1, 32768 / max(rowBytes, 1))) { rs in
        for r in rs {
            let i = Int(index[r])
            if i >= 0 { (out + r * rowBytes).copyMemory(from: input + i * rowBytes, byteCount: rowBytes) }
            else { (out + r * rowBytes).initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes) }
        }
    }
}

/// The adjoint of `gatherRows` when `index` is a permutation (negative entries aside, whose rows
/// are dropped): out[index[r]] = input[r] (overwrites).
public func scatterRows(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, index: UnsafePointer<Int32>,
                        rows: Int, width: Int) {
    Threads.parallelFor(rows, grain: max(1, 8192 / max(width, 1))) { rs in
        for r in rs where index[r] >= 0 { (out + Int(index[r]) * width).update(from: input + r * width, count: width) }
    }
}

/// out[r] = input[r · every] for r < rows, each row `width` floats: one row of every group of
/// `every` (the class token of each frame).
public func gatherRows(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, every: Int, width: Int) {
    for r in 0..<rows { (out + r * width).update(from: input + r * every * width, count: width) }
}

/// The adjoint of the strided `gatherRows`: out[r · every] = input[r]; the other rows of `out` are
/// left as they are.
public func scatterRows(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, every: Int, width: Int) {
    for r in 0..<rows { (out + r * every * width).update(from: input + r * width, count: width) }
}
