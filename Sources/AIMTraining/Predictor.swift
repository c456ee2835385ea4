import AIMConfig
import AIMData
import AIMModel
import AIMTensor
import Foundation

/// Labels videos with a trained model as mmaction2's demo.py (one video → class scores over the
/// test views) and long_video_demo.py (scores per time window) do, with the config's test
/// pipeline and the same view averaging as aim-eval.
public final class Predictor {
    public struct Window: Sendable {
        public let start: Double, end: Double
        public let scores: [Float]
    }

    public let model: Recognizer
    public let pipeline: ClipPipeline
    public let averaging: ClipAveraging

    public init(model: Recognizer, config: Config) throws {
        self.model = model
        pipeline = ClipPipeline(try ClipPipelineConfig(config: config, split: .test))
        averaging = ClipAveraging(config: config)
    }

    public var views: Int { pipeline.config.viewsPerSample }

    /// Averaged class probabilities of the whole video.
    public func predict(path: String) throws -> [Float] {
        let reader = try VideoReader(path: path, threads: pipeline.config.decodeThreads)
        return try scores(reader, frames: nil)
    }

    /// Probabilities per window of `window` seconds, windows starting every `stride` seconds; the
    /// last one ends at the end of the video (shorter when the video ends inside it), and a video
    /// shorter than one window is one window.
    public func predict(path: String, window: Double, stride: Double) throws -> (duration: Double, windows: [Window]) {
        let reader = try VideoReader(path: path, threads: pipeline.config.decodeThreads)
        guard reader.fps > 0 else { throw VideoError.badRequest(path: path, reason: "no frame rate: cannot place time windows") }
        let n = reader.frameCount, duration = Double(n) / reader.fps
        var out: [Window] = []
        for (start, end) in Self.windows(duration: duration, window: window, stride: stride) {
            let frames = Self.frames(start: start, end: end, fps: reader.fps, count: n)
            out.append(Window(start: start, end: end, scores: try scores(reader, frames: frames)))
        }
        return (duration, out)
    }

    /// The frames a window samples from: every frame shown during [start, end) (the one showing
    /// at `start` through the one showing just before `end`), at least one, within the video.
    public static func frames(start: Double, end: Double, fps: Double, count n: Int) -> Range<Int> {
        let lo = min(n - 1, Int((start * fps).rounded(.down)))
        let hi = max(lo + 1, min(n, Int((end * fps).rounded(.up))))
        return lo..<hi
    }

    /// Window bounds in seconds (separate so the rule is testable without a video).
    public static func windows(duration: Double, window: Double, stride: Double) -> [(Double, Double)] {
        // aim-predict bounds both (0.01–86400 s); anything else would never reach the end.
        guard duration > 0, window > 0, stride > 0, stride.isFinite else { return [] }
        var out: [(Double, Double)] = []
        var start = 0.0
        while true {
            let end = min(start + window, duration)
            out.append((start, end))
            if end >= duration - 1e-9 { break }
            start += stride
        }
        return out
    }

    private func scores(_ reader: VideoReader, frames: Range<Int>?) throws -> [Float] {
        let input = Tensor(pipeline.config.sampleShape)
        // Test sampling is deterministic; the generator is only a formality of the interface.
        var rng = RandomGenerator(keys: 0)
        try pipeline.load(reader: reader, frames: frames, rng: &rng, into: input.data)
        return try averagedProbabilities(model: model, video: input, samples: 1, views: views, averaging: averaging)[0]
    }
}
