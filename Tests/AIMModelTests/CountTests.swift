import XCTest
import AIMModel

/// The paper's parameter counts (to its rounding) and GFLOPs (within 1%), from the model itself.
final class CountTests: XCTestCase {
    func model(_ edit: (inout ModelConfig) -> Void) throws -> Recognizer {
        var c = ModelConfig()
        edit(&c)
        return try Recognizer(config: c, initialize: false)
    }

    func millions(_ n: Int) -> Double { Double(n) / 1e6 }

    func assertCounts(_ m: Recognizer, total: Double, tunable: Double, totalDigits: Double = 1, tunableDigits: Double = 0.1,
                      file: StaticString = #filePath, line: UInt = #line) {
        // The paper rounds to the unit (97M) or to one decimal (3.7M): compare at that rounding.
        XCTAssertEqual((millions(m.totalParameters) / totalDigits).rounded() * totalDigits, total, accuracy: 1e-9,
                       "total \(m.totalParameters)", file: file, line: line)
        XCTAssertEqual((millions(m.tunableParameterCount) / tunableDigits).rounded() * tunableDigits, tunable, accuracy: 1e-9,
                       "tunable \(m.tunableParameterCount)", file: file, line: line)
    }

    func assertGFLOPs(_ m: Recognizer, views: Int, paper: Double, file: StaticString = #filePath, line: UInt = #line) {
        let g = Double(m.flopsPerView) / 1e9 * Double(views)
        XCTAssertLessThan(abs(g - paper) / paper, 0.01, "GFLOPs \(g) vs paper \(paper)", file: file, line: line)
    }

    func testViTB16CLIP() throws {
        for (frames, paper) in [(8, 606.0), (16, 1214), (32, 2428)] {
            let m = try model { $0.numFrames = frames }
            assertCounts(m, total: 97, tunable: 11, tunableDigits: 1)
            assertGFLOPs(m, views: 3, paper: paper)
        }
        // Exact figure of the 8-frame model: 202.32 GFLOPs per view, 606 for 8×3×1.
        let m = try model { $0.numFrames = 8 }
        XCTAssertEqual(Double(m.flopsPerView) * 3 / 1e9, 606.95, accuracy: 0.01)
    }

    func testViTL14CLIP() throws {
        for (frames, paper) in [(8, 2802.0), (16, 5604), (32, 11208)] {
            let m = try model { $0.width = 1024; $0.layers = 24; $0.heads = 16; $0.patchSize = 14; $0.numFrames = frames }
            assertCounts(m, total: 341, tunable: 38, tunableDigits: 1)
            assertGFLOPs(m, views: 3, paper: paper)
        }
    }

    func testSSv2Ablation() throws {
        func ssv2(_ edit: @escaping (inout ModelConfig) -> Void) throws -> Recognizer {
            try model { c in
                c.backbone = .imagenet; c.numClasses = 174; c.numTAdapter = 2; c.adapterScale = 1
                edit(&c)
            }
        }
        assertCounts(try ssv2 { $0.adapters = [] }, total: 86, tunable: 0.1)
        assertCounts(try ssv2 { $0.adapters = []; $0.tune = .all }, total: 86, tunable: 86, tunableDigits: 1)
        assertCounts(try ssv2 { $0.adapters = []; $0.tune = .all; $0.dividedSpaceTime = true }, total: 121, tunable: 121, tunableDigits: 1)
        assertCounts(try ssv2 { $0.adapters = [.spatial] }, total: 89, tunable: 3.7)
        assertCounts(try ssv2 { $0.adapters = [.spatial, .temporal] }, total: 97, tunable: 10.8)
        assertCounts(try ssv2 { _ in }, total: 100, tunable: 14.3)
    }

    func testAdapterPositions() throws {
        for p in [ModelConfig.AdapterLayers.bottom6, .top6, .skip] {
            assertCounts(try model { $0.adapterLayers = p }, total: 91, tunable: 5.6)
        }
        assertCounts(try model { $0.adapterLayers = .all }, total: 97, tunable: 11, tunableDigits: 1)
    }

    func testTimeSformerCLIPIsFullyTunable() throws {
        let m = try model { $0.backbone = .timesformer; $0.adapters = []; $0.tune = .all }
        // 121.6M = 86M + 12 × 2.95M temporal parts; the paper prints 121 (it truncates here, rounds elsewhere).
        assertCounts(m, total: 121.6, tunable: 121.6, totalDigits: 0.1)
    }

    func testFrozenParametersHaveNoGradientStorage() throws {
        let m = try model { $0.width = 32; $0.layers = 2; $0.heads = 4; $0.patchSize = 8; $0.inputResolution = 16 }
        for p in m.store.parameters {
            let rule = ["temporal_embedding", "ln_post", "cls_head", "Adapter"].contains { p.name.contains($0) }
            XCTAssertEqual(p.tunable, rule, p.name)
            XCTAssertEqual(p.grad != nil, rule, p.name)
        }
        XCTAssertEqual(m.store.tunableGrads.count, m.tunableParameterCount)
    }

    /// The final norm's FLOPs (5 per element, fvcore's LayerNorm count) over the tokens it runs
    /// on: a frame-by-frame model normalises T × N tokens (each frame's class token too); the
    /// ImageNet TimeSformer's sequence holds one class token and T × L patches, 1 + L·T tokens.
    /// 16² frames of 8² patches: L = 4, N = 5; T = 3, D = 16.
    func testFinalNormFLOPsCountTheTokensItRunsOn() throws {
        func tiny(_ edit: (inout ModelConfig) -> Void) throws -> Recognizer {
            try model { c in
                c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
                edit(&c)
            }
        }
        let frames = try tiny { _ in }
        XCTAssertEqual(frames.moduleCounts().first { $0.module == "ln_post" }?.flops, 5 * 3 * 5 * 16)
        let video = try tiny { $0.backbone = .imagenet; $0.dividedSpaceTime = true; $0.adapters = []; $0.tune = .all }
        XCTAssertEqual(video.moduleCounts().first { $0.module == "norm" }?.flops, 5 * (1 + 4 * 3) * 16)
    }

    /// The classifier's FLOPs are its multiply-accumulates, in × out (fvcore's Linear count): 768 ×
    /// 400 = 307,200 for ViT-B on K400, too few to move the GFLOPs the paper tests check.
    func testHeadFLOPsAreInTimesOut() throws {
        let m = try model { $0.width = 32; $0.layers = 2; $0.heads = 4; $0.patchSize = 8; $0.inputResolution = 16; $0.numClasses = 7 }
        let head = try XCTUnwrap(m.moduleCounts().first { $0.module == "cls_head.fc_cls" })
        XCTAssertEqual(head.flops, 32 * 7)
        XCTAssertEqual(head.parameters, 32 * 7 + 7)
        let vitB = try model { $0.numClasses = 400 }
        XCTAssertEqual(vitB.moduleCounts().first { $0.module == "cls_head.fc_cls" }?.flops, 768 * 400)
    }
}
