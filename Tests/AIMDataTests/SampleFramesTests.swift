import AIMData
import AIMTensor
import XCTest

/// Expected values come from mmaction2 0.x `SampleFrames` (AIM's loading.py) run with numpy.
final class SampleFramesTests: XCTestCase {
    func idx(_ n: Int, _ l: Int, _ i: Int, _ c: Int, test: Bool = true, uniform: Bool = false, seed: UInt64 = 0) -> [Int] {
        var g = RandomGenerator(keys: seed)
        return SampleFrames(clipLen: l, frameInterval: i, numClips: c, testMode: test, frameUniform: uniform)
            .indices(totalFrames: n, rng: &g)
    }

    func testTestModeMatchesOfficial() {
        XCTAssertEqual(idx(300, 8, 16, 3), [28, 44, 60, 76, 92, 108, 124, 140, 86, 102, 118, 134, 150, 166, 182, 198,
                                            144, 160, 176, 192, 208, 224, 240, 256])
        XCTAssertEqual(Array(idx(300, 32, 4, 3).prefix(3)), [28, 32, 36])
        XCTAssertEqual(Array(idx(300, 32, 4, 3).suffix(2)), [264, 268])
        // Short videos: fewer frames than clip_len * interval loop around.
        XCTAssertEqual(idx(100, 8, 16, 3), [Int](repeating: 0, count: 0) + Array(repeating: [0, 16, 32, 48, 64, 80, 96, 12], count: 3).flatMap { $0 })
        XCTAssertEqual(idx(128, 8, 16, 1), [0, 16, 32, 48, 64, 80, 96, 112])
        XCTAssertEqual(idx(50, 8, 8, 2), [0, 8, 16, 24, 32, 40, 48, 6, 0, 8, 16, 24, 32, 40, 48, 6])
        XCTAssertEqual(idx(10, 4, 2, 5), [0, 2, 4, 6, 0, 2, 4, 6, 1, 3, 5, 7, 2, 4, 6, 8, 2, 4, 6, 8])
        XCTAssertEqual(Array(idx(37, 8, 4, 10).suffix(16)), [5, 9, 13, 17, 21, 25, 29, 33, 5, 9, 13, 17, 21, 25, 29, 33])
        // A single-frame video.
        XCTAssertEqual(idx(1, 8, 16, 3), [Int](repeating: 0, count: 24))
    }

    func testFrameUniformTestMode() {
        XCTAssertEqual(idx(300, 8, 2, 1, uniform: true), [18, 56, 93, 131, 168, 205, 243, 280])
        XCTAssertEqual(idx(17, 8, 2, 1, uniform: true), [1, 3, 5, 7, 9, 11, 13, 15])
        XCTAssertEqual(idx(8, 8, 2, 1, uniform: true), [0, 1, 2, 3, 4, 4, 5, 6])  // round(3.5) = 4
        XCTAssertEqual(idx(5, 8, 2, 1, uniform: true), [0, 0, 1, 2, 2, 2, 3, 4])
        XCTAssertEqual(idx(6, 2, 2, 1, uniform: true), [1, 3])  // round(2.5) = 2: segments (0,2), (2,5)
        XCTAssertEqual(idx(1, 8, 2, 1, uniform: true), [Int](repeating: 0, count: 8))
        // frame_uniform ignores num_clips: one clip.
        XCTAssertEqual(idx(300, 8, 2, 3, uniform: true).count, 8)
    }

    func testFrameUniformTrainModeStaysInSegmentsAndCoversThem() {
        let segs = [(0, 37), (37, 75), (75, 112), (112, 150), (150, 187), (187, 224), (224, 262), (262, 299)]
        var seen = Array(repeating: Set<Int>(), count: 8)
        for s in 0..<400 {
            let v = idx(300, 8, 2, 1, test: false, uniform: true, seed: UInt64(s))
            for (i, x) in v.enumerated() {
                XCTAssert(x >= segs[i].0 && x <= segs[i].1, "frame \(x) outside segment \(segs[i])")
                seen[i].insert(x)
            }
        }
        // randint(start, end) includes both ends.
        XCTAssertTrue(seen[0].contains(0) && seen[0].contains(37))
    }

    func testTrainModeBranches() {
        let s = SampleFrames(clipLen: 8, frameInterval: 16, numClips: 3)
        // avg > 0: one offset in each [i*avg, (i+1)*avg) with avg = (300-128+1)//3 = 57.
        var hits = Set<Int>()
        for seed in 0..<300 {
            var g = RandomGenerator(keys: UInt64(seed))
            let o = s.trainOffsets(300, rng: &g)
            for (i, x) in o.enumerated() { XCTAssert(x >= i * 57 && x < (i + 1) * 57); if i == 0 { hits.insert(x) } }
        }
        XCTAssertEqual(hits.count, 57, "train offsets do not cover the segment")
        // avg == 0 but n > max(num_clips, clip_len*interval): sorted draws in [0, n - 8].
        let s2 = SampleFrames(clipLen: 4, frameInterval: 2, numClips: 5)
        for seed in 0..<50 {
            var g = RandomGenerator(keys: UInt64(seed))
            let o = s2.trainOffsets(10, rng: &g)
            XCTAssertEqual(o, o.sorted()); XCTAssert(o.allSatisfy { $0 >= 0 && $0 < 3 })
        }
        // avg == 0 otherwise: around(i * (n - ori + 1) / num_clips).
        var g = RandomGenerator(keys: 1)
        XCTAssertEqual(SampleFrames(clipLen: 4, frameInterval: 2, numClips: 3).trainOffsets(8, rng: &g), [0, 0, 1])
        // avg < 0 (Python floor division): zeros, and the indices loop.
        XCTAssertEqual(SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1).trainOffsets(5, rng: &g), [0])
        XCTAssertEqual(idx(5, 4, 2, 1, test: false), [0, 2, 4, 1])
        XCTAssertEqual(idx(1, 8, 4, 1, test: false), [Int](repeating: 0, count: 8))
    }
}
