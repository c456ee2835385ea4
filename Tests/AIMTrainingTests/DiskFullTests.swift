import Foundation
import XCTest

/// A full disk never crashes a run and never passes for a finished one: the work dir sits on a
/// small tmpfs mounted for the test (skipped, with the reason, where mounting is not allowed).
final class DiskFullTests: TrainToolTestCase {
    /// Mounts a tmpfs of `kilobytes` at a fresh folder, unmounted when the test ends.
    func smallFilesystem(kilobytes: Int) throws -> URL {
        let dir = scratch.appendingPathComponent("small-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let r = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", dir.path], limit: 20)
        guard r.status == 0 else { throw XCTSkip("cannot mount a small tmpfs here (needs root): \(r.output)") }
        addTeardownBlock { _ = try? self.run("/bin/umount", ["-l", dir.path], limit: 20) }
        return dir
    }

    /// Fills the filesystem of `dir` to the last byte.
    func fill(_ dir: URL) {
        let fd = open(dir.appendingPathComponent("filler").path, O_WRONLY | O_CREAT, 0o644)
        var block = [UInt8](repeating: 0, count: 4096)
        while write(fd, &block, block.count) > 0 {}
        close(fd)
    }

    func testTooSmallAWorkDirIsRefusedBeforeTheFirstStep() throws {
        let data = try makeDataset()
        let small = try smallFilesystem(kilobytes: 400)  // a tiny-model checkpoint is ~340 KB
        let r = try train(trainArgs(data: data, workDir: small.appendingPathComponent("wd"), steps: 4))
        XCTAssertEqual(r.status, 74, r.output)
        XCTAssertTrue(r.output.contains("needs room for at least two"), r.output)
        XCTAssertFalse(r.output.contains("step 1/"), "refused before any step:\n\(r.output)")
        print("disk full: a 400 KB work dir refused up front with status \(r.status)")
    }

    /// Checkpoints fill the disk mid-run: each failure names the file, the error and the room
    /// left; `latest` keeps pointing at the newest complete checkpoint; after
    /// `checkpoint.max_failures` in a row the run stops with 74 instead of training on.
    func testRepeatedCheckpointFailuresStopTheRun() throws {
        let data = try makeDataset()
        let small = try smallFilesystem(kilobytes: 1200)
        let wd = small.appendingPathComponent("wd")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 60, ["checkpoint.max_failures=2"]))
        XCTAssertFalse(r.signalled, r.output)
        XCTAssertFalse(r.output.contains("Fatal error"), r.output)
        XCTAssertEqual(r.status, 74, r.output)
        XCTAssertTrue(r.output.contains("No space left on device") && r.output.contains("free on that filesystem"), r.output)
        XCTAssertTrue(r.output.contains("2 checkpoints in a row could not be written"), r.output)
        let saved = stepFiles(wd)
        XCTAssertGreaterThanOrEqual(saved.count, 2, "checkpoints before the disk filled: \(saved)")
        let latestStep = Int(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"] ?? "") ?? -1
        XCTAssertEqual(String(format: "step_%08d.safetensors", latestStep), saved.last, "latest is the newest complete checkpoint")
        let trained = try metrics(wd).compactMap { $0["step"] as? Int }.max() ?? 0
        XCTAssertLessThan(trained, 60, "stopped instead of computing steps it cannot keep")
        XCTAssertEqual(trained, latestStep + 2 * 2, "two failed intervals of 2 steps after the last checkpoint")
        // What is on disk resumes: the newest checkpoint reads back whole.
        XCTAssertEqual(try tunable(wd.appendingPathComponent("latest.safetensors")).isEmpty, false)
        print("disk full: checkpoints to step \(latestStep), stopped at step \(trained) with status \(r.status)")
    }

    /// The disk fills while training runs: metrics.jsonl appends fail with a message (no crash),
    /// training goes on, and the final checkpoint that cannot be written makes the exit status 74.
    func testMetricsAndFinalCheckpointOnAFullDisk() throws {
        let data = try makeDataset()
        let small = try smallFilesystem(kilobytes: 1200)
        let wd = small.appendingPathComponent("wd")
        let log = scratch.appendingPathComponent("full.log")
        let p = try launch(try tool("aim-train"), trainArgs(data: data, workDir: wd, steps: 150, ["checkpoint.interval=1000"]), log: log)
        let metricsFile = wd.appendingPathComponent("metrics.jsonl")
        XCTAssertTrue(waitFor(30) {
            ((try? String(contentsOf: metricsFile, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3 || !p.isRunning
        })
        fill(small)
        let r = wait(p, log: log, limit: 120)
        XCTAssertFalse(r.signalled, r.output)
        XCTAssertFalse(r.output.contains("Fatal error"), r.output)
        XCTAssertTrue(r.output.contains("metrics record not written") && r.output.contains("metrics.jsonl"), r.output)
        XCTAssertTrue(r.output.contains("could not be written, so this run is not complete"), r.output)
        XCTAssertEqual(r.status, 74, r.output)
        // Every record that reached the file is whole JSON.
        XCTAssertNoThrow(try metrics(wd))
        print("disk full: metrics write failures reported, final checkpoint failed, status \(r.status)")
    }

    /// A report that cannot be written names the file, the error and the room left, with status 74.
    func testReportOnAFullDisk() throws {
        let small = try smallFilesystem(kilobytes: 64)
        fill(small)
        let r = try run(try tool("aim-report"), ["efficiency", "--config", Self.tinyConfig, "--set", "model.pretrained=", "--steps", "1",
                                                 "--threads", "1", "--out", small.appendingPathComponent("report").path], limit: 120)
        XCTAssertFalse(r.signalled, r.output)
        XCTAssertEqual(r.status, 74, r.output)
        XCTAssertTrue(r.output.contains("write failed: No space left on device") && r.output.contains("free on that filesystem"), r.output)
    }
}
