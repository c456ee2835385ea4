import AIMConfig
import AIMTensor
import Foundation
import XCTest

/// Issue 5's work-dir layout, which hidden checks read: checkpoints/step_<N:08>.safetensors,
/// latest.safetensors, best.safetensors (by validation top-1), metrics.jsonl; step files pruned to
/// checkpoint.keep_last; a checkpoint holds the tunable weights under the official keys and the
/// AdamW moments, nothing frozen, so it weighs ≈ 3 × 4 bytes × tunable parameters.
final class WorkDirLayoutTests: TrainToolTestCase {
    /// The work dir keeps the run's record as mmaction2's does: `<config name>.yaml` with every
    /// key, which `--config` reads back into the same run, and `<start time>.log`, rank 0's output
    /// from its first line (the CPU line, printed before the work dir existed) to its last.
    func testConfigAndLogOfTheRun() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        let args = trainArgs(data: data, workDir: wd, steps: 4, ["eval.interval=2", "train.lr=7e-4"])
        var r = try train(args, ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        let names = try FileManager.default.contentsOfDirectory(atPath: wd.path)
        let logs = names.filter { $0.range(of: #"^\d{8}_\d{6}\.log$"#, options: .regularExpression) != nil }
        XCTAssertEqual(logs.count, 1, "\(names)")
        let log = try String(contentsOf: wd.appendingPathComponent(logs.first ?? "none"), encoding: .utf8)
        for line in ["aim-train run log", "command: ", "cpu: ", "step 4/4", "eval at step 2:", "eval at step 4:"] {
            XCTAssertTrue(log.contains(line), "\(line) not in the run log:\n\(log)")
        }
        XCTAssertEqual(log.components(separatedBy: "step 4/4").count, 2, "rank 0's lines only, once:\n\(log)")

        let dumped = wd.appendingPathComponent("tiny_aim.yaml")
        let expected = try Config.load(path: Self.tinyConfig, overrides: stride(from: 1, to: args.count, by: 1)
            .filter { args[$0 - 1] == "--set" }.map { args[$0] })
        let loaded = try Config.load(path: dumped.path)
        XCTAssertEqual(loaded.name, expected.name)
        XCTAssertEqual(loaded.values, expected.values)
        XCTAssertEqual(loaded.double("train.lr"), 7e-4)

        // That file given back with --resume auto but without --work-dir trains in work_dirs/tiny_aim
        // (here under the scratch folder), from step 0: the log points at the run it came from.
        let output = scratch.appendingPathComponent("resume-without-work-dir.log")
        let p = try launch(try tool("aim-train"), ["--config", dumped.path, "--resume", "auto", "--max-steps", "1", "--threads", "1"],
                           log: output, directory: scratch)
        r = wait(p, log: output, limit: 60)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("starting from step 0 (the config's own folder \(wd.path) holds checkpoints: add --work-dir \(wd.path)"), r.output)

        // The dumped file alone reproduces the run, bit for bit.
        let again = workDir("again")
        r = try train(["--config", dumped.path, "--work-dir", again.path, "--threads", "1"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try rawTensors(again.appendingPathComponent("latest.safetensors")),
                       try rawTensors(wd.appendingPathComponent("latest.safetensors")))

        // A new run (no --resume) in this work dir: the earlier run's files move, whole, to
        // earlier_runs/<time>/ (written among them, the new run's checkpoints would mix with its
        // own), and the new run starts in a clean dir.
        let before = try rawTensors(wd.appendingPathComponent("latest.safetensors"))
        r = try train(args + ["--set", "train.seed=7"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("held an earlier run; its checkpoints, logs and metrics are now in \(wd.path)/earlier_runs/"), r.output)
        let earlier = try FileManager.default.contentsOfDirectory(atPath: wd.appendingPathComponent("earlier_runs").path)
        XCTAssertEqual(earlier.count, 1)
        let moved = wd.appendingPathComponent("earlier_runs/\(earlier[0])")
        XCTAssertEqual(try rawTensors(moved.appendingPathComponent("latest.safetensors")), before)
        XCTAssertEqual(stepFiles(moved), ["step_00000002.safetensors", "step_00000004.safetensors"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: moved.appendingPathComponent("tiny_aim.yaml").path))
        XCTAssertEqual(stepFiles(wd), ["step_00000002.safetensors", "step_00000004.safetensors"])
        XCTAssertNotEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")), before, "the new run's own")
        XCTAssertEqual(try metrics(wd).filter { $0["mode"] as? String == "train" }.compactMap { $0["step"] as? Int }, [1, 2, 3, 4],
                       "metrics.jsonl holds the new run's records alone")
        XCTAssertEqual(try Config.load(path: wd.appendingPathComponent("tiny_aim.yaml").path).int("train.seed"), 7)
    }

    func testLayoutPruningBestAndCheckpointContents() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 8,
                                    ["checkpoint.interval=1", "checkpoint.keep_last=2", "eval.interval=2"]))
        XCTAssertEqual(r.status, 0, r.output)
        let fm = FileManager.default
        for f in ["metrics.jsonl", "latest.safetensors", "best.safetensors", "checkpoints"] {
            XCTAssertTrue(fm.fileExists(atPath: wd.appendingPathComponent(f).path), f)
        }
        XCTAssertEqual(stepFiles(wd), ["step_00000007.safetensors", "step_00000008.safetensors"], "keep_last 2")
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")), try rawTensors(stepFile(wd, 8)))
        XCTAssertEqual(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"], "8")

        // best = the first evaluation with the highest top-1 (a later tie is not better).
        let vals = try metrics(wd).filter { ($0["mode"] as? String) == "val" }
        XCTAssertEqual(vals.compactMap { $0["step"] as? Int }, [2, 4, 6, 8])
        let top1 = vals.map { $0["top1"] as! Double }
        let bestIndex = top1.firstIndex(of: top1.max()!)!
        let bestStep = vals[bestIndex]["step"] as! Int
        let best = wd.appendingPathComponent("best.safetensors")
        XCTAssertEqual(try metadata(best)["step"], "\(bestStep)", "top-1 by evaluation: \(top1)")
        XCTAssertEqual(Double(try metadata(best)["best_top1"] ?? ""), top1[bestIndex])
        for v in vals {
            for k in ["top1", "top5", "mean_class_accuracy"] {
                let x = v[k] as! Double
                XCTAssertTrue(x >= 0 && x <= 1, "\(k) \(x) is not a fraction")
            }
        }

        // Contents: the official tunable keys (train.py's filter), their moments, nothing else.
        let f = try SafetensorsFile(path: stepFile(wd, 8).path)
        let weights = f.names.filter { !$0.hasPrefix("optimizer.") }
        let officialTunable = { (name: String) in
            ["temporal_embedding", "ln_post", "cls_head", "Adapter"].contains { name.contains($0) }
        }
        XCTAssertEqual(weights.filter { !officialTunable($0) }, [], "frozen parameters saved")
        let expected: [String: [Int]] = [
            "backbone.temporal_embedding": [1, 8, 64], "backbone.ln_post.weight": [64], "backbone.ln_post.bias": [64],
            "cls_head.fc_cls.weight": [4, 64], "cls_head.fc_cls.bias": [4],
            "backbone.transformer.resblocks.0.T_Adapter.D_fc1.weight": [16, 64],
            "backbone.transformer.resblocks.0.T_Adapter.D_fc2.bias": [64],
            "backbone.transformer.resblocks.2.S_Adapter.D_fc1.bias": [16],
            "backbone.transformer.resblocks.3.MLP_Adapter.D_fc2.weight": [64, 16],
        ]
        for (k, shape) in expected { XCTAssertEqual(try? f.shape(of: k), shape, k) }
        XCTAssertEqual(weights.count, 5 + 4 * 3 * 4, "4 blocks × 3 adapters × 4 tensors + temporal_embedding, ln_post, head")
        XCTAssertEqual(Set(f.names.filter { $0.hasPrefix("optimizer.exp_avg.") }), Set(weights.map { "optimizer.exp_avg." + $0 }))
        XCTAssertEqual(Set(f.names.filter { $0.hasPrefix("optimizer.exp_avg_sq.") }), Set(weights.map { "optimizer.exp_avg_sq." + $0 }))
        XCTAssertEqual(f.names.count, 3 * weights.count)
        for k in ["step", "epoch", "step_in_epoch", "optimizer_step", "config", "format"] { XCTAssertNotNil(f.metadata[k], k) }
        XCTAssertEqual(f.metadata["epoch"], "4")
        XCTAssertEqual(f.metadata["optimizer_step"], "8")
        // Second moments are non-negative and not all zero (AdamW has run).
        let vHead = try f.tensor(named: "optimizer.exp_avg_sq.cls_head.fc_cls.weight")
        XCTAssertTrue((0..<vHead.count).allSatisfy { vHead[$0] >= 0 } && (0..<vHead.count).contains { vHead[$0] > 0 })

        let tunableCount = weights.reduce(0) { $0 + ((try? f.shape(of: $1).reduce(1, *)) ?? 0) }
        let size = try fm.attributesOfItem(atPath: stepFile(wd, 8).path)[.size] as! Int
        let overhead = size - 12 * tunableCount
        print("checkpoint: \(size) bytes for \(tunableCount) tunable parameters (12 × params + \(overhead) bytes of header)")
        XCTAssertGreaterThan(overhead, 0)
        XCTAssertLessThan(overhead, 64 * 1024, "header and metadata only")
    }
}
