import Foundation
import XCTest

/// A run with `gemm: auto` measures the libraries on its model once, says what it chose and why,
/// and the next run on the same machine, threads and model takes the cached answer.
final class GemmDefaultRunTests: TrainToolTestCase {
    func testFirstRunMeasuresAndTheNextUsesTheCache() throws {
        let data = try makeDataset()
        let home = scratch.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        extraEnvironment = ["HOME": home.path, "XDG_CACHE_HOME": "", "AIM_GEMM": ""]
        let first = try train(trainArgs(data: data, workDir: workDir("a"), steps: 2))
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.output.contains("measured fastest for this model") && first.output.contains("probe "), first.output)
        let cache = home.appendingPathComponent(".cache/aim-swift/gemm-choice.json")
        XCTAssertTrue(first.output.contains(cache.path), first.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache.path))
        let second = try train(trainArgs(data: data, workDir: workDir("b"), steps: 2))
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("measured fastest for this model"), second.output)
        XCTAssertFalse(second.output.contains("probe "), "the second run takes the cached choice:\n\(second.output)")
        // A forced library is not measured.
        let forced = try train(trainArgs(data: data, workDir: workDir("c"), steps: 2, ["gemm=openblas"]))
        XCTAssertTrue(forced.output.contains("set by gemm: openblas"), forced.output)
        print("gemm default: " + (first.output.split(separator: "\n").first { $0.contains("fp32 GEMM") } ?? ""))
    }
}
