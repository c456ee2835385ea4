import Foundation
import XCTest

/// SIGTERM, SIGINT and SIGUSR1 make aim-train write a checkpoint at the next step boundary and
/// exit with 128 + the signal (143, 130, 138: a stopped run is not a finished one); `--resume auto`
/// continues from it to the same end as an uninterrupted run.
final class SignalStopTests: TrainToolTestCase {
    func testSIGTERMAndSIGINTCheckpointAndExitCleanly() throws {
        // oneDNN: a signal handled on a thread inside its sgemm corrupted the heap in about 1 of 10
        // stops until stop signals were confined to a thread of their own (Signals.swift).
        extraEnvironment["AIM_GEMM"] = "onednn"
        let data = try makeDataset()
        let steps = 30
        // No regular checkpoint before the end: the one found after the signal is the signal's.
        let extra = ["checkpoint.interval=1000"]
        let reference = workDir("uninterrupted")
        var r = try train(trainArgs(data: data, workDir: reference, steps: steps, extra))
        XCTAssertEqual(r.status, 0, r.output)

        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGUSR1, "SIGUSR1")] {
            let wd = workDir(name)
            let log = scratch.appendingPathComponent("\(name).log")
            // --test-last: a stopped run is not complete, so it is tested only when a resume completes it.
            let p = try launch(try tool("aim-train"), trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--test-last"], log: log)
            // Signal once three steps are logged, mid-run.
            let metricsFile = wd.appendingPathComponent("metrics.jsonl")
            XCTAssertTrue(waitFor(30) {
                ((try? String(contentsOf: metricsFile, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3 || !p.isRunning
            })
            kill(p.processIdentifier, signal)
            let stopped = wait(p, log: log, limit: 30)
            XCTAssertFalse(stopped.signalled, "\(name) killed the process instead of stopping it:\n\(stopped.output)")
            XCTAssertEqual(stopped.status, 128 + signal, "\(name): \(stopped.output)")
            XCTAssertTrue(stopped.output.contains("stopped by signal"), stopped.output)
            XCTAssertFalse(stopped.output.contains("test of the last checkpoint"), stopped.output)
            let files = stepFiles(wd)
            XCTAssertEqual(files.count, 1, "\(name): one checkpoint, at the step boundary after the signal: \(files)")
            let step = Int(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"] ?? "") ?? -1
            XCTAssertTrue((3..<steps).contains(step), "\(name): checkpoint at step \(step)")
            // The last logged step is the checkpoint's: nothing trained after it was lost.
            let lastLogged = try metrics(wd).last { ($0["mode"] as? String) == "train" }?["step"] as? Int
            XCTAssertEqual(lastLogged, step, "\(name)")
            print("signals: \(name) after step 3 stopped at step \(step) with a checkpoint, exit \(stopped.status)")

            r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto", "--test-last"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step \(step)"), r.output)
            XCTAssertTrue(r.output.contains("test of the last checkpoint (step \(steps);"), r.output)
            XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")),
                           try rawTensors(reference.appendingPathComponent("latest.safetensors")),
                           "\(name): stopped and resumed ≠ uninterrupted")
        }
    }

    /// Under `mpirun -n 2`, a SIGTERM or SIGUSR1 to mpirun reaches both ranks; they agree on the
    /// step (the stop signal is reduced), rank 0 writes the checkpoint, and a 2-rank resume
    /// continues from it to the end. mpirun ends the job itself after forwarding SIGTERM (its
    /// status is then its own), but only forwards SIGUSR1: the ranks' 138 is mpirun's status, which
    /// is what cluster/slurm.sbatch requeues on. (Bitwise 2-rank resume is TwoRankRunTests'.)
    func testSignalToMpirunCheckpointsBothRanks() throws {
        // oneDNN: a signal handled on a thread inside its sgemm corrupted the heap in about 1 of 10
        // stops until stop signals were confined to a thread of their own (Signals.swift).
        extraEnvironment["AIM_GEMM"] = "onednn"
        let data = try makeDataset()
        let steps = 100, extra = ["checkpoint.interval=1000"]  // mpirun takes ~0.5 s (~40 tiny steps) to forward a signal
        for (signal, name) in [(SIGTERM, "SIGTERM"), (SIGUSR1, "SIGUSR1")] {
            let wd = workDir("wd-\(name)")
            let log = scratch.appendingPathComponent("\(name).log")
            let p = try launch(try mpirun(), ["-n", "2", "--oversubscribe", try tool("aim-train")]
                               + trainArgs(data: data, workDir: wd, steps: steps, extra), log: log)
            let metricsFile = wd.appendingPathComponent("metrics.jsonl")
            XCTAssertTrue(waitFor(30) {
                ((try? String(contentsOf: metricsFile, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3 || !p.isRunning
            })
            kill(p.processIdentifier, signal)
            let stopped = wait(p, log: log, limit: 30)
            XCTAssertTrue(stopped.output.contains("stopped by signal"), "\(name): \(stopped.output)")
            if signal == SIGUSR1 { XCTAssertEqual(stopped.status, 128 + SIGUSR1, "\(name): \(stopped.output)") }
            XCTAssertNotEqual(stopped.status, 0, "\(name): a stopped job is not a finished one")
            XCTAssertEqual(stepFiles(wd).count, 1, stopped.output)
            let step = Int(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"] ?? "") ?? -1
            XCTAssertTrue((3..<steps).contains(step), "\(name): checkpoint at step \(step)")
            print("signals: \(name) to mpirun -n 2 stopped both ranks at step \(step) with a checkpoint (mpirun status \(stopped.status))")
            let r = try train(trainArgs(data: data, workDir: wd, steps: steps, extra) + ["--resume", "auto"], ranks: 2)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("at step \(step)"), r.output)
            XCTAssertEqual(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"], "\(steps)")
        }
    }
}
