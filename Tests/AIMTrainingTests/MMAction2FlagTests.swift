import AIMConfig
import Foundation
import XCTest

/// mmaction2's train.py flags on aim-train: the official command line's `--validate --seed 0
/// --deterministic` run as they read, `--resume-from` / `--auto-resume` resume, and the flags
/// with no meaning here are refused (64) saying what to use.
final class MMAction2FlagTests: TrainToolTestCase {
    func testOfficialTrainFlagsCarryOver() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 2) + ["--validate", "--seed", "5", "--deterministic"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try Config.load(path: wd.appendingPathComponent("tiny_aim.yaml").path).int("train.seed"), 5)
        XCTAssertFalse(r.output.contains("warning: the labels"), r.output)
        XCTAssertFalse(r.output.contains("--validate: data.val is empty"), r.output)
        // --validate without validation data: said, and the run goes on as mmaction2's would.
        r = try train(trainArgs(data: data, workDir: workDir("no-val"), steps: 1) + ["--set", "data.val=", "--validate"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("warning: --validate: data.val is empty, so this run validates nothing"), r.output)

        // model.num_classes left larger than the labels (another dataset's count): a warning, once per run.
        r = try train(trainArgs(data: data, workDir: workDir("six"), steps: 1, ["model.num_classes=6"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "go up to 3, model.num_classes is 6: classes 4…5 have no training video").count, 2, r.output)

        // The resumed run continues from step 2 to 4, as --resume PATH does.
        r = try train(trainArgs(data: data, workDir: wd, steps: 4) + ["--seed", "5", "--resume-from", wd.appendingPathComponent("latest.safetensors").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step 2"), r.output)
        r = try train(trainArgs(data: data, workDir: wd, steps: 4) + ["--seed", "5", "--auto-resume"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("nothing to train: resumed at step 4"), r.output)

        for (flags, says) in [(["--cfg-options", "model.backbone.pretrained=openaiclip"], "--set key=value"),
                              (["--gpus", "8"], "mpirun -n R"), (["--launcher", "pytorch"], "mpirun -n R"),
                              (["--auto-resume", "--resume", "auto"], "give one")] {
            r = try train(trainArgs(data: data, workDir: workDir("refused"), steps: 2) + flags)
            XCTAssertEqual(r.status, 64, "\(flags): \(r.output)")
            XCTAssertTrue(r.output.contains(says), "\(flags): \(r.output)")
        }
    }
}
