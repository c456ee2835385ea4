import AIMData
import AIMTensor
import Foundation
import XCTest

/// A list of good videos mixed with every kind of bad file, shared by the loader and check tests.
enum MixedList {
    static let dir = scratchDir("mixed")
    static let badNames = ["missing.mp4", "empty.mp4", "truncated.mp4", "random.mp4", "notes.txt", "audio.wav"]
    static let samples: [VideoSample] = {
        var s: [VideoSample] = []
        let encoders = ["mpeg4", "mjpeg", "libx264", "ffv1"], exts = ["avi", "mkv", "mp4", "mkv"]
        for i in 0..<8 {
            let p = dir + "/good\(i).\(exts[i % 4])"
            let w = try! VideoWriter(path: p, encoder: encoders[i % 4], width: 40, height: 32, gop: 6, bFrames: i % 4 == 2 ? 2 : 0)
            for f in 0..<(20 + i) {
                var px = [UInt8](repeating: UInt8(grayLevel(f)), count: 40 * 32 * 3)
                for x in 0..<(4 + i) { px[(5 * 40 + x) * 3] = 250 }  // a per-video mark, so crops and flips matter
                try! w.append(rgb: px)
            }
            try! w.finish()
            s.append(VideoSample(path: p, label: i % 3))
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/empty.mp4", contents: Data()))
        let good = try! Data(contentsOf: URL(fileURLWithPath: dir + "/good2.mp4"))
        ffmpegCLI(["-i", dir + "/good0.avi", "-c:v", "libx264", "-movflags", "+faststart", dir + "/whole.mp4"])
        let whole = (try? Data(contentsOf: URL(fileURLWithPath: dir + "/whole.mp4"))) ?? good
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/truncated.mp4", contents: whole.prefix(whole.count * 2 / 3)))
        var g = RandomGenerator(keys: 99)
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/random.mp4", contents: Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: g.next()) })))
        try! "this is not a video\n".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        if !ffmpegCLI(["-f", "lavfi", "-i", "sine=frequency=440:duration=0.3", dir + "/audio.wav"]) {
            try! "RIFF".write(toFile: dir + "/audio.wav", atomically: true, encoding: .utf8)
        }
        for (k, b) in badNames.enumerated() { s.insert(VideoSample(path: dir + "/" + b, label: k % 3), at: 2 * k + 1) }
        return s
    }()
}

final class LoaderTests: XCTestCase {
    static let pipeline = ClipPipelineConfig(sampler: SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1),
                                             shortSide: 24, cropSize: 16, flipRatio: 0.5, randomErasing: 0.5)

    func loader(workers: Int, rank: Int = 0, ranks: Int = 1, log: [String]? = nil) -> VideoLoader {
        VideoLoader(samples: MixedList.samples, pipeline: Self.pipeline, globalBatch: 4, seed: 7, shuffle: true,
                    rank: rank, ranks: ranks, workers: workers, prefetch: 2, log: { _ in })
    }

    func epoch(_ l: VideoLoader, _ e: Int, from step: Int = 0) throws -> [Batch] {
        l.start(at: LoaderPosition(epoch: e, step: step))
        var out: [Batch] = []
        while let b = try l.next() { out.append(b) }
        return out
    }

    func testEpochSkipsEveryBadFileAndMatchesAcrossWorkersAndRanks() throws {
        let one = loader(workers: 0)
        let ref = try epoch(one, 1)
        XCTAssertEqual(ref.count, 4)  // 14 samples, batch 4: the last batch wraps around
        XCTAssertEqual(ref.last!.isPadding, [false, false, true, true])
        // Every bad file was met, named with its reason and counted; nothing bad was loaded.
        let rep = one.skipReport
        XCTAssertEqual(Set(rep.files.keys), Set(MixedList.badNames.map { MixedList.dir + "/" + $0 }), "\(rep.files)")
        XCTAssertGreaterThanOrEqual(rep.events, 6)
        XCTAssertTrue(ref.allSatisfy { $0.loaded.allSatisfy { MixedList.samples[$0].path.contains("good") } })
        XCTAssertEqual(ref[0].data.shape, [4, 3, 4, 16, 16])

        let two = try epoch(loader(workers: 2), 1)
        let r0 = try epoch(loader(workers: 1, rank: 0, ranks: 2), 1)
        let r1 = try epoch(loader(workers: 2, rank: 1, ranks: 2), 1)
        // Each batch counts its own bad draws, summing to the loader's count (a step's figure in
        // metrics.jsonl read the running count, prefetched batches included).
        XCTAssertEqual(ref.map(\.skipEvents).reduce(0, +), rep.events)
        XCTAssertEqual(two.map(\.skipEvents), ref.map(\.skipEvents))
        for s in 0..<ref.count {
            XCTAssertEqual(two[s].data.array, ref[s].data.array, "workers 2 vs 0, step \(s)")
            XCTAssertEqual(two[s].labels, ref[s].labels)
            XCTAssertEqual(r0[s].data.array + r1[s].data.array, ref[s].data.array, "ranks 0+1 vs one, step \(s)")
            XCTAssertEqual(r0[s].labels + r1[s].labels, ref[s].labels)
        }
        // Another epoch is another order and other clips.
        XCTAssertNotEqual(try epoch(one, 2)[0].data.array, ref[0].data.array)
    }

    func testPositionRestoresTheSameBatches() throws {
        let l = loader(workers: 2)
        let full = try epoch(l, 3)
        l.start(at: LoaderPosition(epoch: 3, step: 0))
        _ = try l.next(); _ = try l.next()
        let saved = l.position
        XCTAssertEqual(saved, LoaderPosition(epoch: 3, step: 2))
        let data = try JSONEncoder().encode(saved)
        let fresh = loader(workers: 1)
        let rest = try epoch(fresh, 3, from: try JSONDecoder().decode(LoaderPosition.self, from: data).step)
        XCTAssertEqual(rest.map(\.step), [2, 3])
        XCTAssertEqual(rest.map { $0.data.array }, full.suffix(2).map { $0.data.array })
    }

    /// A dataset with no usable clip is an error that names the sample and the last reasons, once
    /// every file has failed, in the prefetching workers as in the calling thread: never a trap.
    func testNoUsableClipThrowsWithTheReasons() throws {
        let bad = MixedList.samples.filter { !$0.path.contains("good") }
        XCTAssertGreaterThan(bad.count, 1)
        for workers in [0, 2] {
            let l = VideoLoader(samples: bad, pipeline: Self.pipeline, globalBatch: 2, seed: 7, shuffle: true,
                                workers: workers, prefetch: 2, log: { _ in })
            l.start(at: LoaderPosition(epoch: 0, step: 0))
            XCTAssertThrowsError(try l.next()) { e in
                guard let e = e as? NoUsableClipError else { return XCTFail("\(e)") }
                XCTAssertLessThan(e.attempts, 1000, "gives up once every file has failed, not after every draw")
                XCTAssertFalse(e.lastReasons.isEmpty)
                XCTAssertTrue("\(e)".contains("no usable clip"), "\(e)")
            }
            l.stop()
        }
    }

    /// The loader's skip line names what a path that is no video file is.
    func testSkipLineSaysWhatAPathIs() throws {
        let d = scratchDir("skipkinds")
        defer { try? FileManager.default.removeItem(atPath: d) }
        try FileManager.default.createDirectory(atPath: d + "/folder.mp4", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: d + "/loop.mp4", withDestinationPath: d + "/loop.mp4")
        XCTAssertEqual(mkfifo(d + "/fifo.mp4", 0o600), 0)
        let good = MixedList.samples.filter { $0.path.contains("good") }.prefix(2)
        let odd = [d + "/folder.mp4", d + "/loop.mp4", d + "/fifo.mp4", "/dev/zero", d + "/nope.mp4"]
        let samples = Array(good) + odd.map { VideoSample(path: $0, label: 0) }
        let all = LinesBox()
        let l = VideoLoader(samples: samples, pipeline: Self.pipeline, globalBatch: samples.count, seed: 7, shuffle: false,
                            workers: 0, prefetch: 1, log: { all.append($0) })
        l.start(at: LoaderPosition(epoch: 0, step: 0))
        XCTAssertNotNil(try l.next())
        l.stop()
        XCTAssertEqual(Set(all.lines), [
            "data: skipping \(d)/folder.mp4: a directory, not a video file",
            "data: skipping \(d)/loop.mp4: symbolic link loop",
            "data: skipping \(d)/fifo.mp4: not a regular file (device, FIFO or socket)",
            "data: skipping /dev/zero: not a regular file (device, FIFO or socket)",
            "data: skipping \(d)/nope.mp4: missing file",
        ])
        let rep = checkVideos(odd)
        XCTAssertEqual(rep.bad.map(\.reason), ["a directory, not a video file", "symbolic link loop",
                                               "not a regular file (device, FIFO or socket)",
                                               "not a regular file (device, FIFO or socket)", "missing file"])
    }

    /// A video whose header is whole (an MP4 with its index in front) but whose last frames are
    /// damaged opens with the frame count it promises: only decoding its last frame shows the
    /// damage, so `aim-data check` reports it before training meets it.
    func testCheckDecodesTheLastFrameToFindADamagedTail() throws {
        let d = scratchDir("tailcheck")
        try makeGrayVideo(d + "/src.avi", encoder: "mpeg4", frames: 40)
        try XCTSkipUnless(ffmpegCLI(["-i", d + "/src.avi", "-c:v", "libx264", "-g", "8", "-movflags", "+faststart", d + "/whole.mp4"]),
                          "ffmpeg CLI with libx264 needed")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: d + "/whole.mp4")))
        for i in (bytes.count - bytes.count / 20)..<bytes.count { bytes[i] = 0 }   // the last 5 %: the last frames' data
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/tail.mp4", contents: Data(bytes)))
        XCTAssertEqual(try VideoReader(path: d + "/tail.mp4").frameCount, 40, "the header still promises 40 frames")
        let rep = checkVideos([d + "/whole.mp4", d + "/tail.mp4"])
        XCTAssertEqual(rep.ok, 1)
        XCTAssertEqual(rep.bad.map(\.path), [d + "/tail.mp4"])
        XCTAssertTrue(rep.bad.first?.reason.hasPrefix("truncated") == true, "\(rep.bad)")
    }

    func testCheckNamesAndCountsEveryBadEntry() {
        let rep = checkVideos(MixedList.samples.map(\.path))
        XCTAssertEqual(rep.total, 14); XCTAssertEqual(rep.ok, 8)
        XCTAssertEqual(Set(rep.bad.map(\.path)), Set(MixedList.badNames.map { MixedList.dir + "/" + $0 }))
        let reason = Dictionary(uniqueKeysWithValues: rep.bad.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        XCTAssertEqual(reason["missing.mp4"], "missing file")
        XCTAssertEqual(reason["empty.mp4"], "empty file (0 bytes)")
        XCTAssertEqual(reason["audio.wav"], "audio only, no video stream")
        XCTAssertTrue(reason["notes.txt"]!.hasPrefix("not a video file"), reason["notes.txt"]!)
        XCTAssertTrue(reason["truncated.mp4"]!.hasPrefix("truncated"), reason["truncated.mp4"]!)
        let json = try! JSONSerialization.jsonObject(with: rep.json().data(using: .utf8)!) as! [String: Any]
        XCTAssertEqual(json["total"] as? Int, 14); XCTAssertEqual(json["ok"] as? Int, 8)
        XCTAssertEqual((json["bad"] as? [[String: String]])?.count, 6)
        XCTAssertEqual(rep.frameStats()!.min, 20); XCTAssertEqual(rep.frameStats()!.max, 27)
    }

    /// Each epoch reshuffles, `train.seed` changes the order, and each epoch draws new clips of
    /// the same video (frames, crop, flip): the epoch and the seed both key the draws.
    func testEpochsAndSeedsGiveOtherOrdersAndClips() throws {
        let good = MixedList.samples.filter { $0.path.contains("good") }
        func make(seed: UInt64, shuffle: Bool) -> VideoLoader {
            VideoLoader(samples: good, pipeline: Self.pipeline, globalBatch: 4, seed: seed, shuffle: shuffle,
                        workers: 0, prefetch: 1, log: { _ in })
        }
        let a = make(seed: 7, shuffle: true)
        XCTAssertEqual(a.order(epoch: 1).sorted(), Array(0..<good.count))
        XCTAssertEqual(a.order(epoch: 1), make(seed: 7, shuffle: true).order(epoch: 1))
        XCTAssertNotEqual(a.order(epoch: 1), a.order(epoch: 2), "a new epoch, a new order")
        XCTAssertNotEqual(a.order(epoch: 1), make(seed: 8, shuffle: true).order(epoch: 1), "another seed, another order")
        XCTAssertEqual(make(seed: 7, shuffle: false).order(epoch: 3), Array(0..<good.count))

        let s = make(seed: 7, shuffle: false)
        let e1 = try s.loadBatch(epoch: 1, step: 0), e2 = try s.loadBatch(epoch: 2, step: 0)
        XCTAssertEqual(e1.loaded, e2.loaded)
        XCTAssertEqual(try s.loadBatch(epoch: 1, step: 0).data.array, e1.data.array)
        XCTAssertNotEqual(e1.data.array, e2.data.array, "the same videos in another epoch: other clips")
    }
}

/// Log lines collected from the loader's threads.
final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var v: [String] = []
    func append(_ s: String) { lock.lock(); v.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return v }
}
