import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// `aim-train` writes TensorBoard event files beside metrics.jsonl: read back with our own
/// record reader (both CRCs checked), they hold the same numbers at the same steps; a run that
/// is resumed after losing steps leaves each tag's steps strictly increasing, none twice; under
/// two ranks only rank 0 writes; a full disk costs records, not the run.
final class TensorBoardTrainingTests: TrainToolTestCase {
    struct Point: Equatable { let step: Int64; let value: Float }

    /// Every scalar of the work dir's event files, read in the order TensorBoard reads the files.
    func scalars(_ wd: URL) throws -> (files: [URL], byTag: [String: [Point]]) {
        let files = TensorBoardEventFile.files(in: wd.appendingPathComponent("tensorboard"))
        var byTag: [String: [Point]] = [:]
        for f in files {
            let events = try TensorBoardEventFile.read(f)
            XCTAssertEqual(events.first?.fileVersion, "brain.Event:2", "\(f.lastPathComponent) starts with its file_version event")
            for e in events { for s in e.scalars { byTag[s.tag, default: []].append(Point(step: e.step, value: s.value)) } }
        }
        return (files, byTag)
    }

    /// The scalars metrics.jsonl implies: `mode/key` at each record's step; a step recorded
    /// again (computed again after a resume) keeps its last record.
    func expected(_ wd: URL) throws -> [String: [Point]] {
        var last: [String: [Int: Float]] = [:]
        for r in try metrics(wd) {
            guard let mode = r["mode"] as? String, let step = r["step"] as? Int, let keys = TensorBoardLog.scalarKeys[mode] else { continue }
            for k in keys { if let v = r[k] as? Double { last["\(mode)/\(k)", default: [:]][step] = Float(v) } }
        }
        return last.mapValues { $0.sorted { $0.key < $1.key }.map { Point(step: Int64($0.key), value: $0.value) } }
    }

    func assertStrictlyIncreasing(_ byTag: [String: [Point]], file: StaticString = #filePath, line: UInt = #line) {
        for (tag, points) in byTag {
            let steps = points.map(\.step)
            XCTAssertEqual(steps, Array(Set(steps)).sorted(), "\(tag): steps must be strictly increasing, none twice: \(steps)", file: file, line: line)
        }
    }

    func testEventsHoldTheNumbersOfMetricsJSONL() throws {
        let data = try makeDataset()
        let wd = workDir("run")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 6, ["eval.interval=3"]))
        XCTAssertEqual(r.status, 0, r.output)
        let (files, got) = try scalars(wd)
        XCTAssertEqual(files.count, 1)
        XCTAssertTrue(files[0].lastPathComponent.hasPrefix("events.out.tfevents."), files[0].path)
        let want = try expected(wd)
        XCTAssertEqual(Set(got.keys), ["train/loss", "train/top1", "train/lr", "train/clips_per_s", "train/time", "train/data_time",
                                       "val/top1", "val/top5", "val/mean_class_accuracy"])
        XCTAssertEqual(got, want)
        XCTAssertEqual(got["train/loss"]?.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(got["val/top1"]?.map(\.step), [3, 6])
        print("tensorboard: \(got.values.reduce(0) { $0 + $1.count }) scalars in \(files[0].lastPathComponent) equal metrics.jsonl")
    }

    /// Stopped at step 3 and resumed to 6; then the checkpoint of step 6 is lost (as when a run
    /// dies after logging steps it never saved) and the run resumes from step 4 to 8: the events
    /// of steps 5 and 6 from the lost run are gone, every step appears once, in order.
    func testResumedRunsLeaveEachStepOnceInOrder() throws {
        let data = try makeDataset()
        let wd = workDir("resumed")
        let args = trainArgs(data: data, workDir: wd, steps: 8, ["eval.interval=2"])
        var r = try train(args + ["--max-steps", "3"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try train(args + ["--resume", "auto", "--max-steps", "6"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step 3"), r.output)
        var (_, got) = try scalars(wd)
        XCTAssertEqual(got["train/loss"]?.map(\.step), [1, 2, 3, 4, 5, 6])

        try FileManager.default.removeItem(at: stepFile(wd, 6))
        r = try train(args + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("at step 4"), r.output)
        XCTAssertTrue(r.output.contains("tensorboard:") && r.output.contains("after step 4"), "the trim is reported:\n\(r.output)")
        (_, got) = try scalars(wd)
        assertStrictlyIncreasing(got)
        XCTAssertEqual(got["train/loss"]?.map(\.step), [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(got["val/top1"]?.map(\.step), [2, 3, 4, 6, 8])
        XCTAssertEqual(got, try expected(wd), "the events are the last record of each step in metrics.jsonl")
        let trainSteps = try metrics(wd).filter { $0["mode"] as? String == "train" }.compactMap { $0["step"] as? Int }
        XCTAssertEqual(trainSteps, [1, 2, 3, 4, 5, 6, 7, 8], "metrics.jsonl drops the lost run's steps 5 and 6 too")
        XCTAssertTrue(r.output.contains("metrics.jsonl: removed") && r.output.contains("after step 4"), r.output)
    }

    /// SIGKILL at random moments (mid-step, mid-record, mid-trim) and `--resume auto` each time,
    /// then to the end: every step once and in order, each the last computation of that step.
    func testKilledAndResumedRunsLeaveEachStepOnce() throws {
        let data = try makeDataset()
        let wd = workDir("killed")
        let args = trainArgs(data: data, workDir: wd, steps: 40, ["checkpoint.interval=4", "eval.interval=5"]) + ["--resume", "auto"]
        let exe = try tool("aim-train")
        var rng = SystemRandomNumberGenerator()
        var kills = 0
        for attempt in 0..<5 {
            let log = scratch.appendingPathComponent("attempt-\(attempt).log")
            let p = try launch(exe, args, log: log)
            let before = (try? metrics(wd).count) ?? 0
            _ = waitFor(20) { ((try? self.metrics(wd).count) ?? 0) > before + 2 || !p.isRunning }
            usleep(UInt32.random(in: 0...150_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            let r = wait(p, log: log, limit: 30)
            if !r.signalled { XCTAssertEqual(r.status, 0, r.output); break }
            kills += 1
        }
        let r = try train(args)
        XCTAssertEqual(r.status, 0, r.output)
        let (files, got) = try scalars(wd)
        assertStrictlyIncreasing(got)
        XCTAssertEqual(got["train/loss"]?.map(\.step), (1...40).map(Int64.init))
        XCTAssertEqual(got["val/top1"]?.map(\.step), [5, 10, 15, 20, 25, 30, 35, 40])
        XCTAssertEqual(got, try expected(wd))
        XCTAssertGreaterThan(kills, 0, "the run finished before any kill")
        print("tensorboard: \(kills) SIGKILLs and resumes, \(files.count) event files, every step once")
    }

    func testOnlyRankZeroWrites() throws {
        let data = try makeDataset()
        let wd = workDir("two-ranks")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 3), ranks: 2, limit: 120)
        XCTAssertEqual(r.status, 0, r.output)
        let (files, got) = try scalars(wd)
        XCTAssertEqual(files.count, 1, "\(files)")
        XCTAssertEqual(got["train/loss"]?.map(\.step), [1, 2, 3])
        XCTAssertEqual(got, try expected(wd))
    }

    /// The disk fills under an open event file: one message, the records are lost, nothing
    /// half-written stays, and writing resumes (with a message) when there is room again.
    func testAFullDiskCostsRecordsNotTheRun() throws {
        let small = scratch.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        let m = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small.path], limit: 20)
        guard m.status == 0 else { throw XCTSkip("cannot mount a small tmpfs here (needs root): \(m.output)") }
        addTeardownBlock { _ = try? self.run("/bin/umount", ["-l", small.path], limit: 20) }

        var messages: [String] = []
        let log = try TensorBoardLog(workDir: small, continuingAfter: 0) { messages.append($0) }
        log.record(["mode": "train", "step": 1, "loss": 1.0])
        let filler = small.appendingPathComponent("filler")
        let fd = open(filler.path, O_WRONLY | O_CREAT, 0o644)
        var block = [UInt8](repeating: 0, count: 1024)
        while write(fd, &block, block.count) > 0 {}
        close(fd)
        // The file's last page may still have room: log until a record does not fit.
        var step = 2
        while log.failedRecords == 0 && step < 2000 { log.record(["mode": "train", "step": step, "loss": Double(step)]); step += 1 }
        XCTAssertEqual(log.failedRecords, 1, "the disk never filled")
        let firstLost = step - 1
        for _ in 0..<2 { log.record(["mode": "train", "step": step, "loss": Double(step)]); step += 1 }
        XCTAssertEqual(log.failedRecords, 3)
        XCTAssertEqual(messages.filter { $0.contains("error: TensorBoard event not written") }.count, 1, "\(messages)")
        XCTAssertTrue(messages.first?.contains("No space left on device") == true, "\(messages)")
        try FileManager.default.removeItem(at: filler)
        log.record(["mode": "train", "step": step, "loss": Double(step)])
        XCTAssertEqual(log.failedRecords, 0)
        XCTAssertTrue(messages.last?.contains("again after 3 lost record(s)") == true, "\(messages)")
        // No half record stays behind: the file reads whole, without the three lost steps.
        let steps = try TensorBoardEventFile.read(log.file).map(\.step)
        XCTAssertEqual(steps, [0] + (1..<firstLost).map(Int64.init) + [Int64(step)])
        print("tensorboard: disk full after step \(firstLost - 1); 3 records lost, writing resumed at step \(step)")
    }
}
