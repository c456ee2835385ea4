/// Bilinear resize of uint8 RGB frames reproducing OpenCV's `cv2.resize(..., INTER_LINEAR)`,
/// which `mmcv.imresize` calls for mmaction2's `Resize`:
/// - source coordinate `(d + 0.5) * scale - 0.5` computed in double, stored as float, clamped
///   at the borders;
/// - weights in 11-bit fixed point (`saturate_cast<short>(w * 2048)`, round half to even);
/// - the horizontal pass in exact integers, the vertical pass as OpenCV's 128-bit SIMD path
///   computes it, `(((S0>>4)*b0 >> 16) + ((S1>>4)*b1 >> 16) + 2) >> 2`, with the scalar
///   `(S0*b0 + S1*b1 + 2^21) >> 22` for the last elements of a row;
/// - an exact 2x downscale in both directions switches to INTER_AREA (2x2 mean), as OpenCV does.
/// Differences to a given OpenCV build, if any, are ±1 on rare pixels (SIMD width of the build).
public func resizeBilinear(_ src: FrameStack, width dw: Int, height dh: Int) -> FrameStack {
    precondition(dw > 0 && dh > 0, "resize to \(dw)x\(dh)")
    let sw = src.width, sh = src.height
    if sw == dw && sh == dh { return src }
    if sw == dw * 2 && sh == dh * 2 { return halve(src) }
    // OpenCV stores inv_scale = dst/src and uses scale = 1/inv_scale.
    let scaleX = 1.0 / (Double(dw) / Double(sw)), scaleY = 1.0 / (Double(dh) / Double(sh))
    var xofs = [Int](repeating: 0, count: dw)
    var ax0 = [Int32](repeating: 0, count: dw), ax1 = [Int32](repeating: 0, count: dw)
    for dx in 0..<dw {
        var fx = Float((Double(dx) + 0.5) * scaleX - 0.5)
        var sx = Int(fx.rounded(.down))
        fx -= Float(sx)
        if sx < 0 { fx = 0; sx = 0 }
        if sx >= sw - 1 { fx = 0; sx = sw - 1 }
        xofs[dx] = sx
        ax0[dx] = Int32(((1 - fx) * 2048).rounded(.toNearestOrEven))
        ax1[dx] = Int32((fx * 2048).rounded(.toNearestOrEven))
    }
    var y0 = [Int](repeating: 0, count: dh), y1 = [Int](repeating: 0, count: dh)
    var by0 = [Int32](repeating: 0, count: dh), by1 = [Int32](repeating: 0, count: dh)
    for dy in 0..<dh {
        var fy = Float((Double(dy) + 0.5) * scaleY - 0.5)
        let sy = Int(fy.rounded(.down))
        fy -= Float(sy)
        // OpenCV keeps the weights and clamps the row indices.
        y0[dy] = min(max(sy, 0), sh - 1); y1[dy] = min(max(sy + 1, 0), sh - 1)
        by0[dy] = Int32(((1 - fy) * 2048).rounded(.toNearestOrEven))
        by1[dy] = Int32((fy * 2048).rounded(.toNearestOrEven))
    }
    let rowLen = dw * 3
    // OpenCV's SIMD loops: 16 bytes at a time, then 8 while x < width - 8, then scalar.
    var simdEnd = 0
    while simdEnd <= rowLen - 16 { simdEnd += 16 }
    while simdEnd < rowLen - 8 { simdEnd += 8 }
    var out = FrameStack(count: src.count, height: dh, width: dw)
    let sfb = src.frameBytes, dfb = out.frameBytes
    var rowA = [Int32](repeating: 0, count: rowLen), rowB = [Int32](repeating: 0, count: rowLen)
    src.pixels.withUnsafeBufferPointer { sp in
        out.pixels.withUnsafeMutableBufferPointer { dp in
            rowA.withUnsafeMutableBufferPointer { ra in
                rowB.withUnsafeMutableBufferPointer { rb in
                    func hpass(_ s: UnsafePointer<UInt8>, _ d: UnsafeMutablePointer<Int32>) {
                        for dx in 0..<dw {
                            let p = s + xofs[dx] * 3
                            let q = xofs[dx] + 1 < sw ? p + 3 : p
                            let a0 = ax0[dx], a1 = ax1[dx]
                            d[dx * 3] = Int32(p[0]) * a0 + Int32(q[0]) * a1
                            d[dx * 3 + 1] = Int32(p[1]) * a0 + Int32(q[1]) * a1
                            d[dx * 3 + 2] = Int32(p[2]) * a0 + Int32(q[2]) * a1
                        }
                    }
                    for f in 0..<src.count {
                        let sBase = sp.baseAddress! + f * sfb
                        let dBase = dp.baseAddress! + f * dfb
                        var haveA = -1, haveB = -1
                        for dy in 0..<dh {
                            let r0 = y0[dy], r1 = y1[dy]
                            // Keep the two horizontally resized rows; consecutive output rows share them.
                            if haveA != r0 {
                                if haveB == r0 {
                                    swapRows(ra, rb); haveB = haveA; haveA = r0
                                } else {
                                    hpass(sBase + r0 * sw * 3, ra.baseAddress!); haveA = r0
                                }
                            }
                            if haveB != r1 { hpass(sBase + r1 * sw * 3, rb.baseAddress!); haveB = r1 }
                            let b0 = by0[dy], b1 = by1[dy]
                            let d = dBase + dy * rowLen
                            for x in 0..<simdEnd {
                                let v0 = (Int32(Int16(clamping: ra[x] >> 4)) * b0) >> 16  // Swift: >> binds tighter than *
                                let v1 = (Int32(Int16(clamping: rb[x] >> 4)) * b1) >> 16
                                d[x] = UInt8(clamping: (v0 + v1 + 2) >> 2)
                            }
                            for x in simdEnd..<rowLen {
                                d[x] = UInt8(clamping: (ra[x] * b0 + rb[x] * b1 + (1 << 21)) >> 22)
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

private func swapRows(_ a: UnsafeMutableBufferPointer<Int32>, _ b: UnsafeMutableBufferPointer<Int32>) {
    for i in 0..<a.count { let t = a[i]; a[i] = b[i]; b[i] = t }
}

/// OpenCV's INTER_AREA for an exact 2x downscale: `(a + b + c + d + 2) >> 2`.
private func halve(_ src: FrameStack) -> FrameStack {
    let dw = src.width / 2, dh = src.height / 2
    var out = FrameStack(count: src.count, height: dh, width: dw)
    let sw3 = src.width * 3, dfb = dw * dh * 3
    src.pixels.withUnsafeBufferPointer { sp in
        out.pixels.withUnsafeMutableBufferPointer { dp in
            for f in 0..<src.count {
                let s = sp.baseAddress! + f * src.frameBytes
                let d = dp.baseAddress! + f * dfb
                for y in 0..<dh {
                    let r0 = s + 2 * y * sw3, r1 = r0 + sw3
                    for x in 0..<dw {
                        for c in 0..<3 {
                            let i = 6 * x + c
                            let sum = Int(r0[i]) + Int(r0[i + 3]) + Int(r1[i]) + Int(r1[i + 3])
                            d[(y * dw + x) * 3 + c] = UInt8((sum + 2) >> 2)
                        }
                    }
                }
            }
        }
    }
    return out
}

/// `mmcv.rescale_size` for `Resize(scale=(-1, short))`: the short side becomes `short`,
/// the other `int(side * short / min(h, w) + 0.5)`. Returns (width, height).
public func shortSideSize(width w: Int, height h: Int, shortSide s: Int) -> (width: Int, height: Int) {
    let scale = Double(s) / Double(min(w, h))
    return (Int(Double(w) * scale + 0.5), Int(Double(h) * scale + 0.5))
}
