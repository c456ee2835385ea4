import Foundation

// The pixel operations RandAugment uses, reproducing the code imgaug 0.4.0 runs for uint8 RGB
// frames of training size (224²): its `pillike` functions (which call Pillow 9's C code:
// ImageEnhance blends, ImageFilter kernels, Image.transform AFFINE with nearest neighbour) and
// its own numpy/OpenCV versions (Autocontrast with cutoff 0, Equalize, Invert, Posterize,
// Solarize, Cutout). Every function maps each frame of a stack the same way.

public enum Pillike {
    /// Applies one 256-entry table per channel to every pixel.
    static func lookup(_ s: FrameStack, _ table: (Int) -> [UInt8]) -> FrameStack {
        var out = s
        let tables = (0..<3).map(table)
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 3) {
                p[i] = tables[0][Int(p[i])]; p[i + 1] = tables[1][Int(p[i + 1])]; p[i + 2] = tables[2][Int(p[i + 2])]
            }
        }
        return out
    }

    /// Calls `body` with each frame's pixels and a fresh output buffer for that frame.
    static func perFrame(_ s: FrameStack, _ body: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void) -> FrameStack {
        var out = FrameStack(count: s.count, height: s.height, width: s.width)
        let fb = s.frameBytes
        s.pixels.withUnsafeBufferPointer { sp in
            out.pixels.withUnsafeMutableBufferPointer { dp in
                for f in 0..<s.count { body(sp.baseAddress! + f * fb, dp.baseAddress! + f * fb) }
            }
        }
        return out
    }

    /// Per-channel histograms of one frame.
    static func histograms(_ p: UnsafePointer<UInt8>, pixels n: Int) -> [[Int]] {
        var h = [[Int]](repeating: [Int](repeating: 0, count: 256), count: 3)
        for i in 0..<n { for c in 0..<3 { h[c][Int(p[i * 3 + c])] += 1 } }
        return h
    }

    /// Applies per-channel tables built from each frame's own histograms.
    static func perFrameLookup(_ s: FrameStack, table: @escaping ([Int]) -> [UInt8]) -> FrameStack {
        let n = s.width * s.height
        return perFrame(s) { src, dst in
            let tables = histograms(src, pixels: n).map(table)
            for i in 0..<n { for c in 0..<3 { dst[i * 3 + c] = tables[c][Int(src[i * 3 + c])] } }
        }
    }

    // MARK: histogram and table operations

    /// `pillike.Autocontrast(cutoff=0)` (imgaug's numpy path): per channel, the lowest and highest
    /// used values are stretched to 0 and 255; the table is `i·scale + offset` in double,
    /// clipped and truncated (as numpy's `astype(uint8)`).
    public static func autocontrast(_ s: FrameStack) -> FrameStack {
        perFrameLookup(s) { h in
            guard let lo = h.firstIndex(where: { $0 != 0 }), let hi = h.lastIndex(where: { $0 != 0 }), hi > lo else {
                return (0..<256).map { UInt8($0) }
            }
            let scale = 255.0 / Double(hi - lo)
            let offset = -Double(lo) * scale
            return (0..<256).map { i in UInt8(min(max(Double(i) * scale + offset, 0), 255)) }
        }
    }

    /// `pillike.Equalize()` as imgaug runs it for images of ≥ 4096 array elements (its OpenCV
    /// path): per channel `step = (pixels − count of value 255) // 255`, table
    /// `(step//2 + pixels below i) // step`, clipped at 255; identity when a channel has ≤ 1 value
    /// or step is 0. (Smaller images go through PIL, whose step leaves out the highest *used*
    /// value instead of 255; the two agree whenever 255 occurs.)
    public static func equalize(_ s: FrameStack) -> FrameStack {
        perFrameLookup(s) { h in
            let identity = (0..<256).map { UInt8($0) }
            if h.filter({ $0 != 0 }).count <= 1 { return identity }
            let step = (h.reduce(0, +) - h[255]) / 255
            if step == 0 { return identity }
            var table = [UInt8](repeating: 0, count: 256)
            var n = step / 2
            for i in 0..<256 {
                table[i] = UInt8(min(n / step, 255))
                n += h[i]
            }
            return table
        }
    }

    /// `arithmetic.Invert(p=1)`: 255 − v.
    public static func invert(_ s: FrameStack) -> FrameStack {
        lookup(s) { _ in (0..<256).map { UInt8(255 - $0) } }
    }

    /// `pillike.Posterize(bits)`: keep the top `bits` bits.
    public static func posterize(_ s: FrameStack, bits: Int) -> FrameStack {
        precondition((1...8).contains(bits), "posterize: \(bits) bits")
        let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        return lookup(s) { _ in (0..<256).map { UInt8($0) & mask } }
    }

    /// `pillike.Solarize(threshold)`: values ≥ threshold are inverted (PIL's `solarize`).
    public static func solarize(_ s: FrameStack, threshold: Int) -> FrameStack {
        lookup(s) { _ in (0..<256).map { $0 >= threshold ? UInt8(255 - $0) : UInt8($0) } }
    }

    // MARK: ImageEnhance (Pillow's Image.blend of a degenerate image and the frame)

    /// `ImagingBlend(degenerate, image, alpha)` for one value: float arithmetic, truncated;
    /// clipped to 0…255 when alpha is outside [0, 1].
    @inline(__always) static func blend(_ d: UInt8, _ v: UInt8, _ alpha: Float) -> UInt8 {
        let t = Float(Int32(d)) + alpha * Float(Int32(v) - Int32(d))
        if t <= 0 { return 0 }
        if t >= 255 { return 255 }
        return UInt8(t)
    }

    static func blendFrames(_ s: FrameStack, _ degenerate: FrameStack, factor: Float) -> FrameStack {
        if factor == 0 { return degenerate }
        if factor == 1 { return s }
        var out = s
        degenerate.pixels.withUnsafeBufferPointer { d in
            out.pixels.withUnsafeMutableBufferPointer { o in
                for i in 0..<o.count { o[i] = blend(d[i], o[i], factor) }
            }
        }
        return out
    }

    /// Pillow's RGB → L: `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
    @inline(__always) static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        let sum: Int = Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000
        return UInt8(sum >> 16)
    }

    /// `ImageEnhance.Color`: blend with the frame's grey version.
    public static func enhanceColor(_ s: FrameStack, factor: Float) -> FrameStack {
        let grey = perFrame(s) { src, dst in
            for i in 0..<(s.width * s.height) {
                let l = luma(src[i * 3], src[i * 3 + 1], src[i * 3 + 2])
                dst[i * 3] = l; dst[i * 3 + 1] = l; dst[i * 3 + 2] = l
            }
        }
        return blendFrames(s, grey, factor: factor)
    }

    /// `ImageEnhance.Contrast`: blend with a constant grey, `int(mean luma + 0.5)` of the frame.
    public static func enhanceContrast(_ s: FrameStack, factor: Float) -> FrameStack {
        let n = s.width * s.height
        let flat = perFrame(s) { src, dst in
            var sum = 0
            for i in 0..<n { sum += Int(luma(src[i * 3], src[i * 3 + 1], src[i * 3 + 2])) }
            let mean = UInt8(Int(Double(sum) / Double(n) + 0.5))
            dst.update(repeating: mean, count: n * 3)
        }
        return blendFrames(s, flat, factor: factor)
    }

    /// `ImageEnhance.Brightness`: blend with black.
    public static func enhanceBrightness(_ s: FrameStack, factor: Float) -> FrameStack {
        blendFrames(s, FrameStack(count: s.count, height: s.height, width: s.width), factor: factor)
    }

    /// `ImageEnhance.Sharpness`: blend with the SMOOTH-filtered frame.
    public static func enhanceSharpness(_ s: FrameStack, factor: Float) -> FrameStack {
        blendFrames(s, filterSmooth(s), factor: factor)
    }

    // MARK: ImageFilter kernels (Pillow's ImagingFilter3x3 / 5x5)

    /// `ImageFilter.SMOOTH`: 3×3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13.
    public static func filterSmooth(_ s: FrameStack) -> FrameStack {
        let taps: [Float] = [1, 1, 1, 1, 5, 1, 1, 1, 1]
        let k = taps.map { $0 / Float(13) }
        return filter(s, size: 3, kernel: k)
    }

    /// `ImageFilter.BLUR`: 5×5 ring of ones / 16.
    public static func filterBlur(_ s: FrameStack) -> FrameStack {
        let ring: [Float] = [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
        let k = ring.map { $0 / Float(16) }
        return filter(s, size: 5, kernel: k)
    }

    /// Pillow's kernel filter: float sums (offset 0.5 for rounding, kernel rows taken from the
    /// row below first, each row summed left to right), clipped and truncated; the outer
    /// `size/2` rows and columns are copied unfiltered; frames smaller than the kernel are copied.
    static func filter(_ s: FrameStack, size: Int, kernel k: [Float]) -> FrameStack {
        let w = s.width, h = s.height, r = size / 2
        if w < size || h < size { return s }
        return perFrame(s) { src, dst in
            dst.update(from: src, count: w * h * 3)
            for y in r..<(h - r) {
                for x in r..<(w - r) {
                    for c in 0..<3 {
                        var ss: Float = 0.5
                        for ky in 0..<size {
                            let row = src + ((y + r - ky) * w) * 3 + c
                            var line = Float(row[(x - r) * 3]) * k[ky * size]
                            for kx in 1..<size { line += Float(row[(x - r + kx) * 3]) * k[ky * size + kx] }
                            ss += line
                        }
                        dst[(y * w + x) * 3 + c] = ss <= 0 ? 0 : ss >= 255 ? 255 : UInt8(ss)
                    }
                }
            }
        }
    }

    // MARK: affine (pillike.warp_affine → Image.transform AFFINE, nearest neighbour)

    /// The six coefficients PIL receives: imgaug 0.4's float32 matrix
    /// `decenter · translate · scale · shear · rotate · center` (shear uses `tanh` of the angle,
    /// rotation is negated), inverted, mapping output to input pixels.
    public static func affineCoefficients(width: Int, height: Int, rotateDegrees: Double = 0,
                                          shearXDegrees: Double = 0, shearYDegrees: Double = 0,
                                          translateX: Double = 0, translateY: Double = 0,
                                          center: (x: Double, y: Double)) -> [Double] {
        let cx = Double(width) * center.x, cy = Double(height) * center.y
        let deg = Double.pi / 180
        let rot = -(rotateDegrees * deg), shx = shearXDegrees * deg, shy = shearYDegrees * deg
        typealias M = [[Float]]
        let centerize: M = [[1, 0, Float(-cx)], [0, 1, Float(-cy)], [0, 0, 1]]
        let rotate: M = [[Float(cos(rot)), Float(sin(rot)), 0], [Float(-sin(rot)), Float(cos(rot)), 0], [0, 0, 1]]
        let shear: M = [[1, Float(tanh(shx)), 0], [Float(tanh(shy)), 1, 0], [0, 0, 1]]
        let translate: M = [[1, 0, Float(translateX)], [0, 1, Float(translateY)], [0, 0, 1]]
        let decenterize: M = [[1, 0, Float(cx)], [0, 1, Float(cy)], [0, 0, 1]]
        func mul(_ a: M, _ b: M) -> M {
            (0..<3).map { i in (0..<3).map { j in a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j] } }
        }
        var m: M = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for other in [centerize, rotate, shear, translate, decenterize] { m = mul(other, m) }  // scale is 1
        let inv = invert3(m)
        return [inv[0][0], inv[0][1], inv[0][2], inv[1][0], inv[1][1], inv[1][2]].map(Double.init)
    }

    /// Inverse of a float32 3×3 matrix by LU with partial pivoting in float32 (what
    /// `np.linalg.inv` does through LAPACK `sgesv`, up to the order of rounding).
    static func invert3(_ a0: [[Float]]) -> [[Float]] {
        var a = a0
        var perm = [0, 1, 2]
        for j in 0..<3 {
            var p = j
            for i in (j + 1)..<3 where abs(a[i][j]) > abs(a[p][j]) { p = i }
            if p != j { a.swapAt(p, j); perm.swapAt(p, j) }
            let r = 1 / a[j][j]
            for i in (j + 1)..<3 {
                a[i][j] *= r
                for k in (j + 1)..<3 { a[i][k] -= a[i][j] * a[j][k] }
            }
        }
        var x = [[Float]](repeating: [0, 0, 0], count: 3)
        for col in 0..<3 {
            var b: [Float] = (0..<3).map { perm[$0] == col ? 1 : 0 }
            for i in 0..<3 { for k in 0..<i { b[i] -= a[i][k] * b[k] } }
            for i in stride(from: 2, through: 0, by: -1) {
                for k in (i + 1)..<3 { b[i] -= a[i][k] * b[k] }
                b[i] /= a[i][i]
            }
            for i in 0..<3 { x[i][col] = b[i] }
        }
        return x
    }

    /// Pillow's `ImagingTransformAffine` with NEAREST and a fill colour: a pure scale/translation
    /// (`a1 = a3 = 0`) goes through `ImagingScaleAffine` (double coordinates, `COORD` = truncation,
    /// −1 below 0); anything else through `affine_fixed` (16.16 fixed point, `>> 16`). Output
    /// pixels whose source falls outside the frame get `fill` in every channel.
    public static func affine(_ s: FrameStack, coefficients a: [Double], fill: UInt8) -> FrameStack {
        let w = s.width, h = s.height
        @inline(__always) func coord(_ v: Double) -> Int { v < 0 ? -1 : Int(v) }
        // Source pixel index per output pixel, or -1 for the fill colour.
        var source = [Int](repeating: -1, count: w * h)
        if a[1] == 0 && a[3] == 0 {
            var xin = [Int](repeating: -1, count: w)
            var xo = a[2] + a[0] * 0.5
            for x in 0..<w {
                let v = coord(xo)
                if v >= 0 && v < w { xin[x] = v }
                xo += a[0]
            }
            var yo = a[5] + a[4] * 0.5
            for y in 0..<h {
                let yi = coord(yo)
                if yi >= 0 && yi < h {
                    for x in 0..<w where xin[x] >= 0 { source[y * w + x] = yi * w + xin[x] }
                }
                yo += a[4]
            }
        } else {
            func fix(_ v: Double) -> Int32 { Int32((v * 65536 + 0.5).rounded(.down)) }
            let a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4])
            var a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5)
            var a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5)
            for y in 0..<h {
                var xx = a2, yy = a5
                for x in 0..<w {
                    let xi = Int(xx >> 16)
                    if xi >= 0 && xi < w {
                        let yi = Int(yy >> 16)
                        if yi >= 0 && yi < h { source[y * w + x] = yi * w + xi }
                    }
                    xx &+= a0; yy &+= a3
                }
                a2 &+= a1; a5 &+= a4
            }
        }
        return perFrame(s) { src, dst in
            for i in 0..<(w * h) {
                let j = source[i]
                if j < 0 {
                    dst[i * 3] = fill; dst[i * 3 + 1] = fill; dst[i * 3 + 2] = fill
                } else {
                    dst[i * 3] = src[j * 3]; dst[i * 3 + 1] = src[j * 3 + 1]; dst[i * 3 + 2] = src[j * 3 + 2]
                }
            }
        }
    }

    // MARK: Cutout and crop

    /// `arithmetic.Cutout(1, size, squared=True, fill_mode='constant', cval)` at relative centre
    /// (`x`, `y`): a square whose side is `size · height` pixels, corners truncated toward zero
    /// (Python `int()`) and clipped to the frame, filled with `fill`.
    public static func cutout(_ s: FrameStack, x: Double, y: Double, size: Double, fill: UInt8) -> FrameStack {
        let w = Double(s.width), h = Double(s.height)
        let y1f = (y - size / 2) * h, y2f = (y + size / 2) * h
        let x1r = (x - size / 2) * w, x2r = (x + size / 2) * w
        let halfH = (y2f - y1f) / 2, xc = x1r + (x2r - x1r) / 2
        func clip(_ v: Double, _ hi: Int) -> Int { min(max(Int(v), 0), hi) }
        let x1 = clip(xc - halfH, s.width), x2 = clip(xc + halfH, s.width)
        let y1 = clip(y1f, s.height), y2 = clip(y2f, s.height)
        guard x2 > x1 && y2 > y1 else { return s }
        var out = s
        out.pixels.withUnsafeMutableBufferPointer { p in
            for f in 0..<s.count {
                for row in y1..<y2 {
                    (p.baseAddress! + f * s.frameBytes + (row * s.width + x1) * 3).update(repeating: fill, count: (x2 - x1) * 3)
                }
            }
        }
        return out
    }

    /// imgaug's `_crop_prevent_zero_size`: gives back rows/columns so at least one remains.
    public static func preventZeroSize(height: Int, width: Int, top: Int, right: Int, bottom: Int, left: Int)
        -> (top: Int, right: Int, bottom: Int, left: Int) {
        var (t, r, b, l) = (top, right, bottom, left)
        let remH = height - (t + b), remW = width - (l + r)
        if remH < 1 {
            let regain = abs(remH) + 1
            var rt = regain / 2, rb = regain / 2
            if rt + rb < regain { rt += 1 }
            if rt > t { rb += rt - t; rt = t } else if rb > b { rt += rb - b; rb = b }
            t -= rt; b -= rb
        }
        if remW < 1 {
            let regain = abs(remW) + 1
            var rr = regain / 2, rl = regain / 2
            if rr + rl < regain { rr += 1 }
            if rr > r { rl += rr - r; rr = r } else if rl > l { rr += rl - l; rl = l }
            r -= rr; l -= rl
        }
        return (max(t, 0), max(r, 0), max(b, 0), max(l, 0))
    }

    /// `KeepSizeByResize(Crop(px=(top, right, bottom, left), keep_size=False), 'linear')`: crop,
    /// then OpenCV INTER_LINEAR back to the original size.
    public static func cropAndResize(_ s: FrameStack, top: Int, right: Int, bottom: Int, left: Int) -> FrameStack {
        let c = preventZeroSize(height: s.height, width: s.width, top: top, right: right, bottom: bottom, left: left)
        if c.top == 0 && c.right == 0 && c.bottom == 0 && c.left == 0 { return s }
        let box = CropBox(x: c.left, y: c.top, w: s.width - c.left - c.right, h: s.height - c.top - c.bottom)
        return resizeBilinear(crop(s, box), width: s.width, height: s.height)
    }
}
