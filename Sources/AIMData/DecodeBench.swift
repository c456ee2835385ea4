import AIMTensor
import Foundation

/// Decode-and-augment throughput of the training pipeline: 8×224×224 clips (clip_len 8,
/// interval 16, Resize(-1, 256) → RandomResizedCrop → 224, flip, normalise) from 320p H.264
/// files, as the K400 8-frame config samples them, with 1, 2 … loader threads.
public enum DecodeBenchmark {
    public struct Result: Sendable {
        public let threads: Int
        public let clips: Int
        public let seconds: Double
        public var clipsPerSecond: Double { Double(clips) / seconds }
    }

    /// Writes `videos` H.264 MP4 files of `width`×320 (`frames` frames, moving texture) into `dir`.
    /// Throws when this FFmpeg has no libx264.
    public static func makeVideos(in dir: String, videos: Int = 4, frames: Int = 250, width: Int = 568) throws -> [String] {
        guard VideoWriter.hasEncoder("libx264") else {
            throw VideoWriterError(path: dir, reason: "this FFmpeg has no libx264 encoder")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let h = 320
        return try (0..<videos).map { v in
            let p = dir + "/bench\(v).mp4"
            if FileManager.default.fileExists(atPath: p) { return p }
            let w = try VideoWriter(path: p, encoder: "libx264", width: width, height: h, fps: 25, gop: 250, bFrames: 2)
            var px = [UInt8](repeating: 0, count: width * h * 3)
            for f in 0..<frames {
                for y in 0..<h {
                    for x in 0..<width {
                        let o = (y * width + x) * 3
                        px[o] = UInt8(truncatingIfNeeded: x + 2 * f + v * 40)
                        px[o + 1] = UInt8(truncatingIfNeeded: y * 2 - f)
                        px[o + 2] = UInt8(truncatingIfNeeded: (x ^ y) + f)
                    }
                }
                try w.append(rgb: px)
            }
            try w.finish()
            return p
        }
    }

    /// Loads `clipsPerThread` clips in each of `threads` threads at once; one warm-up clip first.
    public static func run(paths: [String], threads: Int, clipsPerThread: Int = 8) throws -> Result {
        let cfg = ClipPipelineConfig(sampler: SampleFrames(clipLen: 8, frameInterval: 16, numClips: 1),
                                     shortSide: 256, cropSize: 224, flipRatio: 0.5)
        let pipe = ClipPipeline(cfg)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: cfg.sampleFloats * threads)
        defer { out.deallocate() }
        var warm = RandomGenerator(keys: 0)
        try pipe.load(path: paths[0], rng: &warm, into: out)
        let errors = ManagedCounter()
        let t0 = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for k in 0..<clipsPerThread {
                var g = RandomGenerator(keys: 1, UInt64(t), UInt64(k))
                do { try pipe.load(path: paths[(t + k) % paths.count], rng: &g, into: out + t * cfg.sampleFloats) } catch { _ = errors.take() }
            }
        }
        let dt = Date().timeIntervalSince(t0)
        if errors.take() > 0 { throw VideoError.undecodable(path: paths[0], reason: "benchmark clips failed to load") }
        return Result(threads: threads, clips: threads * clipsPerThread, seconds: dt)
    }
}
