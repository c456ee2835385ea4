import AIMTensor
import Foundation

/// imgaug 0.4.0's `iaa.RandAugment(n, m)` (cval 128) as the official SSv2 pipeline runs it through
/// mmaction2's `Imgaug` wrapper, which calls `to_deterministic()` once per clip: one set of
/// operations and parameters, sampled once, is applied to every frame.
///
/// What one clip gets, in order (imgaug's `collections.py`):
/// 1. `Fliplr(0.5)` — a horizontal flip with probability ½, *even for SSv2*, whose config sets
///    `Flip(flip_ratio=0)` but whose RandAugment flips anyway;
/// 2. `KeepSizeByResize(Crop(percent=U(0, m)/224 per side), 'linear')` — each side cropped by
///    `round(side · U(0, m)/224)` pixels (half to even), then resized back (OpenCV INTER_LINEAR);
/// 3. `SomeOf(n, main, random_order=True)` — `n` *distinct* operations of the 18 below (chosen
///    without replacement), applied in a random order. Magnitudes use `M_MAX = 30`,
///    `level(max) = m · max/30`, and a random sign where imgaug has `RandomSign`:
///    Identity; Autocontrast(cutoff 0); Equalize; Invert; Affine rotate ±level(30)° about the
///    centre; Posterize to `8 − clip(int(level(6)), 0, 6)` bits; Solarize at
///    `clip(256 − int(level(256)), 0, 256)`; EnhanceColor/Contrast/Brightness/Sharpness with factor
///    `clip(1 ± level(0.9), 0.1, 1.9)`; Affine shear x or y ±level(deg(0.3))° about the top-left;
///    Affine translate x or y ±level(0.33) of the side; Cutout of one square, side
///    `clip(level(20/32), 0, 20/32)` of the height, at a uniform centre, filled with 128;
///    FilterBlur; FilterSmooth. Affine fills uncovered pixels with (128, 128, 128).
///    For m = 7: ±7°, 7 bits, threshold 197, factors 1.21 / 0.79, shear ±4.01°, translate ±7.7 %,
///    cutout side 14.6 % of the height, crops of 0…7 px per side at 224².
///
/// Differences from imgaug (see `Pillike` for the pixel-level details):
/// - the random numbers come from the sample's keyed `RandomGenerator`, not imgaug's global
///   numpy-based RNG: the same distributions (uniform ordered choice of n distinct ops, fair
///   signs, uniform crops and cutout centres), not the same draws;
/// - `m` is one integer (imgaug also takes ranges, sampled per image); `n` above 18 means 18;
/// - the affine matrix is built and inverted in float32 by our own code, not numpy/LAPACK's:
///   a coefficient could differ in its last bit and move a pixel that sits exactly on a
///   nearest-neighbour boundary (none did in the tests, which match imgaug byte for byte on
///   9×7, 64×48 and 224×224 frames for every operation at m = 7);
/// - the crop's resize back is `resizeBilinear` (OpenCV INTER_LINEAR), whose last bytes of a row
///   can be ±1 off a given OpenCV build when a row is not a multiple of its SIMD width (224-pixel
///   rows are);
/// - Equalize always follows imgaug's OpenCV path (what it uses for images of ≥ 4096 array
///   elements, i.e. every training frame); for tiny images imgaug calls PIL, which differs when
///   a channel has no pixel of value 255.
public struct RandAugment: Equatable, Sendable {
    public var n: Int
    public var m: Int
    /// imgaug's `_M_MAX`.
    public static let maxMagnitude = 30
    /// imgaug's default `cval` (Affine fill, Cutout fill).
    public static let fill: UInt8 = 128

    public init(n: Int = 4, m: Int = 7) {
        precondition(n >= 0 && m >= 0, "RandAugment: n and m must be ≥ 0 (got n=\(n), m=\(m))")
        self.n = n; self.m = m
    }

    /// One operation of imgaug's main list with its sampled parameters.
    public enum Op: Equatable, Sendable {
        case identity, autocontrast, equalize, invert
        case rotate(degrees: Double)
        case posterize(bits: Int)
        case solarize(threshold: Int)
        case color(factor: Float), contrast(factor: Float), brightness(factor: Float), sharpness(factor: Float)
        case shearX(degrees: Double), shearY(degrees: Double)
        /// Fraction of the frame width (x) or height (y).
        case translateX(fraction: Double), translateY(fraction: Double)
        /// Relative centre and side (fraction of the height).
        case cutout(x: Double, y: Double, size: Double)
        case blur, smooth
    }

    /// Number of operations in imgaug's main list.
    public static let operationCount = 18

    /// Everything sampled for one clip.
    public struct Plan: Equatable, Sendable {
        public var flip: Bool
        /// Crop of each side (top, right, bottom, left) as a fraction of that side: U(0, m)/224.
        public var crop: [Double]
        public var ops: [Op]
        public init(flip: Bool, crop: [Double], ops: [Op]) { self.flip = flip; self.crop = crop; self.ops = ops }
    }

    /// `m · max/30`, computed as imgaug does (`Multiply(m, max / M_MAX)`).
    func level(_ maxValue: Double) -> Double { Double(m) * (maxValue / Double(Self.maxMagnitude)) }

    func enhanceFactor(_ sign: Double) -> Float { Float(min(max(1.0 + sign * level(0.9), 0.1), 1.9)) }

    /// Operation `index` (imgaug's list order) with its parameters drawn from `rng`.
    public func operation(_ index: Int, rng: inout RandomGenerator) -> Op {
        func sign() -> Double { rng.uniformDouble() < 0.5 ? 1 : -1 }
        switch index {
        case 0: return .identity
        case 1: return .autocontrast
        case 2: return .equalize
        case 3: return .invert
        case 4: return .rotate(degrees: sign() * level(30))
        case 5: return .posterize(bits: 8 - min(max(Int(level(6)), 0), 6))
        case 6: return .solarize(threshold: min(max(256 - Int(level(256)), 0), 256))
        case 7: return .color(factor: enhanceFactor(sign()))
        case 8: return .contrast(factor: enhanceFactor(sign()))
        case 9: return .brightness(factor: enhanceFactor(sign()))
        case 10: return .sharpness(factor: enhanceFactor(sign()))
        case 11: return .shearX(degrees: sign() * level(0.3 * (180 / Double.pi)))
        case 12: return .shearY(degrees: sign() * level(0.3 * (180 / Double.pi)))
        case 13: return .translateX(fraction: sign() * level(0.33))
        case 14: return .translateY(fraction: sign() * level(0.33))
        case 15:
            let x = rng.uniformDouble(), y = rng.uniformDouble()
            return .cutout(x: x, y: y, size: min(max(level(20.0 / 32.0), 0), 20.0 / 32.0))
        case 16: return .blur
        case 17: return .smooth
        default: preconditionFailure("RandAugment: no operation \(index)")
        }
    }

    /// Samples one clip's flip, crop and operations (in this order) from `rng`.
    public func plan(rng: inout RandomGenerator) -> Plan {
        let flip = rng.uniformDouble() < 0.5
        let crop = (0..<4).map { _ in Double(m) * rng.uniformDouble() / 224 }
        var order = Array(0..<Self.operationCount)
        var ops: [Op] = []
        for i in 0..<min(n, Self.operationCount) {
            // Partial Fisher–Yates: an ordered choice of distinct operations, uniform like
            // SomeOf's random permutation + random active set.
            order.swapAt(i, i + rng.int(below: Self.operationCount - i))
            ops.append(operation(order[i], rng: &rng))
        }
        return Plan(flip: flip, crop: crop, ops: ops)
    }

    /// Pixels cropped from (top, right, bottom, left) of a `width`×`height` frame: imgaug's
    /// `round(side · fraction)`, half to even.
    public static func cropPixels(_ crop: [Double], width: Int, height: Int) -> (top: Int, right: Int, bottom: Int, left: Int) {
        func px(_ side: Int, _ f: Double) -> Int { Int((Double(side) * f).rounded(.toNearestOrEven)) }
        return (px(height, crop[0]), px(width, crop[1]), px(height, crop[2]), px(width, crop[3]))
    }

    /// Applies one operation to every frame.
    public static func apply(_ op: Op, to s: FrameStack) -> FrameStack {
        let w = s.width, h = s.height
        func affine(rotate: Double = 0, shearX: Double = 0, shearY: Double = 0, tx: Double = 0, ty: Double = 0,
                    center: (x: Double, y: Double) = (0, 0)) -> FrameStack {
            let a = Pillike.affineCoefficients(width: w, height: h, rotateDegrees: rotate, shearXDegrees: shearX,
                                               shearYDegrees: shearY, translateX: tx, translateY: ty, center: center)
            return Pillike.affine(s, coefficients: a, fill: fill)
        }
        switch op {
        case .identity: return s
        case .autocontrast: return Pillike.autocontrast(s)
        case .equalize: return Pillike.equalize(s)
        case .invert: return Pillike.invert(s)
        case .rotate(let d): return affine(rotate: d, center: (0.5, 0.5))
        case .posterize(let b): return Pillike.posterize(s, bits: b)
        case .solarize(let t): return Pillike.solarize(s, threshold: t)
        case .color(let f): return Pillike.enhanceColor(s, factor: f)
        case .contrast(let f): return Pillike.enhanceContrast(s, factor: f)
        case .brightness(let f): return Pillike.enhanceBrightness(s, factor: f)
        case .sharpness(let f): return Pillike.enhanceSharpness(s, factor: f)
        case .shearX(let d): return affine(shearX: d)
        case .shearY(let d): return affine(shearY: d)
        // imgaug: translate_x_px = fraction · width (float), y likewise.
        case .translateX(let f): return affine(tx: f * Double(w))
        case .translateY(let f): return affine(ty: f * Double(h))
        case .cutout(let x, let y, let size): return Pillike.cutout(s, x: x, y: y, size: size, fill: fill)
        case .blur: return Pillike.filterBlur(s)
        case .smooth: return Pillike.filterSmooth(s)
        }
    }

    /// Applies a clip's plan to all its frames: flip, crop-and-resize, then the operations.
    public func apply(_ plan: Plan, to frames: FrameStack) -> FrameStack {
        var s = plan.flip ? flipHorizontal(frames) : frames
        let c = Self.cropPixels(plan.crop, width: s.width, height: s.height)
        s = Pillike.cropAndResize(s, top: c.top, right: c.right, bottom: c.bottom, left: c.left)
        for op in plan.ops { s = Self.apply(op, to: s) }
        return s
    }
}
