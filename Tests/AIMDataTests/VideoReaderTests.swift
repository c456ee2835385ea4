import AIMData
import Foundation
import XCTest

final class VideoReaderTests: XCTestCase {
    static let dir = scratchDir("reader")
    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Decodes `indices` and checks each frame's gray level names the requested index.
    func checkIndices(_ path: String, frames: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try VideoReader(path: path)
        XCTAssertEqual(r.frameCount, frames, "frame count of \(path) (\(r.frameCountSource))", file: file, line: line)
        let requests: [[Int]] = [[0, 1, 2], [17, 3, 17, 39, 0], [25], [frames - 1], [30, 31, 32, 33], Array(0..<frames)]
        for req in requests {
            let s = try r.frames(at: req)
            XCTAssertEqual(s.count, req.count)
            for (k, i) in req.enumerated() {
                let (red, _, _) = s.pixel(k, s.height / 2, s.width / 2)
                XCTAssertEqual(frameOfGray(red), i, "\(path): asked frame \(i), got gray \(red)", file: file, line: line)
            }
        }
        XCTAssertGreaterThan(r.seekDecodes, 0, "\(path): never decoded by seeking", file: file, line: line)
        // Straight to another size through libswscale.
        let small = try r.frames(at: [5, 6], size: (width: 32, height: 24))
        XCTAssertEqual(small.width, 32); XCTAssertEqual(small.height, 24)
        XCTAssertEqual(frameOfGray(small.pixel(1, 12, 16).0), 6, file: file, line: line)
    }

    func testCodecsAndContainers() throws {
        let d = Self.dir
        let cases: [(String, String, Int)] = [  // file, encoder, B-frames
            ("mpeg4.avi", "mpeg4", 0), ("mjpeg.mkv", "mjpeg", 0), ("ffv1.mkv", "ffv1", 0),
            ("mpeg4.mp4", "mpeg4", 2), ("vp9.webm", "libvpx-vp9", 0), ("h264.mp4", "libx264", 2), ("h264.mkv", "libx264", 3),
        ]
        for (name, enc, b) in cases {
            guard VideoWriter.hasEncoder(enc) else { print("skip \(name): no encoder \(enc)"); continue }
            let p = d + "/" + name
            try makeGrayVideo(p, encoder: enc, frames: 40, gop: 8, bFrames: b)
            try checkIndices(p, frames: 40)
        }
    }

    func testHEVCFromCLI() throws {
        let src = Self.dir + "/src.mkv"
        try makeGrayVideo(src, encoder: "ffv1", frames: 40)
        let p = Self.dir + "/hevc.mp4"
        guard ffmpegCLI(["-i", src, "-c:v", "libx265", "-x265-params", "log-level=none:keyint=10", "-pix_fmt", "yuv420p", p]) else {
            throw XCTSkip("ffmpeg CLI without libx265")
        }
        try checkIndices(p, frames: 40)
    }

    /// AV1 (in MP4 and WebM), made with the ffmpeg CLI's SVT-AV1 or libaom encoder.
    func testAV1FromCLI() throws {
        let src = Self.dir + "/src-av1.mkv"
        try makeGrayVideo(src, encoder: "ffv1", frames: 40)
        var made = 0
        for (name, args) in [("av1.mp4", ["-c:v", "libsvtav1", "-g", "10", "-preset", "12"]),
                             ("av1.webm", ["-c:v", "libaom-av1", "-g", "10", "-cpu-used", "8", "-row-mt", "1"])] {
            let p = Self.dir + "/" + name
            guard ffmpegCLI(["-i", src] + args + ["-pix_fmt", "yuv420p", p]) else { print("skip \(name): encoder missing"); continue }
            try checkIndices(p, frames: 40)
            made += 1
        }
        if made == 0 { throw XCTSkip("ffmpeg CLI has no AV1 encoder") }
    }

    /// The reason `VideoReader` gives for `path`, run on another thread so that a reader that
    /// opened a FIFO (blocking until a writer comes) fails the test instead of hanging it.
    func reason(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let box = ReasonBox()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { _ = try VideoReader(path: path); box.set("opened") } catch let e as VideoError {
                box.set(e.path == path ? e.reason : "wrong path \(e.path)")
            } catch { box.set("\(error)") }
            done.signal()
        }
        if done.wait(timeout: .now() + 20) == .timedOut {
            XCTFail("\(path): the reader blocked", file: file, line: line)
            // Let a reader stuck on a FIFO go: a writer that opens and closes it ends the wait.
            let fd = open(path, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 5)
            return nil
        }
        return box.value
    }

    /// Paths that are no video file say what they are (the text `data: skipping PATH: REASON`
    /// and `aim-data check` print): a directory, a device, FIFO or socket, a /proc file and a
    /// symbolic link loop are no "missing" or "empty" file. None is ever opened for reading.
    func testPathsThatAreNoFileSayWhatTheyAre() throws {
        let d = Self.dir + "/notfiles"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let directory = "a directory, not a video file", special = "not a regular file (device, FIFO or socket)"
        XCTAssertEqual(reason(d), directory)
        XCTAssertEqual(reason("/"), directory)
        try FileManager.default.createSymbolicLink(atPath: d + "/dirlink.mp4", withDestinationPath: d)
        XCTAssertEqual(reason(d + "/dirlink.mp4"), directory)

        try FileManager.default.createSymbolicLink(atPath: d + "/loop1.mp4", withDestinationPath: d + "/loop2.mp4")
        try FileManager.default.createSymbolicLink(atPath: d + "/loop2.mp4", withDestinationPath: d + "/loop1.mp4")
        XCTAssertEqual(reason(d + "/loop1.mp4"), "symbolic link loop")
        try FileManager.default.createSymbolicLink(atPath: d + "/self.mp4", withDestinationPath: "self.mp4")
        XCTAssertEqual(reason(d + "/self.mp4"), "symbolic link loop")

        XCTAssertEqual(mkfifo(d + "/fifo.mp4", 0o600), 0)
        XCTAssertEqual(reason(d + "/fifo.mp4"), special)
        XCTAssertEqual(reason("/dev/zero"), special)
        XCTAssertEqual(reason("/dev/urandom"), special)
        XCTAssertEqual(reason("/dev/null"), special)
        #if os(Linux)
        XCTAssertEqual(reason("/proc/self/mem"), "not a regular file (a /proc or /sys pseudo-file)")
        XCTAssertEqual(reason("/proc/self/status"), "not a regular file (a /proc or /sys pseudo-file)")
        #endif

        // Missing stays missing: no such file, a dangling link, a path through a file.
        XCTAssertEqual(reason(d + "/nope.mp4"), "missing file")
        try FileManager.default.createSymbolicLink(atPath: d + "/dangling.mp4", withDestinationPath: d + "/gone.mp4")
        XCTAssertEqual(reason(d + "/dangling.mp4"), "missing file")
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/plain.txt", contents: Data("x".utf8)))
        XCTAssertEqual(reason(d + "/plain.txt/a.mp4"), "missing file")
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/zero.mp4", contents: Data()))
        XCTAssertEqual(reason(d + "/zero.mp4"), "empty file (0 bytes)")
    }

    /// A short MPEG-TS file (streams start at 1.48 s there, and seeking is by timestamps): every
    /// frame decodes in order. A seek back to its first timestamp landed past frames or at the
    /// end, so a whole 40-frame .ts was refused as "truncated: 0 of 40 frames decode".
    func testShortTransportStreamDecodesWhole() throws {
        let path = Self.dir + "/short.ts"
        try makeGrayVideo(path, encoder: "mpeg2video", frames: 40)
        let r = try VideoReader(path: path)
        XCTAssertEqual(r.frameCount, 40)
        for req in [Array(0..<40), [39, 0, 17], [25, 26, 3]] {
            let s = try r.frames(at: req)
            for (k, i) in req.enumerated() { XCTAssertEqual(frameOfGray(s.pixel(k, s.height / 2, s.width / 2).0), i, "frame \(i) of \(req)") }
        }
    }

    /// Decoded frames equal, byte for byte, what FFmpeg's own conversion (the scale filter that
    /// decord decodes through) gives: untagged (BT.601), tagged BT.709, tagged BT.601 and full
    /// range. Converting with libswscale's defaults read BT.709 as BT.601 (39 levels off).
    func testColoursFollowTheTaggedMatrixAndRangeAsFFmpegsScaleFilter() throws {
        let d = Self.dir, source = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1"]
        let variants: [(String, [String])] = [
            ("untagged", ["-pix_fmt", "yuv420p"]),
            ("bt709", ["-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]),
            ("bt601", ["-pix_fmt", "yuv420p", "-colorspace", "smpte170m", "-color_range", "tv"]),
            ("full", ["-pix_fmt", "yuvj420p"]),
        ]
        for (name, tags) in variants {
            let video = d + "/colour-\(name).mp4", raw = d + "/colour-\(name).rgb"
            guard ffmpegCLI(source + ["-c:v", "libx264", "-crf", "12"] + tags + [video]),
                  ffmpegCLI(["-i", video, "-pix_fmt", "rgb24", "-f", "rawvideo", raw]) else {
                throw XCTSkip("the ffmpeg command-line tool with libx264 is needed to write and convert the videos")
            }
            let r = try VideoReader(path: video)
            XCTAssertEqual(r.frameCount, 10, name)
            let ours = try r.frames(at: Array(0..<r.frameCount)).pixels
            let theirs = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
            XCTAssertEqual(ours.count, theirs.count, name)
            let off = zip(ours, theirs).map { abs(Int($0) - Int($1)) }
            XCTAssertEqual(off.max(), 0, "\(name): \(off.filter { $0 > 0 }.count) of \(off.count) values differ")
        }
    }

    func testBadFilesNameTheReason() throws {
        let d = Self.dir
        func expect(_ path: String, _ check: (VideoError) -> Bool) {
            do { _ = try VideoReader(path: path); XCTFail("\(path) opened") } catch let e as VideoError {
                XCTAssertEqual(e.path, path)
                XCTAssertTrue(check(e), "\(path): unexpected \(e)")
            } catch { XCTFail("\(path): \(error)") }
        }
        expect(d + "/nope.mp4") { if case .missing = $0 { return true }; return false }
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/empty.mp4", contents: Data()))
        expect(d + "/empty.mp4") { if case .empty = $0 { return true }; return false }
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/text.txt", contents: "hello video\n".data(using: .utf8)))
        expect(d + "/text.txt") { if case .notAVideo = $0 { return true }; return false }
        var g = SystemRandomNumberGenerator()
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/random.mp4", contents: Data((0..<5000).map { _ in UInt8.random(in: 0...255, using: &g) })))
        expect(d + "/random.mp4") { _ in true }
        if ffmpegCLI(["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", d + "/audio.wav"]) {
            expect(d + "/audio.wav") { if case .audioOnly = $0 { return true }; return false }
        }
        // A still image under a video's name opens as a one-frame "video" (png_pipe): refused.
        let png = d + "/still.png"
        let w = try VideoWriter(path: png, encoder: "png", width: 16, height: 16)
        try w.append(rgb: [UInt8](repeating: 200, count: 16 * 16 * 3))
        try w.finish()
        try FileManager.default.moveItem(atPath: png, toPath: d + "/still.mp4")
        expect(d + "/still.mp4") { if case .notAVideo(_, let r) = $0 { return r.contains("still image") }; return false }
        // A cut-off AVI loses its index: FFmpeg no longer recognises it.
        let full = d + "/full.avi"
        try makeGrayVideo(full, encoder: "mpeg4", frames: 40)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/cut.avi", contents: bytes.prefix(bytes.count / 2)))
        expect(d + "/cut.avi") { _ in true }
        // A cut-off Matroska file states no frame count, but its header keeps the duration: the
        // packets that remain fall short of it (it opened with the frames left, before).
        let mkv = d + "/full.mkv"
        try makeGrayVideo(mkv, encoder: "mpeg4", frames: 40)
        XCTAssertEqual(try VideoReader(path: mkv).frameCount, 40)
        let mkvBytes = try Data(contentsOf: URL(fileURLWithPath: mkv))
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/cut.mkv", contents: mkvBytes.prefix(mkvBytes.count / 2)))
        expect(d + "/cut.mkv") { if case .truncated(_, let promised, let n) = $0 { return n < 40 && (38...42).contains(promised) }; return false }
        // A cut-off MP4 with its header in front still promises 40 frames.
        let fast = d + "/faststart.mp4"
        if ffmpegCLI(["-i", full, "-c:v", "libx264", "-g", "8", "-movflags", "+faststart", fast]) {
            let b = try Data(contentsOf: URL(fileURLWithPath: fast))
            XCTAssertTrue(FileManager.default.createFile(atPath: d + "/cut.mp4", contents: b.prefix(b.count * 2 / 3)))
            expect(d + "/cut.mp4") { if case .truncated(_, 40, let n) = $0 { return n < 40 }; return false }
        }
    }
}

/// One string handed from a reader thread to the test.
final class ReasonBox: @unchecked Sendable {
    private let lock = NSLock()
    private var v: String?
    func set(_ s: String) { lock.lock(); v = s; lock.unlock() }
    var value: String? { lock.lock(); defer { lock.unlock() }; return v }
}
