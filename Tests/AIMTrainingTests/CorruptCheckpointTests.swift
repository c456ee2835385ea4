import Foundation
import XCTest

/// Issue 5: `--resume auto` picks the newest checkpoint that reads back whole; a truncated or
/// corrupt newer one is reported by name and skipped.
final class CorruptCheckpointTests: TrainToolTestCase {
    func testTruncatedAndGarbageCheckpointsAreSkipped() throws {
        let data = try makeDataset()
        let wd = workDir("wd"), clean = workDir("clean")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 8))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(stepFiles(wd), (1...4).map { String(format: "step_%08d.safetensors", 2 * $0) })
        r = try train(trainArgs(data: data, workDir: clean, steps: 8))
        XCTAssertEqual(r.status, 0, r.output)

        // Newest: cut short (a writer that died without renaming would leave no such file, but a
        // disk can). Next: garbage over its header. Next: bytes flipped inside the data, header intact.
        let eight = stepFile(wd, 8), six = stepFile(wd, 6), four = stepFile(wd, 4)
        let whole = try Data(contentsOf: eight)
        try whole.prefix(whole.count / 2).write(to: eight)
        var garbage = try Data(contentsOf: six)
        for i in 0..<64 { garbage[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
        try garbage.write(to: six)
        var flipped = try Data(contentsOf: four)
        for i in 0..<16 { flipped[flipped.count / 2 + i] ^= 0x5A }
        try flipped.write(to: four)

        r = try train(trainArgs(data: data, workDir: wd, steps: 8) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        for bad in [eight, six, four] {
            let line = r.output.split(separator: "\n").first { $0.contains(bad.lastPathComponent) && $0.contains("skipped") }
            XCTAssertNotNil(line, "\(bad.lastPathComponent) is not reported as skipped:\n\(r.output)")
        }
        XCTAssertTrue(r.output.contains("resumed from \(stepFile(wd, 2).path) at step 2"), r.output)
        // Steps 3-8 run again from the step-2 state: the same end as the clean run, bit for bit.
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")),
                       try rawTensors(clean.appendingPathComponent("latest.safetensors")))

        // aim-eval and aim-predict check the data checksum as --resume does: a copy of a checkpoint with
        // bytes flipped inside its data is refused by name (it evaluated before); the whole one evaluates.
        var damaged = try Data(contentsOf: stepFile(clean, 8))
        for i in 0..<16 { damaged[damaged.count / 2 + i] ^= 0x5A }
        let damagedFile = scratch.appendingPathComponent("damaged.safetensors")
        try damaged.write(to: damagedFile)
        let evalArgs = ["--config", Self.tinyConfig, "--threads", "1", "--set", "data.root=\(data.path)",
                        "--set", "data.val=\(data.path)/val_list.txt", "--set", "model.num_classes=4", "--set", "model.pretrained="]
        for exe in ["aim-eval", "aim-predict"] {
            let extra = exe == "aim-predict" ? [data.appendingPathComponent("videos/val").path] : []
            let refused = try run(try tool(exe), evalArgs + ["--checkpoint", damagedFile.path] + extra)
            XCTAssertEqual(refused.status, 1, refused.output)
            XCTAssertTrue(refused.output.contains(damagedFile.path) && refused.output.contains("checksum"), refused.output)
            let whole = try run(try tool(exe), evalArgs + ["--checkpoint", stepFile(clean, 8).path] + extra)
            XCTAssertEqual(whole.status, 0, whole.output)
        }

        // Resuming a run already at (or past) its last step says so, trains nothing and changes nothing.
        let finished = try rawTensors(clean.appendingPathComponent("latest.safetensors"))
        for (steps, word) in [(8, "already"), (6, "past")] {
            r = try train(trainArgs(data: data, workDir: clean, steps: steps) + ["--resume", "auto"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("nothing to train: resumed at step 8, \(word) the run's \(steps) steps"), r.output)
            XCTAssertFalse(r.output.contains("step 9/"), r.output)
            XCTAssertEqual(try rawTensors(clean.appendingPathComponent("latest.safetensors")), finished)
        }

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

        // A counter in the metadata (outside the checksum) that is not a count: an error naming the
        // file and the key, not a trap in the optimizer.
        var header = try Data(contentsOf: stepFile(clean, 8))
        let from = Data("\"optimizer_step\":\"8\"".utf8), to = Data("\"optimizer_step\":\"x\"".utf8)
        let at = try XCTUnwrap(header.range(of: from), "the checkpoint's header holds \"optimizer_step\":\"8\"")
        header.replaceSubrange(at, with: to)
        let edited = scratch.appendingPathComponent("edited.safetensors")
        try header.write(to: edited)
        r = try train(trainArgs(data: data, workDir: workDir("edited"), steps: 2) + ["--resume", edited.path])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(edited.path) && r.output.contains("optimizer_step"), r.output)

        // A count too large to step once more (Int.max overflowed, a trap): the same kind of error.
        // The header grows, so its 8-byte little-endian length grows with it.
        var big = try Data(contentsOf: stepFile(clean, 8))
        let huge = Data("\"optimizer_step\":\"9223372036854775807\"".utf8)
        big.replaceSubrange(try XCTUnwrap(big.range(of: from)), with: huge)
        let length = big.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let grown = length + UInt64(huge.count - from.count)
        big.replaceSubrange(0..<8, with: (0..<8).map { UInt8(truncatingIfNeeded: grown >> (8 * UInt64($0))) })
        let overflowing = scratch.appendingPathComponent("overflowing.safetensors")
        try big.write(to: overflowing)
        r = try train(trainArgs(data: data, workDir: workDir("overflowing"), steps: 2) + ["--resume", overflowing.path])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(overflowing.path) && r.output.contains("optimizer_step") && r.output.contains("not a count"), r.output)
    }
}
