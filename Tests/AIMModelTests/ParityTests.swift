import Foundation
import XCTest
import AIMModel
import AIMTensor

/// Parity with the PyTorch oracle: `tools/reference_state.py` wrote each fixture (weights, input,
/// and the logits, loss and gradients PyTorch computed in float64); we load the same weights,
/// run forward and backward, and compare everything to 1e-4 relative.
final class ParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// max |a − b| / max(max |b|, tiny) over the tensor: robust for tensors with tiny entries.
    static func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<b.count {
            num = max(num, Double(abs(a[i] - b[i])))
            den = max(den, Double(abs(b[i])))
        }
        return num / max(den, 1e-12)
    }

    /// Under every fp32 library this machine has (why: oneDNN's path fuses biases, accumulation and
    /// skip connections into its products, OpenBLAS's and BLIS's add them in separate passes).
    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let previous = Gemm.library
        defer { try? Gemm.select(previous) }
        for lib in GemmLibrary.allCases where Gemm.isAvailable(lib) {
            try Gemm.select(lib)
            try checkOnce(name, library: lib, file: file, line: line)
        }
    }

    private func checkOnce(_ name: String, library lib: GemmLibrary, file: StaticString, line: UInt) throws {
        Threads.set(2)
        let path = Self.fixtures.appendingPathComponent("ref_\(name).safetensors").path
        let f = try SafetensorsFile(path: path)
        let json = try XCTUnwrap(f.metadata["overrides"], "fixture \(name) has no overrides metadata")
        let settings = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        var config = try ModelConfig(settings: settings)
        config.dropPathRate = 0
        let model = try Recognizer(config: config)
        try model.loadWeights(path: path, strict: true, ignoring: ["grad.", "video", "label", "logits", "loss"])
        let video = try f.tensor(named: "video")
        let labels = try f.int64Array(named: "label").map { Int($0) }
        let B = labels.count
        let logits = try model.forward(video: video.data, context: PassContext(batch: B, training: false))
        let expected = try f.tensor(named: "logits")
        let logitErr = Self.relativeError(logits, expected)
        XCTAssertLessThanOrEqual(logitErr, 1e-4, "\(name) [\(lib)]: logits", file: file, line: line)
        let K = config.numClasses
        let loss = labels.withUnsafeBufferPointer {
            crossEntropyForward(logits: logits.data, labels: $0.baseAddress!, batch: B, classes: K)
        }
        let expectedLoss = try f.tensor(named: "loss")[0]
        XCTAssertEqual(Double(loss), Double(expectedLoss), accuracy: 1e-4 * max(1, abs(Double(expectedLoss))), "\(name) [\(lib)]: loss", file: file, line: line)
        let dLogits = Tensor([B, K])
        labels.withUnsafeBufferPointer {
            crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: B, classes: K)
        }
        model.store.zeroGrads()
        try model.backward(dLogits: dLogits.data)
        var worst = (0.0, "")
        let gradNames = Set(f.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        let tunable = Set(model.store.tunableParameters.map(\.name))
        XCTAssertEqual(tunable, gradNames, "\(name): tunable set differs from PyTorch's requires_grad set", file: file, line: line)
        for p in model.store.tunableParameters where gradNames.contains(p.name) {
            let g = try f.tensor(named: "grad." + p.name)
            let e = Self.relativeError(p.grad!, g)
            if e > worst.0 { worst = (e, p.name) }
            XCTAssertLessThanOrEqual(e, 1e-4, "\(name) [\(lib)]: grad \(p.name)", file: file, line: line)
        }
        for p in model.store.parameters where !p.tunable { XCTAssertNil(p.grad, "\(name): frozen \(p.name) has a gradient") }
        print("parity \(name) [\(lib)]: logits rel \(String(format: "%.2e", logitErr)), worst grad rel \(String(format: "%.2e", worst.0)) (\(worst.1)), \(gradNames.count) grads")
    }

    func testAIMCLIPOneTemporalAdapter() throws { try check("aim_clip_t1") }
    func testAIMCLIPTwoTemporalAdapters() throws { try check("aim_clip_t2") }
    func testAIMCLIPSkipPositions() throws { try check("aim_clip_skip") }
    func testAIMCLIPTop6Positions() throws { try check("aim_clip_top6") }
    func testAIMCLIPJointHead() throws { try check("aim_clip_joint_head") }
    func testAIMImageNet() throws { try check("aim_imagenet") }
    func testImageNetSpatialOnly() throws { try check("imagenet_spatial") }
    func testImageNetSpatialTemporal() throws { try check("imagenet_spatial_temporal") }
    func testFrozenSpaceOnly() throws { try check("frozen_space_only") }
    func testFinetunedSpaceOnly() throws { try check("finetuned_space_only") }
    func testTimeSformerCLIP() throws { try check("timesformer_clip") }
    func testTimeSformerImageNet() throws { try check("timesformer_imagenet") }
    /// AIM on Swin: shifted windows with masks in stages 1-3, the window clipped to stage 4's grid.
    func testSwin2DAIM() throws { try check("swin2d_aim") }
    /// Video Swin, every parameter tunable: 3D shifted windows, stage 4 clipped in h and w.
    func testVideoSwin() throws { try check("videoswin") }
    /// Video Swin with zero-padded windows (official forward_part1's F.pad / crop): 10×10 and 5×5 grids
    /// with window (3, 7, 7) over T' = 5, so stage 1 pads T, H, W (shifted, mask on the padded volume)
    /// and stage 2 pads T with h, w clipped.
    func testVideoSwinPadded() throws { try check("videoswin_pad") }
    /// Video Swin on a clip that is not a patch multiple (7 frames of 38², padded by PatchEmbed3D to
    /// 8 × 40²) and an odd grid at the second PatchMerging (5×5 padded to 6×6).
    func testVideoSwinPaddedClipAndMerging() throws { try check("videoswin_padclip") }
}
