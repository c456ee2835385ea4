import Foundation
import XCTest

/// Resuming with a config that changes what the checkpoint means is refused, listing the keys
/// that differ (also by `--resume auto`, which must not skip such a checkpoint and start over);
/// safe changes are allowed and logged, including the same videos under another data root.
final class ResumeCheckTests: TrainToolTestCase {
    func testMeaningChangesAreRefusedAndSafeChangesLogged() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 4))
        XCTAssertEqual(r.status, 0, r.output)
        let before = try rawTensors(wd.appendingPathComponent("latest.safetensors"))

        // Another class count and another global batch: refused, both keys named, nothing written.
        for resume in ["auto", wd.appendingPathComponent("latest.safetensors").path] {
            r = try train(trainArgs(data: data, workDir: wd, steps: 8, ["model.num_classes=5", "train.batch_size=16", "train.micro_batch=8"])
                          + ["--resume", resume])
            XCTAssertEqual(r.status, 1, r.output)
            XCTAssertFalse(r.signalled, r.output)
            XCTAssertTrue(r.output.contains("model.num_classes: 4 → 5") && r.output.contains("train.batch_size: 8 → 16"), r.output)
            XCTAssertFalse(r.output.contains("starting from step 0"), "auto must not skip it and start over:\n\(r.output)")
        }
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")), before, "a refused resume writes nothing")

        // Another training list (one video fewer): refused.
        let list = try String(contentsOf: data.appendingPathComponent("train_list.txt"), encoding: .utf8)
        let shorter = scratch.appendingPathComponent("shorter_list.txt")
        try list.split(separator: "\n").dropLast().joined(separator: "\n").write(to: shorter, atomically: true, encoding: .utf8)
        r = try train(trainArgs(data: data, workDir: wd, steps: 8, ["data.train=\(shorter.path)"]) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("the training videos or labels"), r.output)

        // The same videos under another root, more steps, another log interval, 2 threads: allowed and logged.
        let moved = scratch.appendingPathComponent("moved")
        try FileManager.default.copyItem(at: data, to: moved)
        var args = trainArgs(data: moved, workDir: wd, steps: 8, ["train.log_interval=2"])
        args[args.firstIndex(of: "--threads")! + 1] = "2"
        r = try train(args + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step 4"), r.output)
        XCTAssertTrue(r.output.contains("allowed: train.log_interval: 1 → 2"), r.output)
        XCTAssertTrue(r.output.contains("allowed: data.train:"), r.output)
        XCTAssertEqual(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"], "8")
        print("resume checks: class count and batch refused, another list refused, moved data root and safe keys allowed")
    }

    /// A checkpoint holds the tunable weights only: the frozen ones come back from model.pretrained
    /// or, without one, from train.seed. Other frozen weights are refused on resume (a changed seed
    /// was an allowed change) and in aim-eval and aim-predict, naming the checkpoint.
    func testOtherFrozenWeightsAreRefusedOnResumeAndInEvaluation() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 2))
        XCTAssertEqual(r.status, 0, r.output)
        let latest = wd.appendingPathComponent("latest.safetensors")
        let recorded = try metadata(latest)
        XCTAssertTrue(recorded["frozen_weights"]?.hasPrefix("fnv1a64x4:") ?? false, "\(recorded)")

        r = try train(trainArgs(data: data, workDir: wd, steps: 4, ["train.seed=1"]) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("the frozen weights (drawn from train.seed)"), r.output)
        XCTAssertEqual(try metadata(latest)["step"], "2", "a refused resume writes nothing")

        let common = ["--config", Self.tinyConfig, "--threads", "1", "--checkpoint", latest.path,
                      "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                      "--set", "model.num_classes=4", "--set", "model.pretrained="]
        let video = try XCTUnwrap(FileManager.default.enumerator(atPath: data.path)?.compactMap { $0 as? String }
            .first { $0.hasSuffix(".mp4") || $0.hasSuffix(".avi") || $0.hasSuffix(".mkv") })
        for (tool, extra) in [("aim-eval", [String]()), ("aim-predict", [data.appendingPathComponent(video).path])] {
            r = try run(try self.tool(tool), common + extra)
            XCTAssertEqual(r.status, 0, "\(tool), same seed: \(r.output)")
            r = try run(try self.tool(tool), common + ["--set", "train.seed=1"] + extra)
            XCTAssertNotEqual(r.status, 0, "\(tool): \(r.output)")
            XCTAssertTrue(r.output.contains(latest.path) && r.output.contains("was trained on other frozen weights than train.seed 1 draws"), "\(tool): \(r.output)")
        }
        // The same seed resumes.
        r = try train(trainArgs(data: data, workDir: wd, steps: 4) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("at step 2"), r.output)
    }

    /// Evaluated without the backbone it was trained on, a checkpoint names the file its run used
    /// (its config records it), not the seed.
    func testTheBackboneARunUsedIsNamedWhenMissing() throws {
        let data = try makeDataset()
        // A backbone unlike the seed's draw: a finetuned model's, exported.
        let tuned = workDir("tuned")
        var r = try train(trainArgs(data: data, workDir: tuned, steps: 2) + ["--set", "model.adapters=[]", "--set", "model.tune=all"])
        XCTAssertEqual(r.status, 0, r.output)
        let backbone = scratch.appendingPathComponent("backbone.safetensors")
        r = try run(try tool("aim-model"), ["export-backbone", "--config", Self.tinyConfig, "--set", "model.adapters=[]", "--set", "model.tune=all", "--set", "model.num_classes=4",
                                            "--set", "model.pretrained=", "--checkpoint", tuned.appendingPathComponent("latest.safetensors").path,
                                            "--output", backbone.path])
        XCTAssertEqual(r.status, 0, r.output)
        let wd = workDir("on-backbone")
        r = try train(trainArgs(data: data, workDir: wd, steps: 1, ["model.pretrained=\(backbone.path)"]))
        XCTAssertEqual(r.status, 0, r.output)
        r = try run(try tool("aim-eval"), ["--config", Self.tinyConfig, "--threads", "1", "--checkpoint", wd.appendingPathComponent("latest.safetensors").path,
                                           "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                                           "--set", "model.num_classes=4", "--set", "model.pretrained="])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("its run used model.pretrained \(backbone.path): give that file"), r.output)
    }
}
