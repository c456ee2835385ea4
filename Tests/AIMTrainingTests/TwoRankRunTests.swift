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
}
