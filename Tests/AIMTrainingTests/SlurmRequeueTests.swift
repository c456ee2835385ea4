import Foundation
import XCTest

/// cluster/slurm.sbatch's requeue pattern, run here without Slurm: a stand-in `scontrol` records
/// the requeue, `srun` offers no PMIx so the script takes mpirun. Slurm's warning SIGTERM to the
/// batch shell becomes SIGUSR1 to mpirun; the ranks checkpoint and exit 138, and only that
/// requeues the job. A stop sent to the ranks themselves (scancel --signal=TERM, status 143) and a
/// failing run (status 1) are not requeued.
final class SlurmRequeueTests: TrainToolTestCase {
    func testTermBeforeTheLimitRequeuesAndAFailureDoesNot() throws {
        _ = try mpirun()
        let data = try makeDataset()
        let fake = scratch.appendingPathComponent("fakebin")
        try FileManager.default.createDirectory(at: fake, withIntermediateDirectories: true)
        let record = scratch.appendingPathComponent("requeued")
        try "#!/bin/sh\necho \"$*\" > \(record.path)\n".write(to: fake.appendingPathComponent("scontrol"), atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho none\n".write(to: fake.appendingPathComponent("srun"), atomically: true, encoding: .utf8)
        for f in ["scontrol", "srun"] { chmod(fake.appendingPathComponent(f).path, 0o755) }
        extraEnvironment = ["PATH": fake.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
                            "SLURM_JOB_ID": "42", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2", "SLURM_CPUS_PER_TASK": "1",
                            "SLURM_NNODES": "1", "CONFIG": Self.tinyConfig]
        // The script runs bin/aim-train from the repository root, as a user submits it.
        var args = trainArgs(data: data, workDir: workDir("wd"), steps: 100_000)
        args.removeFirst(2)                                      // --config comes from CONFIG
        args.removeSubrange(args.firstIndex(of: "--threads")!...args.firstIndex(of: "--threads")! + 1)
        let script = Self.root.appendingPathComponent("cluster/slurm.sbatch").path
        let log = scratch.appendingPathComponent("sbatch.log")
        let p = try launchInRoot("/bin/bash", [script] + args, log: log)
        let metricsFile = workDir("wd").appendingPathComponent("metrics.jsonl")
        XCTAssertTrue(waitFor(60) {
            ((try? String(contentsOf: metricsFile, encoding: .utf8)) ?? "").split(separator: "\n").count >= 3 || !p.isRunning
        })
        kill(p.processIdentifier, SIGTERM)
        let r = wait(p, log: log, limit: 60)
        XCTAssertEqual(r.status, 138, r.output)
        XCTAssertTrue(r.output.contains("requeueing"), r.output)
        XCTAssertEqual(try String(contentsOf: record, encoding: .utf8), "requeue 42\n")
        let step = Int(try metadata(workDir("wd").appendingPathComponent("latest.safetensors"))["step"] ?? "") ?? -1
        let lastLogged = try metrics(workDir("wd")).last { ($0["mode"] as? String) == "train" }?["step"] as? Int
        XCTAssertEqual(lastLogged, step, "the checkpoint is of the step the signal ended")

        // `scancel --signal=TERM <job>`: the signal reaches the ranks, not the batch shell. They
        // checkpoint and exit 143, and the job is not requeued: that was a stop for good.
        try FileManager.default.removeItem(at: record)
        let stopped = try launchInRoot("/bin/bash", [script] + args, log: log)
        let before = try metrics(workDir("wd")).count
        XCTAssertTrue(waitFor(60) { ((try? self.metrics(self.workDir("wd")).count) ?? 0) >= before + 2 || !stopped.isRunning })
        let pkill = Process()
        pkill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        pkill.arguments = ["-TERM", "-f", "^[^ ]*aim-train .*" + workDir("wd").path]
        try pkill.run(); pkill.waitUntilExit()
        let s = wait(stopped, log: log, limit: 60)
        XCTAssertEqual(s.status, 143, s.output)
        XCTAssertTrue(s.output.contains("not requeued"), s.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: record.path), "a stop sent to the ranks is not requeued")

        let failed = try launchInRoot("/bin/bash", [script] + args + ["--set", "model.head_dropout=1"], log: log)
        let f = wait(failed, log: log, limit: 60)
        XCTAssertEqual(f.status, 1, f.output)
        XCTAssertTrue(f.output.contains("not requeued"), f.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: record.path), "a failure is not requeued")
        print("slurm requeue: SIGTERM to the batch shell → ranks exit 138 at a checkpoint → requeued; SIGTERM to the ranks (143) and a failure (1) are not")
    }

    /// `launch` from the repository root (the script runs bin/aim-train, as a user submits it there).
    func launchInRoot(_ exe: String, _ args: [String], log: URL) throws -> Process {
        try launch(exe, args, log: log, directory: Self.root)
    }
}
