import AIMData
import AIMTensor
import XCTest

final class TransformTests: XCTestCase {
    func testBilinearMatchesOpenCVOnAHandCase() {
        // cv2.resize(np.array([[0, 100]]), (4, 1)) = [0, 25, 75, 100] (per channel).
        let src = FrameStack(count: 1, height: 1, width: 2, pixels: [0, 0, 0, 100, 100, 100])
        let out = resizeBilinear(src, width: 4, height: 1)
        XCTAssertEqual(out.pixels.enumerated().filter { $0.offset % 3 == 0 }.map { Int($0.element) }, [0, 25, 75, 100])
    }

    func testBilinearKeepsConstantsAndHalvesByArea() {
        let c = FrameStack(count: 2, height: 7, width: 9, pixels: [UInt8](repeating: 77, count: 2 * 7 * 9 * 3))
        XCTAssertTrue(resizeBilinear(c, width: 13, height: 5).pixels.allSatisfy { $0 == 77 })
        let p = FrameStack(count: 1, height: 2, width: 2, pixels: [10, 10, 10, 20, 20, 20, 30, 30, 30, 41, 41, 41])
        XCTAssertEqual(resizeBilinear(p, width: 1, height: 1).pixels, [25, 25, 25])  // (101 + 2) >> 2
    }

    func testShortSideSizeIsMMCVRescale() {
        XCTAssertEqual(shortSideSize(width: 340, height: 256, shortSide: 224).width, 298)  // int(340*224/256 + 0.5)
        XCTAssertEqual(shortSideSize(width: 320, height: 240, shortSide: 256).width, 341)
        XCTAssertEqual(shortSideSize(width: 240, height: 320, shortSide: 256).height, 341)
    }

    func testCropsAndFlip() {
        XCTAssertEqual(threeCropBoxes(width: 298, height: 224, size: 224).map(\.x), [0, 74, 37])
        XCTAssertEqual(threeCropBoxes(width: 224, height: 300, size: 224).map(\.y), [0, 76, 38])
        XCTAssertEqual(centerCropBox(width: 341, height: 256, size: 224), CropBox(x: 58, y: 16, w: 224, h: 224))
        var px = [UInt8](); for i in 0..<12 { px += [UInt8(i), 0, 0] }
        let s = FrameStack(count: 1, height: 3, width: 4, pixels: px)
        XCTAssertEqual(flipHorizontal(s).pixel(0, 1, 0).0, 7)
        XCTAssertEqual(crop(s, CropBox(x: 1, y: 1, w: 2, h: 2)).pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element), [5, 6, 9, 10])
    }

    func testRandomResizedCrop() {
        var areas: [Double] = []
        for k in 0..<500 {
            var g = RandomGenerator(keys: UInt64(k))
            let b = randomResizedCropBox(width: 341, height: 256, rng: &g)
            XCTAssert(b.x >= 0 && b.y >= 0 && b.x + b.w <= 341 && b.y + b.h <= 256)
            areas.append(Double(b.w * b.h) / Double(341 * 256))
        }
        XCTAssert(areas.min()! < 0.15 && areas.max()! > 0.8, "area fractions \(areas.min()!)…\(areas.max()!)")
        // No candidate fits a 10-row image: the centred square of the short side.
        var g = RandomGenerator(keys: 3)
        XCTAssertEqual(randomResizedCropBox(width: 1000, height: 10, rng: &g), CropBox(x: 495, y: 0, w: 10, h: 10))
    }

    func testRandomErasingBoxes() {
        var fired = 0
        for k in 0..<400 {
            var g = RandomGenerator(keys: UInt64(k))
            if let b = randomErasingBox(width: 224, height: 224, probability: 0.25, rng: &g) {
                fired += 1
                XCTAssert(b.w < 224 && b.h < 224 && b.x + b.w <= 224 && b.y + b.h <= 224)
            }
        }
        XCTAssert(fired > 60 && fired < 140, "erasing fired \(fired)/400 at p=0.25")
    }

    func testTestPipelineViewsAndNormalisation() throws {
        let dir = scratchDir("pipe")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/v.mkv"
        try makeGrayVideo(p, encoder: "ffv1", frames: 30, width: 40, height: 32)
        let cfg = ClipPipelineConfig(sampler: SampleFrames(clipLen: 2, frameInterval: 3, numClips: 3, testMode: true),
                                     shortSide: 16, cropSize: 16, testCrop: .three)
        var g = RandomGenerator(keys: 0)
        let t = try ClipPipeline(cfg).load(path: p, rng: &g)
        XCTAssertEqual(t.shape, [9, 3, 2, 16, 16])
        // Test offsets for 30 frames, clip 2x3, 3 clips: int(i*25/3 + 25/6) = 4, 12, 20.
        let expectedFrames = [4, 7, 12, 15, 20, 23]
        let hw = 256
        for crop in 0..<3 {
            for clip in 0..<3 {
                for ti in 0..<2 {
                    let v = t.data[((crop * 3 + clip) * 3 + 0) * 2 * hw + ti * hw + 100]
                    let gray = v * 68.493 + 122.769
                    XCTAssertEqual(Double(gray), Double(grayLevel(expectedFrames[clip * 2 + ti])), accuracy: 1.5)
                }
            }
        }
    }

    /// Channel c of the network input is (R, G, B)[c] normalised with mean[c] and std[c]
    /// (mmaction2 decodes RGB, `to_bgr=False`): a gray video cannot tell the order, a coloured one can.
    func testNormalisedChannelsAreRGBInOrder() throws {
        let dir = scratchDir("rgb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/c.mkv", rgb: [UInt8] = [200, 100, 30]
        let w = try VideoWriter(path: p, encoder: "ffv1", width: 40, height: 32)
        for _ in 0..<6 { try w.append(rgb: (0..<(40 * 32)).flatMap { _ in rgb }) }
        try w.finish()
        let cfg = ClipPipelineConfig(sampler: SampleFrames(clipLen: 2, frameInterval: 1, numClips: 1, testMode: true),
                                     shortSide: 16, cropSize: 16)
        var g = RandomGenerator(keys: 0)
        let t = try ClipPipeline(cfg).load(path: p, rng: &g)
        let hw = 16 * 16, mean = ClipPipelineConfig.clipMean, std = ClipPipelineConfig.clipStd
        for c in 0..<3 {
            let expected = (Float(rgb[c]) - mean[c]) / std[c]
            for i in [0, 100, 2 * hw - 1] {
                XCTAssertEqual(t.data[c * 2 * hw + i], expected, accuracy: 4 / std[c], "channel \(c)")
            }
        }
    }

    /// `flip_ratio` is the probability of a flip: 0 never flips, 1 always does. A video whose
    /// brightness rises left to right shows it in any crop.
    func testFlipRatioIsTheFlipProbability() throws {
        let dir = scratchDir("flip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/ramp.mkv"
        let w = try VideoWriter(path: p, encoder: "ffv1", width: 64, height: 48)
        let frame: [UInt8] = (0..<48).flatMap { _ in (0..<64).flatMap { x in [UInt8](repeating: UInt8(30 + 3 * x), count: 3) } }
        for _ in 0..<6 { try w.append(rgb: frame) }
        try w.finish()
        for (ratio, risesLeftToRight) in [(0.0, true), (1.0, false)] {
            let cfg = ClipPipelineConfig(sampler: SampleFrames(clipLen: 2, frameInterval: 1, numClips: 1),
                                         shortSide: 24, cropSize: 16, flipRatio: ratio)
            for seed in 0..<20 {
                var g = RandomGenerator(keys: UInt64(seed))
                let t = try ClipPipeline(cfg).load(path: p, rng: &g)
                let left = (0..<16).map { t.data[$0 * 16] }.reduce(0, +), right = (0..<16).map { t.data[$0 * 16 + 15] }.reduce(0, +)
                XCTAssertEqual(left < right, risesLeftToRight, "flip_ratio \(ratio), seed \(seed): left \(left), right \(right)")
            }
        }
    }

    /// The area fraction of RandomResizedCrop is uniform over (0.08, 1.0): with the aspect ratio
    /// fixed at 1 on a square frame every candidate fits, so the fractions drawn show the range.
    func testRandomResizedCropAreaSpansItsRange() {
        var fractions: [Double] = []
        for k in 0..<2000 {
            var g = RandomGenerator(keys: UInt64(k), 77)
            let b = randomResizedCropBox(width: 100, height: 100, aspectRange: (1, 1), rng: &g)
            XCTAssertEqual(b.w, b.h)
            XCTAssert(b.x >= 0 && b.y >= 0 && b.x + b.w <= 100 && b.y + b.h <= 100)
            fractions.append(Double(b.w * b.h) / 10_000)
        }
        XCTAssertGreaterThanOrEqual(fractions.min()!, 0.075)
        XCTAssertLessThan(fractions.min()!, 0.1)
        XCTAssertGreaterThan(fractions.max()!, 0.97)
        XCTAssertEqual(fractions.reduce(0, +) / 2000, 0.54, accuracy: 0.02)  // (0.08 + 1) / 2
    }
}
