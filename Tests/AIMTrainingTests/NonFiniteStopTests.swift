import AIMTensor
import Foundation
import XCTest

/// Issue 5: a non-finite loss stops the run with a clear message, and the last good checkpoint
/// stays: no checkpoint is ever written with non-finite weights or moments.
final class NonFiniteStopTests: TrainToolTestCase {
    func assertAllFinite(_ path: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try SafetensorsFile(path: path.path)
        for name in f.names {
            let t = try f.tensor(named: name)
            XCTAssertTrue((0..<t.count).allSatisfy { t[$0].isFinite }, "\(path.lastPathComponent): \(name) is not finite", file: file, line: line)
        }
    }

    /// lr 1e30: the first update is finite but absurd, the next forward overflows.
    func testDivergingLossStopsTheRun() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 6, ["train.lr=1e30", "checkpoint.interval=1"]))
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.signalled, r.output)
        XCTAssertNotNil(r.output.range(of: #"loss became [-+]?(nan|inf)"#, options: [.regularExpression, .caseInsensitive]), r.output)
        XCTAssertTrue(r.output.contains("at step"), r.output)
        let files = stepFiles(wd)
        XCTAssertFalse(files.isEmpty)
        for f in files { try assertAllFinite(wd.appendingPathComponent("checkpoints/\(f)")) }
        try assertAllFinite(wd.appendingPathComponent("latest.safetensors"))
    }

    /// An update that makes the weights themselves non-finite (lr beyond Float's range, from a
    /// good step-2 checkpoint): the run stops before writing them, and step 2 is untouched.
    func testNonFiniteWeightsNeverReachACheckpoint() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 6, ["checkpoint.interval=1"]) + ["--max-steps", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        let good = try rawTensors(stepFile(wd, 2))
        r = try train(trainArgs(data: data, workDir: wd, steps: 6, ["checkpoint.interval=1", "train.lr=1e39"]) + ["--resume", "auto"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.signalled, r.output)
        XCTAssertTrue(r.output.contains("non-finite") || r.output.contains("nan") || r.output.contains("inf"), r.output)
        XCTAssertEqual(stepFiles(wd), ["step_00000001.safetensors", "step_00000002.safetensors"], "a checkpoint after the bad update")
        XCTAssertEqual(try rawTensors(wd.appendingPathComponent("latest.safetensors")), good, "latest is still step 2")
        try assertAllFinite(wd.appendingPathComponent("latest.safetensors"))
    }
}
