import Foundation
import XCTest
import AIMTensor

/// bf16 through `aim-train`, on a model large enough that the trainer gives back the fp32 values
/// of its frozen linear weights: training, the end-of-run evaluation, checkpoints and `--resume`
/// all work on the bf16 copies alone, and a run stopped and resumed ends with the weights of the
/// uninterrupted one, bit for bit.
final class BF16TrainingTests: TrainToolTestCase {
    override func setUpWithError() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
    }

    func testReleasedFrozenWeightsTrainEvaluateAndResumeExactly() throws {
        let data = try makeDataset()
        // Width 128: frozen values of 3 MB, a mapping of their own, whole pages per weight.
        let extra = ["model.precision=bf16", "model.width=128", "model.layers=2", "model.heads=4"]
        let whole = workDir("whole")
        var r = try train(trainArgs(data: data, workDir: whole, steps: 4, extra))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("held in bf16 only"), "the trainer gives the frozen fp32 values back:\n\(r.output)")
        XCTAssertTrue(r.output.contains("training tiny_aim in bf16: "), r.output)
        XCTAssertTrue(try metrics(whole).contains { $0["mode"] as? String == "val" }, "the run ends with an evaluation")

        // aim-eval gives the frozen fp32 values back too (after loading the checkpoint) and reads
        // the bf16 copies alone; a read of a released weight would stop it on a precondition.
        r = try run(try tool("aim-eval"), ["--config", Self.tinyConfig, "--threads", "1", "--json",
                                           "--checkpoint", whole.appendingPathComponent("latest.safetensors").path,
                                           "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                                           "--set", "model.num_classes=4", "--set", "model.pretrained="] + extra.flatMap { ["--set", $0] })
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("\"videos\":8"), r.output)

        let split = workDir("split")
        r = try train(trainArgs(data: data, workDir: split, steps: 4, extra) + ["--max-steps", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try train(trainArgs(data: data, workDir: split, steps: 4, extra) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step 2"), r.output)
        XCTAssertEqual(try rawTensors(whole.appendingPathComponent("latest.safetensors")),
                       try rawTensors(split.appendingPathComponent("latest.safetensors")),
                       "stopped at step 2 and resumed: the same weights and moments as the uninterrupted run")
    }
}
