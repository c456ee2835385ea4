import Foundation
import XCTest

/// Issue 5: `--resume auto` picks the newest checkpoint that reads back whole; a truncated or
/// corrupt newer one is reported by name and skipped.
final class CorruptCheckpointTests: TrainToolTestCase {
    func testTruncatedAndGarbageCheckpointsAreSkipped() throws {
        let data = try makeDataset()
        let wd = workDir("wd"), clean = workDir("clean")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 6))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(stepFiles(wd), ["step_00000002.safetensors", "step_00000004.safetensors", "step_00000006.safetensors"])
        r = try train(trainArgs(data: data, workDir: clean, steps: 6))
        XCTAssertEqual(r.status, 0, r.output)

        // Newest: cut in half (a crash of a writer that did not rename). Next: garbage bytes over its header.
        let six = stepFile(wd, 6), four = stepFile(wd, 4)
        let whole = try Data(contentsOf: six)
        try whole.prefix(whole.count / 2).write(to: six)
        var garbage = try Data(contentsOf: four)
        for i in 0..<64 { garbage[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
        try garbage.write(to: four)

        r = try train(trainArgs(data: data, workDir: wd, steps: 6) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        for bad in [six, four] {
            let line = r.output.split(separator: "\n").first { $0.contains(bad.lastPathComponent) && $0.contains("skipped") }
            XCTAssertNotNil(line, "\(bad.lastPathComponent) is not reported as skipped:\n\(r.output)")
        }
        XCTAssertTrue(r.output.contains("resumed from \(stepFile(wd, 2).path) at step 2"), r.output)
        // Steps 3-6 run again from the step-2 state: the same end as the clean run, bit for bit.
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")),
                       try rawTensors(clean.appendingPathComponent("latest.safetensors")))

        // Nothing valid at all: reported, and training starts from step 0.
        let lone = workDir("lone")
        try FileManager.default.createDirectory(at: lone.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
        try Data("not a checkpoint".utf8).write(to: stepFile(lone, 8))
        r = try train(trainArgs(data: data, workDir: lone, steps: 2) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("step_00000008.safetensors"), r.output)
        XCTAssertTrue(r.output.contains("starting from step 0"), r.output)

        // An explicit --resume PATH that is corrupt is an error naming the file, not a silent restart.
        let cut = scratch.appendingPathComponent("cut.safetensors")
        try whole.prefix(whole.count - 100).write(to: cut)
        r = try train(trainArgs(data: data, workDir: lone, steps: 2) + ["--resume", cut.path])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(cut.path), r.output)
        XCTAssertFalse(r.output.contains("step 1/"), "trained from scratch instead: \(r.output)")
    }
}
