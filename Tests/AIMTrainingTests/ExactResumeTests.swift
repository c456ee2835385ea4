import Foundation
import XCTest

/// Issue 5, exact resume: a run killed with SIGKILL at any moment — between steps or in the
/// middle of writing a checkpoint — and resumed with `--resume auto` ends with bitwise the same
/// weights and AdamW moments as the run that was never interrupted (same rank and thread count).
final class ExactResumeTests: TrainToolTestCase {
    let steps = 30

    func assertBitwiseEqual(_ a: URL, _ b: URL, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try rawTensors(a), y = try rawTensors(b)
        XCTAssertEqual(Set(x.keys), Set(y.keys), what, file: file, line: line)
        let differing = x.keys.filter { x[$0] != y[$0] }.sorted()
        XCTAssertTrue(differing.isEmpty, "\(what): \(differing.count) tensors differ, e.g. \(differing.prefix(3))", file: file, line: line)
        XCTAssertEqual(try metadata(a)["step"], "\(steps)", file: file, line: line)
        XCTAssertEqual(try metadata(b)["step"], "\(steps)", file: file, line: line)
    }

    func reference(_ data: URL, _ extra: [String]) throws -> URL {
        let wd = workDir("uninterrupted")
        let r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra))
        XCTAssertEqual(r.status, 0, r.output)
        return wd.appendingPathComponent("latest.safetensors")
    }

    /// SIGKILL as soon as the step-10 checkpoint appears, then resume: bitwise equal.
    func testSIGKILLAfterACheckpointResumesBitwise() throws {
        let data = try makeDataset()
        let extra = ["checkpoint.interval=2"]
        let expected = try reference(data, extra)

        let wd = workDir("killed")
        let log = scratch.appendingPathComponent("killed.log")
        let p = try launch(try tool("aim-train"), trainArgs(data: data, workDir: wd, steps: steps, extra), log: log)
        let target = stepFile(wd, 10)
        XCTAssertTrue(waitFor(30) { FileManager.default.fileExists(atPath: target.path) || !p.isRunning }, "no step-10 checkpoint")
        kill(p.processIdentifier, SIGKILL)
        let killed = wait(p, log: log, limit: 30)
        XCTAssertTrue(killed.signalled, "the run ended before the kill: \(killed.output)")
        let newest = try XCTUnwrap(stepFiles(wd).last)
        XCTAssertLessThan(newest, String(format: "step_%08d.safetensors", steps), "the kill came too late to test anything")

        let r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from"), r.output)
        print("exact resume: killed with newest checkpoint \(newest); resumed run is bitwise equal")
        try assertBitwiseEqual(expected, wd.appendingPathComponent("latest.safetensors"), "SIGKILL after \(newest) and resume")
    }

    /// A checkpoint every step and repeated kills, resuming each time: every other kill lands in
    /// the middle of a checkpoint write (as soon as its temporary file exists), the others at a
    /// random moment. The newest complete checkpoint always reads back, and the end result is
    /// still bitwise the uninterrupted one.
    func testSIGKILLInTheMiddleOfCheckpointWrites() throws {
        let data = try makeDataset()
        let extra = ["checkpoint.interval=1", "checkpoint.keep_last=2"]
        let expected = try reference(data, extra)
        let wd = workDir("kills")
        let exe = try tool("aim-train")
        var rng = SystemRandomNumberGenerator()
        var kills = 0, midWrite = 0
        for attempt in 0..<8 {
            let log = scratch.appendingPathComponent("attempt-\(attempt).log")
            let stale = Set(leftovers(wd))
            let p = try launch(exe, trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto"], log: log)
            if attempt % 2 == 0 {
                _ = waitFor(20) { !Set(leftovers(wd)).subtracting(stale).isEmpty || !p.isRunning }
            } else {
                let seen = stepFiles(wd).last
                _ = waitFor(20) { stepFiles(wd).last != seen || !p.isRunning }
                usleep(UInt32.random(in: 0...120_000, using: &rng))
            }
            kill(p.processIdentifier, SIGKILL)
            let r = wait(p, log: log, limit: 30)
            guard r.signalled else {  // it finished first
                XCTAssertEqual(r.status, 0, r.output)
                break
            }
            kills += 1
            if !Set(leftovers(wd)).subtracting(stale).isEmpty { midWrite += 1 }
            // Whatever the moment, the newest complete step file reads back.
            if let newest = stepFiles(wd).last {
                XCTAssertNoThrow(try rawTensors(wd.appendingPathComponent("checkpoints/\(newest)")), "\(newest) after kill \(kills)")
            }
            if kills >= 6 { break }
        }
        let r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from"), r.output)
        print("exact resume: \(kills) SIGKILLs, \(midWrite) of them in the middle of a checkpoint write; final weights bitwise equal")
        XCTAssertGreaterThanOrEqual(kills, 4, "the run finished before it could be killed often enough")
        XCTAssertGreaterThanOrEqual(midWrite, 1, "no kill landed inside a checkpoint write")
        XCTAssertEqual(leftovers(wd), [], "the killed writers' temporary files are cleaned up by the next run")
        try assertBitwiseEqual(expected, wd.appendingPathComponent("latest.safetensors"), "after \(kills) SIGKILLs")
    }

    /// Temporary files of interrupted writes (`<name>.tmp-<pid>`, `.<name>.tmp-<pid>`).
    func leftovers(_ wd: URL) -> [String] {
        let dirs = [wd, wd.appendingPathComponent("checkpoints")]
        return dirs.flatMap { d in ((try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? []).filter { $0.contains(".tmp-") } }
    }
}
