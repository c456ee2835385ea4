import AIMTensor
import Foundation

// mmaction2 0.x spatial transforms (augmentations.py in the AIM repository). Every frame of a
// clip gets the same crop and flip; random draws come from the sample's generator.

/// A crop box in pixels: columns `x..<x+w`, rows `y..<y+h`.
public struct CropBox: Equatable, Sendable {
    public var x, y, w, h: Int
    public init(x: Int, y: Int, w: Int, h: Int) { self.x = x; self.y = y; self.w = w; self.h = h }
}

public func crop(_ s: FrameStack, _ b: CropBox) -> FrameStack {
    precondition(b.x >= 0 && b.y >= 0 && b.x + b.w <= s.width && b.y + b.h <= s.height && b.w > 0 && b.h > 0,
                 "crop \(b) outside \(s.width)x\(s.height)")
    var out = FrameStack(count: s.count, height: b.h, width: b.w)
    let rowBytes = b.w * 3, dfb = b.w * b.h * 3
    s.pixels.withUnsafeBufferPointer { sp in
        out.pixels.withUnsafeMutableBufferPointer { dp in
            for f in 0..<s.count {
                for r in 0..<b.h {
                    let src = sp.baseAddress! + f * s.frameBytes + ((b.y + r) * s.width + b.x) * 3
                    (dp.baseAddress! + f * dfb + r * rowBytes).update(from: src, count: rowBytes)
                }
            }
        }
    }
    return out
}

/// Horizontal flip (`mmcv.imflip_`, direction 'horizontal').
public func flipHorizontal(_ s: FrameStack) -> FrameStack {
    var out = s
    let w = s.width
    out.pixels.withUnsafeMutableBufferPointer { p in
        for row in 0..<(s.count * s.height) {
            let base = p.baseAddress! + row * w * 3
            var a = 0, b = w - 1
            while a < b {
                for c in 0..<3 { let t = base[a * 3 + c]; base[a * 3 + c] = base[b * 3 + c]; base[b * 3 + c] = t }
                a += 1; b -= 1
            }
        }
    }
    return out
}

/// `RandomResizedCrop.get_crop_bbox`: 10 candidates (log-uniform aspect ratio, uniform area
/// fraction, sides rounded half to even), the first that fits wins, at a uniform offset
/// (inclusive ends); else the centred square of the short side.
public func randomResizedCropBox(width imgW: Int, height imgH: Int,
                                 areaRange: (Double, Double) = (0.08, 1.0),
                                 aspectRange: (Double, Double) = (3.0 / 4.0, 4.0 / 3.0),
                                 attempts: Int = 10, rng: inout RandomGenerator) -> CropBox {
    let area = Double(imgH * imgW)
    let lo = log(aspectRange.0), hi = log(aspectRange.1)
    let ratios = (0..<attempts).map { _ in exp(lo + (hi - lo) * rng.uniformDouble()) }
    let areas = (0..<attempts).map { _ in (areaRange.0 + (areaRange.1 - areaRange.0) * rng.uniformDouble()) * area }
    for i in 0..<attempts {
        let cw = Int((areas[i] * ratios[i]).squareRoot().rounded(.toNearestOrEven))
        let ch = Int((areas[i] / ratios[i]).squareRoot().rounded(.toNearestOrEven))
        if ch <= imgH && cw <= imgW && cw > 0 && ch > 0 {
            let x = rng.int(below: imgW - cw + 1)
            let y = rng.int(below: imgH - ch + 1)
            return CropBox(x: x, y: y, w: cw, h: ch)
        }
    }
    let s = min(imgH, imgW)
    return CropBox(x: (imgW - s) / 2, y: (imgH - s) / 2, w: s, h: s)
}

/// `CenterCrop(size)`: offsets `(img - crop) // 2`.
public func centerCropBox(width w: Int, height h: Int, size: Int) -> CropBox {
    CropBox(x: floorDiv(w - size, 2), y: floorDiv(h - size, 2), w: size, h: size)
}

/// `ThreeCrop(size)`: left/right/middle (or top/bottom/middle) along the long side, in that order.
/// Needs one side equal to `size` (a `Resize(-1, size)` before it).
public func threeCropBoxes(width w: Int, height h: Int, size: Int) -> [CropBox] {
    precondition(h == size || w == size, "ThreeCrop(\(size)) needs a side of \(size), frame is \(w)x\(h)")
    if h == size {
        let step = (w - size) / 2
        return [0, 2 * step, step].map { CropBox(x: $0, y: 0, w: size, h: size) }
    }
    let step = (h - size) / 2
    return [0, 2 * step, step].map { CropBox(x: 0, y: $0, w: size, h: size) }
}

/// mmaction2's `ColorJitter()` with its defaults as AIM's ViT-L K400 config uses it
/// (`color_space_aug=False`): AlexNet-style PCA lighting noise, one RGB offset per clip.
public struct PCALighting: Equatable, Sendable {
    public var alphaStd: Double = 0.1
    public static let eigVal: [Float] = [55.46, 4.794, 1.148]
    public static let eigVec: [[Float]] = [[-0.5675, 0.7192, 0.4009],
                                           [-0.5808, -0.0045, -0.8140],
                                           [-0.5836, -0.6948, 0.4203]]
    public init(alphaStd: Double = 0.1) { self.alphaStd = alphaStd }

    /// The offset added to every pixel: `eig_vec · (alpha * eig_val)` with alpha ~ N(0, std).
    public func offset(rng: inout RandomGenerator) -> [Float] {
        Self.offset(alpha: (0..<3).map { _ in rng.normal() * alphaStd })
    }

    /// `np.array(np.dot(eig_vec * alpha, eig_val), dtype=float32)`: float32 tables, float64
    /// alpha, so the products and sums are float64, rounded once to float32.
    public static func offset(alpha: [Double]) -> [Float] {
        (0..<3).map { c in
            Float((0..<3).reduce(0.0) { $0 + Double(eigVec[c][$1]) * alpha[$1] * Double(eigVal[$1]) })
        }
    }
}

/// timm's `RandomErasing(probability=p)` as AIM's SSv2 config applies it after Normalize:
/// mode 'const' (zeros in normalized space), one box, area 2%–1/3, aspect 0.3–1/0.3, 10 tries.
/// The official wrapper resets the RNG for each frame, so all frames share the box.
public func randomErasingBox(width w: Int, height h: Int, probability: Double,
                             rng: inout RandomGenerator) -> CropBox? {
    if rng.uniformDouble() > probability { return nil }
    let area = Double(w * h)
    let lo = log(0.3), hi = log(1 / 0.3)
    for _ in 0..<10 {
        let target = (0.02 + (1.0 / 3.0 - 0.02) * rng.uniformDouble()) * area
        let ar = exp(lo + (hi - lo) * rng.uniformDouble())
        let eh = Int((target * ar).squareRoot().rounded(.toNearestOrEven))
        let ew = Int((target / ar).squareRoot().rounded(.toNearestOrEven))
        if ew < w && eh < h {
            let top = rng.int(below: h - eh + 1)
            let left = rng.int(below: w - ew + 1)
            return CropBox(x: left, y: top, w: ew, h: eh)
        }
    }
    return nil
}
