import Foundation
import XCTest

/// Command lines the tools refuse or answer before doing any work: nothing here decodes a video
/// or runs a benchmark.
final class ToolOptionTests: TrainToolTestCase {
    /// The uniform (SSv2) sampler takes one clip per video: --num-clips 3 silently wrote one.
    func testClipRefusesSeveralClipsWithFrameUniform() throws {
        let out = scratch.appendingPathComponent("clip.safetensors").path
        let r = try run(try tool("aim-data"), ["clip", "--video", scratch.appendingPathComponent("none.mp4").path, "--clip-len", "4",
                                               "--num-clips", "3", "--frame-uniform", "--output", out])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--num-clips 3 with --frame-uniform") && r.output.contains("one clip per video"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// --only matching no section ran nothing and exited 0; now it names the sections it knows.
    func testBenchOnlyMatchingNoSectionFailsListingTheSections() throws {
        let r = try run(try tool("aim-bench"), ["--only", "no such section"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("--only \"no such section\" matches no section title"), r.output)
        XCTAssertTrue(r.output.contains("Training step: ViT-B/16 CLIP") && r.output.contains("Non-GEMM kernels"), r.output)
        XCTAssertFalse(r.output.contains("# Benchmarks"), r.output)
    }

    /// --help was "unknown arguments: --help", exit 2.
    func testMPICheckHelpPrintsUsage() throws {
        for flag in ["--help", "-h"] {
            let r = try run(try tool("aim-mpi-check"), [flag])
            XCTAssertEqual(r.status, 0, r.output)
            for option in ["USAGE: aim-mpi-check", "--bench", "--floats", "--repeats", "--bucket-mb", "--die-rank", "--hang-rank"] {
                XCTAssertTrue(r.output.contains(option), "\(option) missing from \(r.output)")
            }
            XCTAssertFalse(r.output.contains("PASS: "), r.output)
        }
        let r = try run(try tool("aim-mpi-check"), ["--nonsense"])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("unknown arguments: --nonsense (see --help)"), r.output)
    }
}
