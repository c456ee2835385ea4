import Foundation
import XCTest

/// One run per work dir: a second aim-train on a work dir in use is refused with the owner
/// named; the lock of a run that was killed is taken over with a warning, and `--resume auto`
/// continues that run.
final class WorkDirSharingTests: TrainToolTestCase {
    func testSecondRunIsRefusedAndADeadOwnersLockIsTakenOver() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        let args = trainArgs(data: data, workDir: wd, steps: 100_000, ["checkpoint.interval=5"])
        let log = scratch.appendingPathComponent("first.log")
        let first = try launch(try tool("aim-train"), args, log: log)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let metricsFile = wd.appendingPathComponent("metrics.jsonl")
        XCTAssertTrue(waitFor(30) {
            ((try? String(contentsOf: metricsFile, encoding: .utf8)) ?? "").split(separator: "\n").count >= 6 || !first.isRunning
        })
        XCTAssertTrue(first.isRunning, (try? String(contentsOf: log, encoding: .utf8)) ?? "")

        // The same command again: refused at once, naming the running one.
        let second = try train(args)
        XCTAssertEqual(second.status, 1, second.output)
        XCTAssertTrue(second.output.contains("\(first.processIdentifier)"), "the owner's pid is named:\n\(second.output)")
        XCTAssertTrue(second.output.contains(wd.path), second.output)
        XCTAssertFalse(second.output.contains("step 1/"), "refused before training:\n\(second.output)")

        // The owner dies without cleaning up: its lock is taken over, and the run resumes.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertTrue(FileManager.default.fileExists(atPath: wd.appendingPathComponent("aim-train.lock").path), "a killed run leaves its lock")
        let saved = Int(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"] ?? "") ?? -1
        XCTAssertGreaterThanOrEqual(saved, 5)
        let third = try train(args + ["--resume", "auto", "--max-steps", "\(saved + 5)"])
        XCTAssertEqual(third.status, 0, third.output)
        XCTAssertTrue(third.output.contains("warning") && third.output.contains("\(first.processIdentifier)"), third.output)
        XCTAssertTrue(third.output.contains("resumed from") && third.output.contains("at step \(saved)"), third.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: wd.appendingPathComponent("aim-train.lock").path), "released at the end")
        print("work dir lock: second run refused while pid \(first.processIdentifier) trained; its lock taken over after SIGKILL")
    }
}
