import AIMData
import Foundation
import XCTest

/// Gray level of frame `i` in the test videos: distinct steps of 5, so a lossy codec's
/// error of a few levels still identifies the frame.
func grayLevel(_ i: Int) -> Int { 10 + 5 * (i % 48) }

/// Which frame a decoded gray level came from (the nearest step).
func frameOfGray(_ v: UInt8) -> Int { Int((Double(Int(v) - 10) / 5).rounded()) }

/// A scratch folder removed at the end of the test case.
func scratchDir(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "aimdata-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Writes a video whose frame i is uniformly `grayLevel(i)`.
func makeGrayVideo(_ path: String, encoder: String, frames: Int, width: Int = 64, height: Int = 48,
                   gop: Int = 12, bFrames: Int = 0) throws {
    let w = try VideoWriter(path: path, encoder: encoder, width: width, height: height, gop: gop, bFrames: bFrames)
    for i in 0..<frames {
        try w.append(rgb: [UInt8](repeating: UInt8(grayLevel(i)), count: width * height * 3))
    }
    try w.finish()
}

/// Runs the ffmpeg CLI (quiet); returns false when it fails (e.g. encoder missing).
@discardableResult
func ffmpegCLI(_ args: [String]) -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
    p.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}
