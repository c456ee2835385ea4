import AIMConfig
import AIMData
import AIMTensor
import Foundation
import XCTest

/// mmaction2 0.x `ColorJitter()` with its defaults (`color_space_aug=False`), as the official
/// ViT-L/14 K400 config uses it: PCA lighting noise only, one RGB offset per clip.
final class ColorJitterTests: XCTestCase {
    func testOffsetMatchesNumpy() {
        // np.array(np.dot(eig_vec * [0.1, -0.2, 0.05], eig_val), dtype=np.float32) with the float32
        // tables of augmentations.py: bit patterns 3228833571, 3226525083, 3223517013.
        let got = PCALighting.offset(alpha: [0.1, -0.2, 0.05])
        XCTAssertEqual(got.map(\.bitPattern), [3_228_833_571, 3_226_525_083, 3_223_517_013], "\(got)")
    }

    func testViTLConfigJittersEveryFrameOfAClipAlike() throws {
        Threads.set(1)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cfg = try Config.load(path: root.appendingPathComponent("configs/k400/aim_vitl14_clip_8f.yaml").path)
        var pipe = try ClipPipelineConfig(config: cfg, split: .train)
        XCTAssertEqual(pipe.colorJitter, PCALighting(alphaStd: 0.1))
        XCTAssertNil(pipe.randAugment)

        let path = scratchDir("colorjitter") + "/clip.avi"
        let w = try VideoWriter(path: path, encoder: "mpeg4", width: 48, height: 40, gop: 5, bFrames: 0)
        for f in 0..<12 { try w.append(rgb: referenceImage(width: 48, height: 40, full: f % 3 == 0).pixels) }
        try w.finish()
        pipe.sampler = SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1)
        pipe.shortSide = 40; pipe.cropSize = 32
        var plain = pipe; plain.colorJitter = nil
        var g1 = RandomGenerator(keys: 8, 1), g2 = RandomGenerator(keys: 8, 1)
        let a = try ClipPipeline(pipe).load(path: path, rng: &g1).array
        let b = try ClipPipeline(plain).load(path: path, rng: &g2).array
        // Same crop and flip (drawn before the jitter); the difference is one constant per channel
        // (the offset divided by the channel's std) over all frames and pixels.
        let per = 4 * 32 * 32
        for c in 0..<3 {
            let d = (0..<per).map { a[c * per + $0] - b[c * per + $0] }
            XCTAssertGreaterThan(abs(d[0]), 1e-4, "channel \(c) was not jittered")
            XCTAssertEqual(d.max()! - d.min()!, 0, accuracy: 1e-4, "channel \(c): offset varies inside the clip")
        }
    }
}
