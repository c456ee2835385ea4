import AIMTensor
import Foundation
import XCTest

/// `aim-train --profile` records, per step, the seconds in each kind of kernel beside the phase
/// timings: every phase named, none negative, together within the step's time, and the linear
/// and attention kernels (which every step of the tiny AIM model runs) above zero. Without
/// `--profile` none of them is written.
final class ProfileRecordTests: TrainToolTestCase {
    func testProfiledStepsSayWhereTheTimeWent() throws {
        let data = try makeDataset()
        let wd = workDir("profiled")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 2) + ["--profile"])
        XCTAssertEqual(r.status, 0, r.output)
        let records = try metrics(wd).filter { $0["mode"] as? String == "train" }
        XCTAssertEqual(records.count, 2, "one record per step")
        for rec in records {
            let time = try XCTUnwrap(rec["time"] as? Double)
            var sum = 0.0
            for phase in StepProfile.Phase.allCases {
                let s = try XCTUnwrap(rec["kernel_\(phase.key)_s"] as? Double, "step \(rec["step"] ?? "?") lacks kernel_\(phase.key)_s")
                XCTAssertGreaterThanOrEqual(s, 0, phase.key)
                sum += s
            }
            XCTAssertLessThanOrEqual(sum, time, "the kernels' seconds fit in the step's \(time) s")
            for key in ["frozen_gemm", "tunable_gemm", "attention", "layer_norm"] {
                XCTAssertGreaterThan(rec["kernel_\(key)_s"] as? Double ?? 0, 0, "\(key) runs in every AIM step")
            }
        }

        let plain = workDir("plain")
        let p = try train(trainArgs(data: data, workDir: plain, steps: 1))
        XCTAssertEqual(p.status, 0, p.output)
        for rec in try metrics(plain) {
            XCTAssertFalse(rec.keys.contains { $0.hasPrefix("kernel_") }, "kernel timings only with --profile: \(rec.keys.sorted())")
        }
    }
}
