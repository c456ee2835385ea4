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
}
