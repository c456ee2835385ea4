import AIMData
import AIMTensor
import Foundation
import XCTest

final class FrameCountCacheTests: XCTestCase {
    /// A raw H.264 stream carries no timestamps, so its count takes a decode pass.
    func rawStream() throws -> String {
        let dir = scratchDir("framecount")
        let mp4 = dir + "/gray.mp4", raw = dir + "/gray.h264"
        try makeGrayVideo(mp4, encoder: "libx264", frames: 30, gop: 10, bFrames: 2)
        guard ffmpegCLI(["-i", mp4, "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", raw]) else {
            throw XCTSkip("ffmpeg cannot write a raw H.264 stream here")
        }
        return raw
    }

    func testRememberedCountSkipsTheDecodePassAndDecodesTheSameFrames() throws {
        let raw = try rawStream()
        let first = try VideoReader(path: raw)
        guard first.frameCountSource == .decodePass else {
            throw XCTSkip("this FFmpeg indexes raw H.264 by timestamps (\(first.frameCountSource)); nothing to cache")
        }
        XCTAssertEqual(first.frameCount, 30)
        let again = try VideoReader(path: raw, knownFrameCount: first.frameCount)
        XCTAssertEqual(again.frameCountSource, .remembered)
        XCTAssertEqual(again.frameCount, 30)
        XCTAssertEqual(try again.frames(at: [0, 17, 29]), try first.frames(at: [0, 17, 29]))
        XCTAssertEqual(try again.frames(at: [17]).pixels[0], UInt8(clamping: grayLevel(17)), accuracy: 3)
    }

    func testLoaderRemembersDecodePassCountsAndGivesTheSameBatches() throws {
        let raw = try rawStream()
        guard try VideoReader(path: raw).frameCountSource == .decodePass else { throw XCTSkip("raw H.264 is indexed here") }
        let pipe = ClipPipelineConfig(sampler: SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1), shortSide: 24, cropSize: 16)
        let samples = [VideoSample(path: raw, label: 0), VideoSample(path: MixedList.samples[0].path, label: 1)]
        let loader = VideoLoader(samples: samples, pipeline: pipe, globalBatch: 2, seed: 3, shuffle: true, workers: 0, log: { _ in })
        let e0 = try loader.loadBatch(epoch: 0, step: 0)
        XCTAssertEqual(loader.frameCounts.count(for: raw), 30)
        XCTAssertEqual(loader.frameCounts.size, 1, "only decode-pass counts are kept")
        // A fresh loader (nothing remembered) gives the same clips as the one using its cache.
        let fresh = VideoLoader(samples: samples, pipeline: pipe, globalBatch: 2, seed: 3, shuffle: true, workers: 0, log: { _ in })
        XCTAssertEqual(try loader.loadBatch(epoch: 1, step: 0).data.array, try fresh.loadBatch(epoch: 1, step: 0).data.array)
        XCTAssertEqual(e0.loaded.count, 2)
    }
}

private func XCTAssertEqual(_ a: UInt8, _ b: UInt8, accuracy: UInt8, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertLessThanOrEqual(a > b ? a - b : b - a, accuracy, "\(a) vs \(b)", file: file, line: line)
}
