import AIMConfig
import AIMData
import AIMTensor
import Foundation
import XCTest

final class RandAugmentTests: XCTestCase {
    static let ra = RandAugment(n: 4, m: 7)
    static let shear = 7 * (0.3 * (180 / Double.pi) / 30)

    /// The operation a reference name stands for (the script's list), applied to `s`.
    func apply(_ name: String, _ s: FrameStack) -> FrameStack {
        let f = Float(1 + 7 * (0.9 / 30)), g = Float(1 - 7 * (0.9 / 30))
        let cut = 7 * ((20.0 / 32.0) / 30)
        let ops: [String: RandAugment.Op] = [
            "autocontrast": .autocontrast, "equalize": .equalize, "invert": .invert,
            "rotate+": .rotate(degrees: 7), "rotate-": .rotate(degrees: -7),
            "posterize": .posterize(bits: 7), "solarize": .solarize(threshold: 197),
            "color+": .color(factor: f), "color-": .color(factor: g),
            "contrast+": .contrast(factor: f), "contrast-": .contrast(factor: g),
            "brightness+": .brightness(factor: f), "brightness-": .brightness(factor: g),
            "sharpness+": .sharpness(factor: f), "sharpness-": .sharpness(factor: g),
            "shearX+": .shearX(degrees: Self.shear), "shearX-": .shearX(degrees: -Self.shear),
            "shearY+": .shearY(degrees: Self.shear), "shearY-": .shearY(degrees: -Self.shear),
            "translateX+": .translateX(fraction: 7 * (0.33 / 30)), "translateX-": .translateX(fraction: -7 * (0.33 / 30)),
            "translateY+": .translateY(fraction: 7 * (0.33 / 30)), "translateY-": .translateY(fraction: -7 * (0.33 / 30)),
            "cutoutA": .cutout(x: 0.3, y: 0.8, size: cut), "cutoutB": .cutout(x: 0.95, y: 0.05, size: cut),
            "blur": .blur, "smooth": .smooth,
        ]
        if let op = ops[name] { return RandAugment.apply(op, to: s) }
        switch name {
        case "fliplr": return flipHorizontal(s)
        case "crop3057": return Pillike.cropAndResize(s, top: 3, right: 0, bottom: 5, left: 7)
        case "crop1212": return Pillike.cropAndResize(s, top: 1, right: 2, bottom: 1, left: 2)
        default: fatalError("no operation named \(name)")
        }
    }

    func testEveryOperationMatchesImgaugPixelForPixelOnA9x7Image() {
        for (name, hex) in smallReference {
            var input = referenceImage(width: 9, height: 7, full: false)
            if name == "equalize" { input.pixels[0] = 255; input.pixels[1] = 255; input.pixels[2] = 255 }
            let expected: [UInt8] = stride(from: 0, to: hex.count, by: 2).map {
                let i = hex.index(hex.startIndex, offsetBy: $0)
                return UInt8(hex[i..<hex.index(i, offsetBy: 2)], radix: 16)!
            }
            let got = apply(name, input).pixels
            let wrong = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
            XCTAssertEqual(wrong.count, 0, "\(name): \(wrong.count) of \(expected.count) values differ, first at byte \(wrong.first?.offset ?? -1): \(wrong.first.map { "\($0.element.0) vs \($0.element.1)" } ?? "")")
        }
    }

    func testEveryOperationMatchesImgaugOn64x48And224x224Images() {
        for (refs, w, h) in [(largeReference, 64, 48), (trainReference, 224, 224)] {
            let input = referenceImage(width: w, height: h, full: true)
            for (name, hash) in refs {
                XCTAssertEqual(fnv1a(apply(name, input).pixels), hash, "\(name) at \(w)x\(h) differs from imgaug")
            }
        }
    }

    func testMagnitudesAndSamplingForN4M7() {
        let ra = Self.ra
        var seen = Set<String>()
        var flips = 0
        for k in 0..<400 {
            var g = RandomGenerator(keys: 5, UInt64(k))
            let p = ra.plan(rng: &g)
            if p.flip { flips += 1 }
            XCTAssertEqual(p.crop.count, 4)
            XCTAssertTrue(p.crop.allSatisfy { $0 >= 0 && $0 < 7.0 / 224 })
            XCTAssertEqual(p.ops.count, 4)
            var kinds = Set<String>()
            for op in p.ops {
                let kind: String
                switch op {
                case .rotate(let d): XCTAssertEqual(abs(d), 7); kind = "rotate"
                case .posterize(let b): XCTAssertEqual(b, 7); kind = "posterize"
                case .solarize(let t): XCTAssertEqual(t, 197); kind = "solarize"
                case .color(let f), .contrast(let f), .brightness(let f), .sharpness(let f):
                    XCTAssertTrue(f == Float(1.21) || f == Float(0.79), "factor \(f)"); kind = "\(op)".components(separatedBy: "(")[0]
                case .shearX(let d), .shearY(let d):
                    XCTAssertEqual(abs(d), 4.0107045659157625, accuracy: 1e-12); kind = "\(op)".components(separatedBy: "(")[0]
                case .translateX(let f), .translateY(let f):
                    XCTAssertEqual(abs(f), 0.077, accuracy: 1e-12); kind = "\(op)".components(separatedBy: "(")[0]
                case .cutout(let x, let y, let size):
                    XCTAssertTrue((0..<1).contains(x) && (0..<1).contains(y))
                    XCTAssertEqual(size, 0.14583333333333334, accuracy: 1e-15); kind = "cutout"
                default: kind = "\(op)"
                }
                kinds.insert(kind)
                seen.insert(kind)
            }
            XCTAssertEqual(kinds.count, 4, "operations are chosen without replacement: \(p.ops)")
        }
        XCTAssertEqual(seen.count, RandAugment.operationCount, "not every operation was drawn: \(seen.sorted())")
        XCTAssertTrue((150...250).contains(flips), "RandAugment's Fliplr(0.5) flipped \(flips) of 400")
        // Crop pixels: round half to even of side · fraction; 224 · 7/224 can reach 7.
        XCTAssertTrue(RandAugment.cropPixels([0.5 / 224, 1.5 / 224, 6.9 / 224, 0], width: 224, height: 224) == (0, 2, 7, 0))
    }

    /// A clip of 3 different frames (statistics such as the autocontrast range differ per frame).
    func clip() -> FrameStack {
        .concatenating([referenceImage(width: 64, height: 48, full: true), referenceImage(width: 64, height: 48, full: false),
                        flipHorizontal(referenceImage(width: 64, height: 48, full: true))])
    }

    func testOnePlanForEveryFrameOfAClip() {
        let c = clip()
        for k in 0..<30 {
            var g = RandomGenerator(keys: 11, UInt64(k))
            let plan = Self.ra.plan(rng: &g)
            let together = Self.ra.apply(plan, to: c)
            let alone = FrameStack.concatenating((0..<3).map { Self.ra.apply(plan, to: c.selecting([$0])) })
            XCTAssertEqual(together, alone, "plan \(plan)")
        }
        // Same frames in, same frames out: nothing is re-sampled between frames.
        let same = FrameStack.concatenating([c.selecting([0]), c.selecting([0])])
        var g = RandomGenerator(keys: 12)
        let out = Self.ra.apply(Self.ra.plan(rng: &g), to: same)
        XCTAssertEqual(out.selecting([0]), out.selecting([1]))
    }

    func testPlansComeOnlyFromTheKeyedGenerator() {
        var a = RandomGenerator(keys: 3, 4, 5), b = RandomGenerator(keys: 3, 4, 5), c = RandomGenerator(keys: 3, 4, 6)
        let pa = Self.ra.plan(rng: &a), pb = Self.ra.plan(rng: &b), pc = Self.ra.plan(rng: &c)
        XCTAssertEqual(pa, pb)
        XCTAssertEqual(a, b, "the generator advanced differently")
        XCTAssertNotEqual(pa, pc)
        XCTAssertEqual(Self.ra.apply(pa, to: clip()), Self.ra.apply(pb, to: clip()))
    }

    func testSSv2ConfigTrainsWithRandAugmentEndToEnd() throws {
        Threads.set(1)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cfg = try Config.load(path: root.appendingPathComponent("configs/ssv2/aim_vitb16_clip.yaml").path)
        var pipe = try ClipPipelineConfig(config: cfg, split: .train)
        XCTAssertEqual(pipe.randAugment, RandAugment(n: 4, m: 7))
        XCTAssertEqual(pipe.flipRatio, 0)
        XCTAssertEqual(pipe.randomErasing, 0.25)
        // A small synthetic video through the official SSv2 train pipeline (smaller sizes).
        let dir = scratchDir("randaugment")
        let path = dir + "/clip.mp4"
        let w = try VideoWriter(path: path, encoder: "mpeg4", width: 64, height: 48, gop: 6, bFrames: 0)
        for f in 0..<20 {
            var px = referenceImage(width: 64, height: 48, full: f % 2 == 0).pixels
            for i in 0..<(4 * f) { px[i] = 250 }
            try w.append(rgb: px)
        }
        try w.finish()
        pipe.shortSide = 48; pipe.cropSize = 40
        let with = ClipPipeline(pipe)
        var plain = pipe; plain.randAugment = nil
        var g1 = RandomGenerator(keys: 1, 2, 3), g2 = RandomGenerator(keys: 1, 2, 3), g3 = RandomGenerator(keys: 1, 2, 3)
        let a = try with.load(path: path, rng: &g1), b = try with.load(path: path, rng: &g2)
        let c = try ClipPipeline(plain).load(path: path, rng: &g3)
        XCTAssertEqual(a.shape, [1, 3, 8, 40, 40])
        XCTAssertEqual(a.array, b.array, "same keys, same clip")
        XCTAssertNotEqual(a.array, c.array, "RandAugment changed nothing")
        XCTAssertTrue(a.array.allSatisfy { $0.isFinite })
    }
}
