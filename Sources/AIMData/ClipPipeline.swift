import AIMTensor
import Foundation

/// Everything that turns one video file into the network input of one sample, as the official
/// mmaction2 pipelines do:
/// - train: SampleFrames → decode → Resize(-1, shortSide) → RandomResizedCrop → Resize(crop, crop)
///   → Flip(flipRatio) → [Imgaug(RandAugment)] → [ColorJitter] → Normalize → [RandomErasing]
///   → FormatShape('NCTHW') (SSv2 uses RandAugment and RandomErasing, ViT-L/14 K400 ColorJitter);
/// - test/val: SampleFrames(test_mode) → decode → Resize(-1, shortSide) → CenterCrop or ThreeCrop
///   → Normalize → FormatShape('NCTHW').
public struct ClipPipelineConfig: Equatable, Sendable {
    public enum TestCrop: String, Sendable { case center, three }

    public var sampler: SampleFrames
    public var shortSide: Int
    public var cropSize: Int
    public var flipRatio: Double
    public var testCrop: TestCrop
    public var colorJitter: PCALighting?
    /// imgaug RandAugment after the flip, one sampled plan per clip (AIM's SSv2: n 4, m 7).
    public var randAugment: RandAugment?
    /// Probability of timm RandomErasing after normalisation (0 = off; AIM's SSv2 uses 0.25).
    public var randomErasing: Double
    public var mean: [Float]
    public var std: [Float]
    /// Let libswscale scale straight to the short-side size while converting to RGB (faster;
    /// not bit-identical to OpenCV's resize). Off by default.
    public var decoderResize: Bool
    /// Threads inside one libavcodec decoder.
    public var decodeThreads: Int

    public static let clipMean: [Float] = [122.769, 116.74, 104.04]
    public static let clipStd: [Float] = [68.493, 66.63, 70.321]
    public static let imagenetMean: [Float] = [123.675, 116.28, 103.53]
    public static let imagenetStd: [Float] = [58.395, 57.12, 57.375]

    public init(sampler: SampleFrames, shortSide: Int = 256, cropSize: Int = 224, flipRatio: Double = 0.5,
                testCrop: TestCrop = .center, colorJitter: PCALighting? = nil, randAugment: RandAugment? = nil,
                randomErasing: Double = 0,
                mean: [Float] = ClipPipelineConfig.clipMean, std: [Float] = ClipPipelineConfig.clipStd,
                decoderResize: Bool = false, decodeThreads: Int = 1) {
        self.sampler = sampler; self.shortSide = shortSide; self.cropSize = cropSize
        self.flipRatio = flipRatio; self.testCrop = testCrop; self.colorJitter = colorJitter
        self.randAugment = randAugment
        self.randomErasing = randomErasing; self.mean = mean; self.std = std
        self.decoderResize = decoderResize; self.decodeThreads = decodeThreads
    }

    public var isTrain: Bool { !sampler.testMode }
    public var cropsPerClip: Int { !isTrain && testCrop == .three ? 3 : 1 }
    /// Views per sample: temporal clips × spatial crops (1 in training with num_clips = 1).
    public var viewsPerSample: Int { sampler.clipsPerVideo * cropsPerClip }
    /// Shape of one sample's input: `[views, 3, T, crop, crop]`.
    public var sampleShape: [Int] { [viewsPerSample, 3, sampler.clipLen, cropSize, cropSize] }
    public var sampleFloats: Int { sampleShape.reduce(1, *) }
    /// Views as the paper writes them: frames × temporal clips × spatial crops ("8×3×1").
    public func viewsText(frames: Int) -> String { "\(frames)×\(sampler.clipsPerVideo)×\(cropsPerClip)" }
}

public struct ClipPipeline: Sendable {
    public let config: ClipPipelineConfig

    public init(_ config: ClipPipelineConfig) {
        precondition(config.mean.count == 3 && config.std.count == 3, "mean/std need 3 values (RGB)")
        precondition(config.cropSize > 0 && config.shortSide > 0, "crop and short side must be positive")
        self.config = config
    }

    /// Decodes and transforms one video; `out` receives `config.sampleFloats` floats laid out
    /// `[views, 3, T, H, W]`. All random choices come from `rng`, in a fixed order. With
    /// `frameCounts`, a frame count that took a decode pass is remembered for the next open.
    /// With `range`, the video is read in place from that byte range of a tar shard.
    public func load(path: String, rng: inout RandomGenerator, into out: UnsafeMutablePointer<Float>,
                     frameCounts: FrameCountCache? = nil, range: ArchiveRange? = nil) throws {
        let reader = try VideoReader(path: path, threads: config.decodeThreads, knownFrameCount: frameCounts?.count(for: path),
                                     range: range)
        if reader.frameCountSource == .decodePass { frameCounts?.store(reader.frameCount, for: path) }
        try load(reader: reader, rng: &rng, into: out)
    }

    /// As `load(path:…)` from an open reader; with `frames`, the sampler sees only that range of
    /// the video (a window of a long video, as mmaction2's long_video_demo predicts per window).
    public func load(reader: VideoReader, frames range: Range<Int>? = nil, rng: inout RandomGenerator,
                     into out: UnsafeMutablePointer<Float>) throws {
        let c = config, path = reader.path
        let span = range ?? 0..<reader.frameCount
        guard span.lowerBound >= 0, span.upperBound <= reader.frameCount, !span.isEmpty else {
            throw VideoError.badRequest(path: path, reason: reader.frameCount == 0 ? "no frames to sample from"
                                        : "frames \(span) outside the video's 0..<\(reader.frameCount)")
        }
        let indices = c.sampler.indices(totalFrames: span.count, rng: &rng).map { $0 + span.lowerBound }
        let target = shortSideSize(width: reader.width, height: reader.height, shortSide: c.shortSide)
        var frames: FrameStack
        if c.decoderResize {
            frames = try reader.frames(at: indices, size: target)
        } else {
            frames = resizeBilinear(try reader.frames(at: indices), width: target.width, height: target.height)
        }
        var views: [FrameStack]
        var lighting: [Float]? = nil
        var erase: CropBox? = nil
        if c.isTrain {
            let box = randomResizedCropBox(width: frames.width, height: frames.height, rng: &rng)
            frames = resizeBilinear(crop(frames, box), width: c.cropSize, height: c.cropSize)
            if rng.uniformDouble() < c.flipRatio { frames = flipHorizontal(frames) }
            if let ra = c.randAugment { frames = ra.apply(ra.plan(rng: &rng), to: frames) }
            if let j = c.colorJitter { lighting = j.offset(rng: &rng) }
            if c.randomErasing > 0 {
                erase = randomErasingBox(width: c.cropSize, height: c.cropSize, probability: c.randomErasing, rng: &rng)
            }
            views = [frames]
        } else {
            guard frames.width >= c.cropSize && frames.height >= c.cropSize else {
                throw VideoError.badRequest(path: path, reason: "frames \(frames.width)x\(frames.height) smaller than crop \(c.cropSize)")
            }
            if c.testCrop == .three && frames.width != c.cropSize && frames.height != c.cropSize {
                throw VideoError.badRequest(path: path, reason: "ThreeCrop(\(c.cropSize)) needs a side of \(c.cropSize), frames are \(frames.width)x\(frames.height)")
            }
            let boxes = c.testCrop == .three
                ? threeCropBoxes(width: frames.width, height: frames.height, size: c.cropSize)
                : [centerCropBox(width: frames.width, height: frames.height, size: c.cropSize)]
            views = boxes.map { crop(frames, $0) }
        }
        // FormatShape NCTHW: frames are (crop, clip, t); view m = crop * clips + clip.
        let t = c.sampler.clipLen, clips = c.sampler.clipsPerVideo
        let hw = c.cropSize * c.cropSize
        let meanF = c.mean
        // mmcv.imnormalize_: subtract the float32 mean, multiply by float32(1 / float64(std)).
        let stdInv = c.std.map { Float(1.0 / Double($0)) }
        for (k, v) in views.enumerated() {
            v.pixels.withUnsafeBufferPointer { px in
                for clip in 0..<clips {
                    let viewBase = out + (k * clips + clip) * 3 * t * hw
                    for ti in 0..<t {
                        let src = px.baseAddress! + (clip * t + ti) * hw * 3
                        for ch in 0..<3 {
                            let dst = viewBase + (ch * t + ti) * hw
                            let add = lighting?[ch] ?? 0
                            let m = meanF[ch], s = stdInv[ch]
                            if lighting != nil {
                                for i in 0..<hw { dst[i] = ((Float(src[i * 3 + ch]) + add) - m) * s }
                            } else {
                                for i in 0..<hw { dst[i] = (Float(src[i * 3 + ch]) - m) * s }
                            }
                            if let e = erase {
                                for y in e.y..<(e.y + e.h) {
                                    (dst + y * c.cropSize + e.x).update(repeating: 0, count: e.w)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One sample as a tensor `[views, 3, T, H, W]`.
    public func load(path: String, rng: inout RandomGenerator) throws -> Tensor {
        let t = Tensor(config.sampleShape)
        try load(path: path, rng: &rng, into: t.data)
        return t
    }
}
