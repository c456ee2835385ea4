import Foundation
import XCTest

/// Issue 19, item 7: AIM-Swin trains the same under one process and `mpirun -n 2` (same global
/// batch, drop-path on the temporal and S_Adapter branches and head dropout keyed per sample),
/// allreducing only its tunable gradients, and a run saved with 2 ranks resumes with 1.
final class SwinRankInvarianceTests: TrainToolTestCase {
    let swin = ["model.backbone=swin2d", "model.patch_size=[2, 4, 4]", "model.embed_dim=16", "model.depths=[2, 2]",
                "model.num_heads=[1, 2]", "model.window_size=4", "train.clip_grad=0.5"]

    func testOneAndTwoRanksEndWithTheSameWeights() throws {
        let data = try makeDataset()
        let (a, _) = try assertOneAndTwoRanksAgree(data: data, swin, name: "swin-")
        XCTAssertTrue(a.keys.allSatisfy { $0.contains("Adapter") || $0.contains("cls_head") }, "only adapters and the head are tunable")

        let wd = workDir("swin-switch")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 6, swin) + ["--max-steps", "3"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        r = try train(trainArgs(data: data, workDir: wd, steps: 6, swin) + ["--resume", "auto"], ranks: 1)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from") && r.output.contains("at step 3"), r.output)
        let (d, k) = maxRelativeDifference(a, try tunable(wd.appendingPathComponent("latest.safetensors")))
        print("swin rank invariance: saved with 2 ranks, resumed with 1: max relative difference \(d) (\(k))")
        XCTAssertLessThanOrEqual(d, 1e-4, "2 → 1 ranks differs in \(k)")
    }
}
