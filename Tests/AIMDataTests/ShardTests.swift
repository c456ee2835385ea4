import AIMData
import AIMTensor
import Foundation
import XCTest

/// Good videos of several containers and codecs, two bad files between them, and the same
/// split written to shards small enough that it spans several.
enum ShardedList {
    static let dir = scratchDir("sharded")
    static let good: [VideoSample] = {
        let encoders = ["mpeg4", "mjpeg", "libx264", "mpeg4"], exts = ["avi", "mkv", "mp4", "mp4"]
        return (0..<8).map { i in
            let p = dir + "/src/v\(i).\(exts[i % 4])"
            try? FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
            let w = try! VideoWriter(path: p, encoder: encoders[i % 4], width: 40, height: 32, gop: 6, bFrames: i % 4 == 2 ? 2 : 0)
            for f in 0..<(20 + i) {
                var px = [UInt8](repeating: UInt8(grayLevel(f)), count: 40 * 32 * 3)
                for x in 0..<(4 + i) { px[(5 * 40 + x) * 3] = 250 }  // a per-video mark, so crops and flips matter
                try! w.append(rgb: px)
            }
            try! w.finish()
            return VideoSample(path: p, label: i % 3, line: i + 1)
        }
    }()
    /// `good` with a missing file and a non-video between them.
    static let listed: [VideoSample] = {
        var s = good
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/src/noise.mp4", contents: Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 * 31) })))
        s.insert(VideoSample(path: dir + "/src/gone.mp4", label: 1), at: 2)
        s.insert(VideoSample(path: dir + "/src/noise.mp4", label: 2), at: 6)
        return s
    }()
    static let shardDir = dir + "/shards"
    static let manifest: ShardManifest = try! ShardWriter.write(samples: listed, split: "train", to: shardDir, shardSize: 24 << 10)
}

final class ShardTests: XCTestCase {
    func testShardingSkipsBadSourcesIsDeterministicAndSplitsBySize() throws {
        let m = ShardedList.manifest
        XCTAssertEqual(m.samples, 8)
        XCTAssertEqual(m.skipped.map(\.path), [ShardedList.dir + "/src/gone.mp4", ShardedList.dir + "/src/noise.mp4"])
        XCTAssertEqual(m.skipped.first?.reason, "missing file")
        XCTAssertGreaterThan(m.shards.count, 1)
        XCTAssertEqual(m.shards.map(\.samples).reduce(0, +), 8)
        XCTAssertEqual(m.pattern, "train-{000000..\(String(format: "%06d", m.shards.count - 1))}.tar")
        for s in m.shards {
            let tar = ShardedList.shardDir + "/" + s.tar
            XCTAssertEqual(try SHA256.hex(ofFile: tar), s.sha256)
            XCTAssertEqual(Int64(fileBytes(tar).count), s.bytes)
            // A shard over the size limit holds a single sample.
            XCTAssertTrue(s.bytes <= 24 << 10 || s.samples == 1, "\(s.tar): \(s.bytes) bytes, \(s.samples) samples")
            XCTAssertEqual(try Tar.members(ofArchive: tar), try ShardIndex.parse(String(contentsOfFile: ShardedList.shardDir + "/" + s.index, encoding: .utf8), file: s.index).members)
        }
        XCTAssertEqual(try ShardManifest.read(ShardedList.shardDir + "/train-manifest.json"), m)
        // WebDataset layout: <key>.cls, <key>.json, <key>.<ext>, videos byte for byte.
        let first = try Tar.members(ofArchive: ShardedList.shardDir + "/train-000000.tar")
        XCTAssertEqual(first.prefix(3).map(\.name), ["v0.avi", "v0.cls", "v0.json"])
        let bytes = fileBytes(ShardedList.shardDir + "/train-000000.tar")
        XCTAssertEqual(Array(bytes[Int(first[0].offset)..<Int(first[0].offset + first[0].size)]), fileBytes(ShardedList.good[0].path))
        let json = String(decoding: bytes[Int(first[2].offset)..<Int(first[2].offset + first[2].size)], as: UTF8.self)
        XCTAssertEqual(json, "{\"path\": \"\(ShardedList.good[0].path)\", \"label\": 0, \"line\": 1}")
        // Same input, same bytes; an output folder that already holds the split is refused.
        let again = scratchDir("sharded-again")
        try ShardWriter.write(samples: ShardedList.listed, split: "train", to: again, shardSize: 24 << 10)
        for name in try FileManager.default.contentsOfDirectory(atPath: ShardedList.shardDir) {
            XCTAssertEqual(fileBytes(again + "/" + name), fileBytes(ShardedList.shardDir + "/" + name), name)
        }
        XCTAssertThrowsError(try ShardWriter.write(samples: ShardedList.good, split: "train", to: again, shardSize: 1 << 20))
    }

    /// Members far larger than the 64 KiB I/O buffer, so FFmpeg seeks inside the range (MP4 with
    /// its index at the end, Matroska): every frame decodes as from the file.
    func testLargeMembersSeekInsideTheirRange() throws {
        let dir = scratchDir("shard-large")
        var g = RandomGenerator(keys: 5)
        var sources: [VideoSample] = []
        for (i, (enc, ext)) in [("libx264", "mp4"), ("mpeg4", "mkv")].enumerated() {
            let p = dir + "/big\(i).\(ext)"
            let w = try VideoWriter(path: p, encoder: enc, width: 96, height: 64, gop: 8, bFrames: enc == "libx264" ? 2 : 0)
            for f in 0..<40 {  // noise, so the files stay large; a gray level per frame to identify it
                var px = (0..<(96 * 64 * 3)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
                for x in 0..<(96 * 8 * 3) { px[x] = UInt8(grayLevel(f)) }
                try w.append(rgb: px)
            }
            try w.finish()
            sources.append(VideoSample(path: p, label: i))
        }
        XCTAssertTrue(sources.allSatisfy { fileBytes($0.path).count > 65536 }, "\(sources.map { fileBytes($0.path).count })")
        try ShardWriter.write(samples: sources, split: "big", to: dir + "/shards", shardSize: 1 << 30)
        let shards = try ShardDataset.open(spec: dir + "/shards/big-manifest.json", cacheDir: nil).samples
        XCTAssertEqual(shards.count, 2)
        for (s, f) in zip(shards, sources) {
            let a = try VideoReader(path: s.path, range: s.range), b = try VideoReader(path: f.path)
            XCTAssertEqual(a.frameCount, 40)
            XCTAssertEqual(a.frameCountSource, b.frameCountSource)
            for idx in [[39, 0], [17, 18, 3], [25]] {
                XCTAssertTrue(try a.frames(at: idx).pixels == b.frames(at: idx).pixels, "\(s.path) frames \(idx)")
            }
            XCTAssertGreaterThan(a.seekDecodes, 0)
        }
    }

    func testKeysAreWebDatasetKeysAndUnique() {
        let s = ["/a/x.y.mp4", "/b/x.y.avi", "/c/x_y.mp4", "/d/plain"].map { VideoSample(path: $0, label: 0) }
        XCTAssertEqual(ShardWriter.keys(for: s), ["x_y", "x_y_2", "x_y_3", "plain"])
    }

    func testReaderDecodesAMemberInPlaceLikeItsFile() throws {
        let (samples, report) = try ShardDataset.open(spec: ShardedList.shardDir + "/train-manifest.json", cacheDir: nil)
        XCTAssertEqual(report.indexesBuilt, 0)
        XCTAssertEqual(samples.map(\.label), ShardedList.good.map(\.label))
        for (s, f) in zip(samples, ShardedList.good) {
            let a = try VideoReader(path: s.path, range: s.range)
            let b = try VideoReader(path: f.path)
            XCTAssertEqual(a.frameCount, b.frameCount)
            XCTAssertEqual(a.codecName, b.codecName)
            let idx = [0, a.frameCount / 2, a.frameCount - 1, 3]
            XCTAssertEqual(try a.frames(at: idx).pixels, try b.frames(at: idx).pixels, s.path)
        }
        // The brace pattern names the same samples.
        let viaPattern = try ShardDataset.open(spec: ShardedList.shardDir + "/" + ShardedList.manifest.pattern, cacheDir: nil).samples
        XCTAssertEqual(viaPattern, samples)
        XCTAssertEqual(viaPattern.map(\.range), samples.map(\.range))
    }

    /// The loader over shards gives bitwise the batches it gives over the files, at 1 and 2 ranks,
    /// with prefetching, resumed mid-epoch, and with multi-view (3 clips × ThreeCrop) evaluation.
    func testLoaderOverShardsEqualsLoaderOverFiles() throws {
        let shards = try ShardDataset.open(spec: ShardedList.shardDir + "/" + ShardedList.manifest.pattern, cacheDir: nil).samples
        let train = ClipPipelineConfig(sampler: SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1),
                                       shortSide: 24, cropSize: 16, flipRatio: 0.5, randomErasing: 0.5)
        let test = ClipPipelineConfig(sampler: SampleFrames(clipLen: 4, frameInterval: 2, numClips: 3, testMode: true),
                                      shortSide: 16, cropSize: 16, flipRatio: 0, testCrop: .three)
        for (pipe, shuffle) in [(train, true), (test, false)] {
            func run(_ samples: [VideoSample], rank: Int, ranks: Int, workers: Int, from step: Int = 0) throws -> [Batch] {
                let l = VideoLoader(samples: samples, pipeline: pipe, globalBatch: 4, seed: 11, shuffle: shuffle,
                                    rank: rank, ranks: ranks, workers: workers, prefetch: 2, log: { _ in })
                l.start(at: LoaderPosition(epoch: 1, step: step))
                var out: [Batch] = []
                while let b = try l.next() { out.append(b) }
                return out
            }
            let files = try run(ShardedList.good, rank: 0, ranks: 1, workers: 0)
            let one = try run(shards, rank: 0, ranks: 1, workers: 2)
            XCTAssertEqual(one.count, files.count)
            for (a, b) in zip(one, files) {
                XCTAssertTrue(a.data.array == b.data.array, "shards vs files, step \(a.step)")
                XCTAssertEqual(a.labels, b.labels)
                XCTAssertEqual(a.loaded, b.loaded)
            }
            let r0 = try run(shards, rank: 0, ranks: 2, workers: 1), r1 = try run(shards, rank: 1, ranks: 2, workers: 1)
            for (k, b) in files.enumerated() {
                XCTAssertTrue(r0[k].data.array + r1[k].data.array == b.data.array, "2 ranks vs files, step \(k)")
            }
            let resumed = try run(shards, rank: 0, ranks: 1, workers: 2, from: 1)
            XCTAssertTrue(resumed.map { $0.data.array } == one.dropFirst().map { $0.data.array }, "resumed at step 1")
        }
    }

    /// A member that is not a video is skipped and counted like a bad file; the sample without a
    /// video member is left out and reported.
    func testCorruptMembersAreSkippedAndCounted() throws {
        let dir = scratchDir("shard-corrupt")
        let w = try TarWriter(path: dir + "/c-000000.tar")
        for (i, s) in ShardedList.good.prefix(3).enumerated() {
            try w.add(name: "s\(i).cls", data: Array(String(s.label).utf8))
            try w.add(name: "s\(i).mp4", data: i == 1 ? [UInt8](repeating: 0x42, count: 2000) : fileBytes(s.path))
        }
        try w.add(name: "novideo.cls", data: Array("0".utf8))
        try w.finish()
        let (samples, report) = try ShardDataset.open(spec: dir + "/c-{000000..000000}.tar", cacheDir: nil)
        XCTAssertEqual(samples.count, 3)
        XCTAssertEqual(report.withoutVideo, [dir + "/c-000000.tar: novideo"])
        XCTAssertEqual(report.indexesBuilt, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/c-000000.idx"))
        let pipe = ClipPipelineConfig(sampler: SampleFrames(clipLen: 4, frameInterval: 2, numClips: 1), shortSide: 24, cropSize: 16)
        let l = VideoLoader(samples: samples, pipeline: pipe, globalBatch: 3, seed: 1, shuffle: false, workers: 0, log: { _ in })
        let b = try l.loadBatch(epoch: 0, step: 0)
        XCTAssertEqual(b.requested, [0, 1, 2])
        XCTAssertNotEqual(b.loaded[1], 1)
        XCTAssertGreaterThanOrEqual(l.skipReport.events, 1)  // a replacement draw may hit s1 again
        XCTAssertEqual(Array(l.skipReport.files.keys), [dir + "/c-000000.tar/s1.mp4"])
    }

    func testMissingTruncatedAndMismatchedShardsAreClearErrorsBeforeTraining() throws {
        let src = ShardedList.shardDir, n = ShardedList.manifest.shards.count
        let dir = scratchDir("shard-errors")
        for f in try FileManager.default.contentsOfDirectory(atPath: src) {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f)
        }
        // A pattern naming one shard more than there are.
        XCTAssertThrowsError(try ShardDataset.open(spec: dir + "/train-{000000..\(String(format: "%06d", n))}.tar", cacheDir: nil)) { e in
            XCTAssertTrue("\(e)".contains("missing shard"), "\(e)")
        }
        // A truncated shard: its index no longer matches, and without the index the tar headers say so.
        let last = dir + "/train-\(String(format: "%06d", n - 1)).tar"
        let b = fileBytes(last)
        let lastMember = try Tar.members(ofArchive: last).last!
        XCTAssertTrue(FileManager.default.createFile(atPath: last, contents: Data(b.prefix(Int(lastMember.offset + lastMember.size / 2)))))
        XCTAssertThrowsError(try ShardDataset.open(spec: dir + "/train-manifest.json", cacheDir: nil)) { e in
            XCTAssertTrue("\(e)".contains("index does not match its shard"), "\(e)")
        }
        try FileManager.default.removeItem(atPath: ShardIndex.path(forShard: last))
        XCTAssertThrowsError(try ShardDataset.open(spec: dir + "/train-manifest.json", cacheDir: nil)) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        // Cut exactly at a member's boundary: no end-of-archive blocks, refused (its later samples
        // were silently missing when shards are named by a pattern without indexes).
        let cut = lastMember.offset - 512   // the last member's header starts here
        XCTAssertTrue(FileManager.default.createFile(atPath: last, contents: Data(b.prefix(Int(cut)))))
        XCTAssertThrowsError(try Tar.members(ofArchive: last)) { e in
            XCTAssertTrue("\(e)".contains("truncated") && "\(e)".contains("right after a member"), "\(e)")
        }
        // A shard replaced by another whole tar: the manifest's counts catch it.
        try FileManager.default.removeItem(atPath: last)
        try FileManager.default.copyItem(atPath: dir + "/train-000000.tar", toPath: last)
        XCTAssertThrowsError(try ShardDataset.open(spec: dir + "/train-manifest.json", cacheDir: nil)) { e in
            XCTAssertTrue("\(e)".contains("does not match"), "\(e)")
        }
        // A stale index pointing at the wrong bytes is refused when a reader opens the member.
        let s = VideoSample(path: "x", label: 0, range: ArchiveRange(archive: dir + "/train-000000.tar", offset: 700, size: 100))
        XCTAssertThrowsError(try VideoReader(path: s.path, range: s.range)) { e in
            XCTAssertTrue("\(e)".contains("does not match"), "\(e)")
        }
    }

    func testManifestChecksumsCatchAFlippedByte() throws {
        let dir = scratchDir("shard-sha")
        for f in try FileManager.default.contentsOfDirectory(atPath: ShardedList.shardDir) {
            try FileManager.default.copyItem(atPath: ShardedList.shardDir + "/" + f, toPath: dir + "/" + f)
        }
        XCTAssertEqual(try ShardDataset.checksumMismatches(manifest: dir + "/train-manifest.json"), [])
        // One byte inside a video: sizes and headers still agree, only the checksum tells.
        var b = fileBytes(dir + "/train-000001.tar")
        let m = try Tar.members(ofArchive: dir + "/train-000001.tar").first { $0.name.hasSuffix(".mp4") || $0.name.hasSuffix(".avi") || $0.name.hasSuffix(".mkv") }!
        b[Int(m.offset + m.size / 2)] ^= 0xFF
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/train-000001.tar", contents: Data(b)))
        let bad = try ShardDataset.checksumMismatches(manifest: dir + "/train-manifest.json")
        XCTAssertEqual(bad.count, 1)
        XCTAssertTrue(bad.first?.hasPrefix(dir + "/train-000001.tar: sha256") == true, "\(bad)")
    }

    /// A manifest whose shard path holds a NUL (cut short where C opens it) or is empty is
    /// refused naming the file and the key, not read as another file.
    func testManifestPathsWithControlCharactersAreRefused() throws {
        let dir = scratchDir("shard-ctl")
        XCTAssertFalse(ShardedList.manifest.shards.isEmpty)
        let good = try String(contentsOfFile: ShardedList.shardDir + "/train-manifest.json", encoding: .utf8)
        XCTAssertNoThrow(try ShardManifest.read(ShardedList.shardDir + "/train-manifest.json"))
        for (bad, expect) in [("train-000000.tar\\u0000x", "U+0000 (NUL)"), ("train-\\u001b[2J000000.tar", "U+001B"), ("", "empty `tar`")] {
            let text = good.replacingOccurrences(of: "\"tar\": \"train-000000.tar\"", with: "\"tar\": \"\(bad)\"")
            XCTAssertNotEqual(text, good, "the manifest names train-000000.tar")
            try text.write(toFile: dir + "/train-manifest.json", atomically: false, encoding: .utf8)
            XCTAssertThrowsError(try ShardManifest.read(dir + "/train-manifest.json")) { e in
                XCTAssertTrue("\(e)".contains(dir + "/train-manifest.json") && "\(e)".contains(expect), "\(e)")
            }
        }
    }

    /// WebDataset keys split at the first dot of the file name and extensions are matched
    /// without case: `CLIP.MP4` (a camera's name) is the video of sample `CLIP`, not a member
    /// without a video that would be dropped from the split.
    func testUpperCaseVideoExtensionsAreVideos() throws {
        let dir = scratchDir("upper")
        let w = try TarWriter(path: dir + "/up-0.tar")
        try w.add(name: "CLIP.MP4", data: [UInt8](repeating: 1, count: 700))
        try w.add(name: "CLIP.cls", data: Array("2".utf8))
        try w.add(name: "b.Mov", data: [UInt8](repeating: 2, count: 100))
        try w.add(name: "b.CLS", data: Array("0\n".utf8))
        try w.finish()
        let (samples, report) = try ShardDataset.open(spec: dir + "/up-0.tar", cacheDir: nil)
        XCTAssertEqual(report.withoutVideo, [])
        XCTAssertEqual(samples.map(\.label), [2, 0])
        XCTAssertEqual(samples.map(\.range), [ArchiveRange(archive: dir + "/up-0.tar", offset: w.members[0].offset, size: 700),
                                              ArchiveRange(archive: dir + "/up-0.tar", offset: w.members[2].offset, size: 100)])
    }

    /// JSON `true` is not the count 1 (JSONSerialization gives both as NSNumber): a manifest
    /// whose counts are booleans is refused, not read as one sample or one member.
    func testManifestCountsThatAreBooleansAreRefused() throws {
        let dir = scratchDir("manifest-bool")
        func manifest(samples: String, members: String) -> String {
            let shard = "{\"tar\": \"t-0.tar\", \"index\": \"t-0.idx\", \"samples\": 1, \"members\": \(members), \"bytes\": 10240, "
                + "\"sha256\": \"x\", \"index_sha256\": \"y\"}"
            let path = dir + "/m.json"
            try? FileOutput.write("{\"format\": \"aim-shards\", \"version\": 1, \"split\": \"train\", \"pattern\": \"t-{0..0}.tar\", "
                                  + "\"samples\": \(samples), \"shards\": [\(shard)], \"skipped\": []}", to: path)
            return path
        }
        XCTAssertEqual(try ShardManifest.read(manifest(samples: "1", members: "2")).shards.first?.members, 2)
        XCTAssertThrowsError(try ShardManifest.read(manifest(samples: "true", members: "2"))) {
            XCTAssertTrue("\($0)".contains("without integer `samples`"), "\($0)")
        }
        XCTAssertThrowsError(try ShardManifest.read(manifest(samples: "1", members: "true"))) {
            XCTAssertTrue("\($0)".contains("without integer `members`"), "\($0)")
        }
    }

    /// Shards written by Python's tarfile in the WebDataset layout, without our index: the index
    /// is built on first open and stored beside them, or in the cache folder when theirs is
    /// read-only; the long (pax) key reads; the videos decode from their ranges.
    func testWebDatasetShardsWithoutIndexAreReadable() throws {
        let dir = scratchDir("wds")
        try FileManager.default.copyItem(atPath: tarFixture("webdataset_layout.tar"), toPath: dir + "/wds-000000.tar")
        let (samples, report) = try ShardDataset.open(spec: dir + "/wds-{000000..000000}.tar", cacheDir: nil)
        XCTAssertEqual(report.indexesBuilt, 1)
        XCTAssertEqual(samples.map(\.label), [3, 1])
        XCTAssertEqual((samples[1].path as NSString).lastPathComponent, String(repeating: "k", count: 112) + "_sample1.mp4")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/wds-000000.idx"))
        XCTAssertEqual(try ShardDataset.open(spec: dir + "/wds-000000.tar", cacheDir: nil).report.indexesBuilt, 0)
        for (k, s) in samples.enumerated() {
            let r = try VideoReader(path: s.path, range: s.range)
            XCTAssertEqual(r.frameCount, 8)
            let f = try r.frames(at: [0, 7])
            // tools/make_tar_fixtures.py: frame i of video k is gray 10 + 40 k + 5 i (mpeg4 is lossy).
            XCTAssertEqual(Double(f.pixels[0]), Double(10 + 40 * k), accuracy: 3)
            XCTAssertEqual(Double(f.pixels[f.pixels.count - 1]), Double(10 + 40 * k + 35), accuracy: 3)
        }
    }

    func testIndexOfShardsInAFolderItCannotBeWrittenToGoesToTheCache() throws {
        let ro = scratchDir("wds-ro"), cache = scratchDir("wds-cache")
        try FileManager.default.copyItem(atPath: tarFixture("webdataset_layout.tar"), toPath: ro + "/wds-000000.tar")
        // The index write beside the shard must fail, also for root (whom a 0555 folder does not
        // stop): a folder where its temporary file would go makes the open fail.
        try FileManager.default.createDirectory(atPath: ro + "/wds-000000.idx.tmp-\(getpid())", withIntermediateDirectories: false)
        let uncached = try ShardDataset.open(spec: ro + "/wds-000000.tar", cacheDir: nil).report
        XCTAssertEqual([uncached.indexesBuilt, uncached.indexesNotKept], [1, 1])
        let first = try ShardDataset.open(spec: ro + "/wds-000000.tar", cacheDir: cache).report
        XCTAssertEqual([first.indexesBuilt, first.indexesNotKept], [1, 0])
        XCTAssertFalse(FileManager.default.fileExists(atPath: ro + "/wds-000000.idx"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache).count, 1)
        XCTAssertEqual(try ShardDataset.open(spec: ro + "/wds-000000.tar", cacheDir: cache).report.indexesBuilt, 0)
    }
}
