import AIMTensor

/// mmaction2 0.x `SampleFrames` as used by AIM (`mmaction/datasets/pipelines/loading.py`),
/// with `out_of_bound_opt='loop'`, `temporal_jitter=False`, `twice_sample=False`, start index 0.
///
/// `frame_uniform=True` is the SlowFast SSv2 sampler AIM uses for SSv2 and Diving-48:
/// `clip_len` segments of size `(N-1)/clip_len`, boundaries rounded half-to-even (numpy),
/// a random frame per segment (inclusive ends, Python `random.randint`) in train mode, the
/// middle `(start+end)//2` in test mode; `frame_interval` and `num_clips` are then ignored.
///
/// The random draws come from the given generator, not numpy's stream: train-mode indices have
/// the official distribution, not the official values.
public struct SampleFrames: Equatable, Sendable {
    public var clipLen: Int
    public var frameInterval: Int
    public var numClips: Int
    public var testMode: Bool
    public var frameUniform: Bool

    public init(clipLen: Int, frameInterval: Int = 1, numClips: Int = 1, testMode: Bool = false, frameUniform: Bool = false) {
        precondition(clipLen > 0 && frameInterval > 0 && numClips > 0,
                     "SampleFrames: clip_len, frame_interval and num_clips must be positive")
        self.clipLen = clipLen; self.frameInterval = frameInterval; self.numClips = numClips
        self.testMode = testMode; self.frameUniform = frameUniform
    }

    /// Number of clips (temporal views) the indices describe: 1 with `frameUniform`.
    public var clipsPerVideo: Int { frameUniform ? 1 : numClips }

    /// Frame indices, `clipsPerVideo * clipLen` of them, clip after clip, all in `0..<totalFrames`.
    public func indices(totalFrames n: Int, rng: inout RandomGenerator) -> [Int] {
        precondition(n > 0, "SampleFrames: a video with \(n) frames")
        if frameUniform { return uniformIndices(n, rng: &rng) }
        let offsets = testMode ? testOffsets(n) : trainOffsets(n, rng: &rng)
        var out: [Int] = []
        out.reserveCapacity(offsets.count * clipLen)
        for o in offsets {
            for j in 0..<clipLen { out.append(floorMod(o + j * frameInterval, n)) }  // 'loop'
        }
        return out
    }

    /// `_get_train_clips`.
    public func trainOffsets(_ n: Int, rng: inout RandomGenerator) -> [Int] {
        let ori = clipLen * frameInterval
        let avg = floorDiv(n - ori + 1, numClips)  // Python `//`
        if avg > 0 {
            return (0..<numClips).map { $0 * avg + rng.int(below: avg) }
        } else if n > max(numClips, ori) {
            return (0..<numClips).map { _ in rng.int(below: n - ori + 1) }.sorted()
        } else if avg == 0 {
            let ratio = Double(n - ori + 1) / Double(numClips)
            return (0..<numClips).map { Int((Double($0) * ratio).rounded(.toNearestOrEven)) }
        } else {
            return [Int](repeating: 0, count: numClips)
        }
    }

    /// `_get_test_clips`: `int(i*avg + avg/2)` with `avg = (n - clip_len*interval + 1) / num_clips`.
    public func testOffsets(_ n: Int) -> [Int] {
        let ori = clipLen * frameInterval
        let avg = Double(n - ori + 1) / Double(numClips)
        guard n > ori - 1 else { return [Int](repeating: 0, count: numClips) }
        return (0..<numClips).map { Int(Double($0) * avg + avg / 2.0) }  // astype(int) truncates; values >= 0
    }

    /// `get_seq_frames` (SlowFast SSv2).
    public func uniformIndices(_ n: Int, rng: inout RandomGenerator) -> [Int] {
        let seg = Double(n - 1) / Double(clipLen)
        return (0..<clipLen).map { i in
            let start = Int((seg * Double(i)).rounded(.toNearestOrEven))
            let end = Int((seg * Double(i + 1)).rounded(.toNearestOrEven))
            return testMode ? (start + end) / 2 : start + rng.int(below: end - start + 1)
        }
    }
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

@inline(__always) func floorMod(_ a: Int, _ b: Int) -> Int {
    let r = a % b
    return r < 0 ? r + b : r
}
