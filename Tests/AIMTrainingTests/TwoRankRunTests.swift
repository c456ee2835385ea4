import AIMTensor
import Foundation
import XCTest

/// Issue 5: `mpirun -n 2 --oversubscribe bin/aim-train` on the tiny config runs to the end; rank 0
/// alone writes metrics.jsonl and the checkpoints; only the tunable gradients are allreduced:
/// 4 bytes × tunable parameters per step.
final class TwoRankRunTests: TrainToolTestCase {
    func testTwoRanksRunAndOnlyRankZeroWrites() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        let steps = 6
        let r = try train(trainArgs(data: data, workDir: wd, steps: steps, ["eval.interval=3"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)

        // One writer: each step and each evaluation is recorded once, and the banner is printed once.
        let records = try metrics(wd)
        let trainSteps = records.filter { ($0["mode"] as? String) == "train" }.compactMap { $0["step"] as? Int }
        XCTAssertEqual(trainSteps, Array(1...steps), "metrics.jsonl train records")
        let valSteps = records.filter { ($0["mode"] as? String) == "val" }.compactMap { $0["step"] as? Int }
        XCTAssertEqual(valSteps, [3, 6], "metrics.jsonl val records")
        XCTAssertEqual(r.output.components(separatedBy: "training tiny_aim:").count - 1, 1, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "step \(steps)/\(steps)").count - 1, 1, r.output)
        XCTAssertEqual(stepFiles(wd), ["step_00000002.safetensors", "step_00000003.safetensors", "step_00000004.safetensors",
                                       "step_00000006.safetensors"], "interval 2 plus the best at eval step 3")
        let stray = try FileManager.default.subpathsOfDirectory(atPath: wd.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(stray, [], "temporary files left behind")
        XCTAssertEqual(try metadata(wd.appendingPathComponent("latest.safetensors"))["world_size"], "2")

        // Bytes allreduced per step = 4 × tunable parameters (the frozen backbone is never reduced).
        let tunableCount = try tunable(wd.appendingPathComponent("latest.safetensors")).values.reduce(0) { $0 + $1.count }
        let banner = try XCTUnwrap(r.output.range(of: #"(\d+) tunable of (\d+) parameters"#, options: .regularExpression))
        let words = r.output[banner].split(separator: " ")
        XCTAssertEqual(Int(words[0]), tunableCount, "the banner's tunable count vs the checkpoint's")
        XCTAssertLessThan(tunableCount * 5, Int(words[3])!, "tiny AIM: most parameters are frozen")
        for rec in records where (rec["mode"] as? String) == "train" {
            XCTAssertEqual(rec["bytes_allreduced"] as? Int, 4 * tunableCount, "step \(rec["step"] ?? "?")")
        }
        print("2-rank run: \(tunableCount) tunable of \(words[3]) parameters; \(4 * tunableCount) bytes allreduced per step")
    }

    /// Ranks that would train different things refuse to start, naming what differs and where:
    /// here rank 1 is given another train.seed (without model.pretrained its frozen weights are
    /// drawn from it), as a node with another backbone file or config would be.
    func testRanksThatWouldTrainDifferentThingsRefuseToStart() throws {
        let data = try makeDataset()
        let exe = try tool("aim-train")
        let args = trainArgs(data: data, workDir: workDir("wd"), steps: 2)
        let r = try run(try mpirun(), ["--oversubscribe", "-n", "1", exe] + args + ["--set", "train.seed=0", ":", "-n", "1", exe] + args
                        + ["--set", "train.seed=1"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "the ranks would train different things: the frozen weights (drawn from train.seed): rank 0 (").count - 1, 1,
                       "said once, by rank 0:\n\(r.output)")
        XCTAssertFalse(r.output.contains("MPI_ABORT"), "every rank knew, so they stopped together:\n\(r.output)")
        XCTAssertTrue(r.output.contains("the initial tunable weights"), r.output)
        XCTAssertFalse(r.output.contains("the training videos and labels"), "the same list on both ranks:\n\(r.output)")
        XCTAssertFalse(r.output.contains("step 1/2"), "no step runs:\n\(r.output)")
        XCTAssertEqual(stepFiles(workDir("wd")), [])
    }

    /// A bad config key under mpirun: every rank stops with status 1, and the job prints the
    /// error once, naming the key and that every rank hit it (it printed it per rank, then
    /// MPI_Abort's banner).
    func testABadKeyStopsEveryRankWithOneMessage() throws {
        let data = try makeDataset()
        let r = try train(trainArgs(data: data, workDir: workDir("wd"), steps: 2, ["model.no_such_key=1"]), ranks: 2)
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "model.no_such_key: unknown key").count - 1, 1, r.output)
        XCTAssertTrue(r.output.contains("aim-train: error: config error: --set: model.no_such_key: unknown key (all 2 ranks)"), r.output)
        XCTAssertFalse(r.output.contains("MPI_ABORT"), "the ranks stopped together, nothing was aborted:\n\(r.output)")
        XCTAssertEqual(stepFiles(workDir("wd")), [])
    }

    /// A config error on one rank alone (its node lacks the file an override names) still stops
    /// every rank, and the message says which rank.
    func testAConfigErrorOnOneRankStopsEveryRank() throws {
        let data = try makeDataset()
        let exe = try tool("aim-train")
        let args = trainArgs(data: data, workDir: workDir("wd"), steps: 2)
        let r = try run(try mpirun(), ["--oversubscribe", "-n", "1", exe] + args + [":", "-n", "1", exe] + args
                        + ["--set", "train.no_such_key=1"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("train.no_such_key: unknown key (rank 1 of 2)"), r.output)
        XCTAssertFalse(r.output.contains("step 1/2"), "no step runs:\n\(r.output)")
        XCTAssertFalse(r.output.contains("MPI_ABORT"), r.output)
    }

    /// Values that do not fit together (or do not fit the rank count) are every rank's finding:
    /// said once for all ranks, and the ranks stop together without MPI's abort.
    func testAStartCheckIsSaidOnceForAllRanks() throws {
        let data = try makeDataset()
        for (set, says) in [("train.batch_size=3", "train.batch_size 3 is not divisible by 2 ranks (all 2 ranks)"),
                            ("data.crop_size=24", "data.crop_size: 24 must equal model.input_resolution 32"),
                            // The annotations too: a missing list was said by each rank, then MPI_ABORT's banner.
                            ("data.train=/nonexistent/train_list.txt", "config key data.train: /nonexistent/train_list.txt: no such file")] {
            let r = try train(trainArgs(data: data, workDir: workDir("start-\(set)"), steps: 2) + ["--set", set], ranks: 2)
            XCTAssertEqual(r.status, 1, r.output)
            XCTAssertEqual(r.output.components(separatedBy: "aim-train: error:").count, 2, r.output)
            XCTAssertTrue(r.output.contains(says) && r.output.contains("(all 2 ranks)"), r.output)
            XCTAssertFalse(r.output.contains("MPI_ABORT"), r.output)
        }
    }

    /// A rank that dies (SIGKILL) ends the whole job within a bounded time instead of leaving the
    /// other one waiting in an allreduce; the last checkpoint is intact, and resuming with 2 ranks
    /// ends bitwise where the uninterrupted 2-rank run ends.
    func testARankThatDiesEndsTheJobAndTheRunResumes() throws {
        let data = try makeDataset()
        let steps = 30, extra = ["checkpoint.interval=2"]
        let reference = workDir("reference"), wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: reference, steps: steps, extra), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)

        let log = scratch.appendingPathComponent("killed.log")
        let p = try launch(try mpirun(), ["-n", "2", "--oversubscribe", try tool("aim-train")]
                           + trainArgs(data: data, workDir: wd, steps: steps, extra), log: log)
        XCTAssertTrue(waitFor(30) { FileManager.default.fileExists(atPath: stepFile(wd, 10).path) || !p.isRunning })
        let ranks = children(of: p.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "mpirun's rank processes")
        let start = Date()
        if let victim = ranks.max() { kill(victim, SIGKILL) }
        let killed = wait(p, log: log, limit: 60)
        let seconds = Date().timeIntervalSince(start)
        print("rank death: the job ended \(String(format: "%.1f", seconds)) s after a rank was killed (status \(killed.status))")
        XCTAssertNotEqual(killed.status, 0, killed.output)
        XCTAssertLessThan(seconds, 30, "the surviving rank hung")
        let newest = try XCTUnwrap(stepFiles(wd).last)
        XCTAssertNoThrow(try rawTensors(wd.appendingPathComponent("checkpoints/\(newest)")))
        XCTAssertLessThan(newest, String(format: "step_%08d.safetensors", steps), "the kill came too late to test anything")

        r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from"), r.output)
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")),
                       try rawTensors(reference.appendingPathComponent("latest.safetensors")), "2-rank kill and resume ≠ uninterrupted")
    }

    /// Processes whose parent is `pid` (from /proc/<n>/stat).
    func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> Int32? in
            guard let child = Int32(name),
                  let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid ? child : nil
        }
    }
}
