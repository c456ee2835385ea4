import XCTest
import AIMConfig
import AIMModel

/// The Swin pair of the paper's "different pre-trained models" table, counted by the model itself:
/// AIM Swin-B 9.2M tunable (names containing Adapter, plus cls_head, as the official tools/train.py),
/// VideoSwin-B 88M, all tunable. Exact figures cross-checked with tools/reference_state.py's PyTorch
/// modules (sum of numel over named_parameters, requires_grad as the official filter).
final class SwinCountTests: XCTestCase {
    static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("configs")

    func model(_ relative: String) throws -> Recognizer {
        let config = try Config.load(path: Self.configs.appendingPathComponent(relative).path)
        return try Recognizer(config: try ModelConfig(config), initialize: false)
    }

    func testAIMSwinBK400() throws {
        let m = try model("k400/aim_swinb_in21k_32f.yaml")
        XCTAssertEqual(m.config.backbone, .swin2d)
        XCTAssertEqual(m.tunableParameterCount, 9_172_080)     // paper 9.2M
        XCTAssertEqual(m.totalParameters, 95_927_276)
        for p in m.store.parameters {
            XCTAssertEqual(p.tunable, p.name.contains("Adapter") || p.name.hasPrefix("cls_head."), p.name)
        }
        // Official key names and shapes.
        XCTAssertEqual(m.store["backbone.patch_embed.proj.weight"]?.shape, [128, 3, 2, 4, 4])
        XCTAssertEqual(m.store["backbone.layers.2.blocks.5.attn.relative_position_bias_table"]?.shape, [169, 16])
        XCTAssertEqual(m.store["backbone.layers.2.blocks.4.attn.temporal_position_bias_table"]?.shape, [31, 16])
        XCTAssertNil(m.store["backbone.layers.2.blocks.5.attn.temporal_position_bias_table"], "odd blocks have no temporal pass")
        XCTAssertEqual(m.store["backbone.layers.0.downsample.reduction.weight"]?.shape, [256, 512])
        XCTAssertEqual(m.store["cls_head.fc_cls.weight"]?.shape, [400, 1024])
        // fvcore on tools/reference_state.py's modules (reference_state.py --counts --only Swin): 312.82 GFLOPs per view.
        XCTAssertEqual(Double(m.flopsPerView) / 1e9, 312.82, accuracy: 0.01)
    }

    func testVideoSwinBK400() throws {
        let m = try model("k400/videoswin_b_in21k_32f.yaml")
        XCTAssertEqual(m.config.backbone, .videoswin)
        XCTAssertEqual(m.totalParameters, 88_048_984)           // paper 88M
        XCTAssertEqual(m.tunableParameterCount, m.totalParameters)
        XCTAssertEqual(m.store["backbone.layers.0.blocks.0.attn.relative_position_bias_table"]?.shape, [15 * 13 * 13, 4])
        // fvcore: 281.92 GFLOPs per view (the Video Swin paper: 282 for Swin-B 32×224²).
        XCTAssertEqual(Double(m.flopsPerView) / 1e9, 281.92, accuracy: 0.01)
    }

    func testOfficialInitialisation() throws {
        var c = ModelConfig()
        c.backbone = .swin2d; c.embedDim = 16; c.depths = [2, 2]; c.numHeads = [1, 2]; c.windowSize = [4]; c.inputResolution = 32
        let m = try Recognizer(config: c, seed: 3)
        for p in m.store.parameters where p.name.contains("Adapter") && p.name.contains("D_fc2") {
            XCTAssertTrue((0..<p.count).allSatisfy { p.data[$0] == 0 }, "\(p.name) starts at zero (official init_weights)")
        }
        let fc1 = try XCTUnwrap(m.store["backbone.layers.0.blocks.0.S_Adapter.D_fc1.weight"])
        XCTAssertTrue((0..<fc1.count).contains { fc1.data[$0] != 0 })
        let std = ((0..<fc1.count).reduce(0.0) { $0 + Double(fc1.data[$1] * fc1.data[$1]) } / Double(fc1.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.004, "trunc_normal_(std=.02) as the official _init_weights")
    }

    func testInconsistentSwinConfigsAreRefused() throws {
        func refused(_ key: String, _ edit: (inout ModelConfig) -> Void, file: StaticString = #filePath, line: UInt = #line) {
            var c = ModelConfig()
            c.backbone = .swin2d
            edit(&c)
            XCTAssertThrowsError(try Recognizer(config: c, initialize: false), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(key), "\(error)", file: file, line: line)
            }
        }
        refused("model.num_heads") { $0.numHeads = [4, 8, 16] }
        refused("model.num_heads") { $0.numHeads = [3, 8, 16, 32] }
        refused("model.input_resolution") { $0.inputResolution = 200 }
        refused("model.window_size") { $0.inputResolution = 256 }          // 64x64 grid, window 7
        refused("model.window_size") { $0.windowSize = [8, 7, 7] }
        refused("model.num_frames") { $0.numFrames = 7 }
        refused("model.tune") { $0.backbone = .videoswin; $0.windowSize = [8, 7, 7] }
        refused("model.window_size") { $0.backbone = .videoswin; $0.tune = .all }
    }

    /// videoswin pads a grid that is not a window multiple (the official SwinTransformerBlock3D does);
    /// swin2d has no padding officially and stays refused (testInconsistentSwinConfigsAreRefused).
    func testVideoSwinAcceptsGridsThatNeedPadding() throws {
        var c = ModelConfig()
        c.backbone = .videoswin; c.tune = .all; c.adapters = []
        c.windowSize = [8, 7, 7]; c.inputResolution = 256; c.numFrames = 20   // 64² grid, T' = 10
        XCTAssertNoThrow(try Recognizer(config: c, initialize: false))
        // A clip that is not a patch multiple is padded by PatchEmbed3D, odd grids by PatchMerging.
        c.inputResolution = 210; c.numFrames = 31
        XCTAssertNoThrow(try Recognizer(config: c, initialize: false))
        XCTAssertEqual(c.swinTemporalTokens, 16)
        XCTAssertEqual((0..<4).map { c.swinResolution(stage: $0) }, [53, 27, 14, 7])
    }
}

/// The GEMM list the fp32 library probe times for a Swin run is the model's own forward: its
/// forward products add up to the counted FLOPs less the LayerNorms (< 1 %).
final class SwinStepGemmsTests: XCTestCase {
    func testForwardProductsMatchTheCountedFLOPs() throws {
        // The third case pads its windows (64² and 32² grids, T' = 10, window (8, 7, 7)): both counts
        // take the padded rows of the window attention. The fourth pads the clip (31 frames of 210²:
        // 32 × 212², a 53² grid) and the odd grids 53 and 27 at two patch mergings.
        for (backbone, frames, side) in [(ModelConfig.Backbone.swin2d, 32, 224), (.videoswin, 32, 224), (.videoswin, 20, 256), (.videoswin, 31, 210)] {
            var c = ModelConfig()
            c.backbone = backbone; c.numFrames = frames; c.inputResolution = side
            if backbone == .videoswin { c.windowSize = [8, 7, 7]; c.tune = .all; c.adapters = [] }
            let m = try Recognizer(config: c, initialize: false)
            let uses = StepGemms.list(c)
            func macs(_ u: StepGemms.Use) -> Int { u.shape.m * u.shape.n * u.shape.k * u.shape.pairs * u.count }
            var forward = uses.filter { !$0.group.contains("backward") && !$0.group.contains("gradient") }.reduce(0) { $0 + macs($1) }
            // swin2d runs its temporal pass's proj folded into T_Adapter's fc1: the counted FLOPs
            // keep proj over the rows, the step runs W₁·W_p once instead.
            let folds = uses.filter { $0.group.hasSuffix("W₁·W_p") }
            XCTAssertEqual(folds.isEmpty, backbone == .videoswin, "\(backbone): the fold where a T_Adapter follows the frozen proj")
            for f in folds {
                let stage = try XCTUnwrap(f.group.components(separatedBy: "temporal proj").first)   // "stage N "
                let proj = try XCTUnwrap(uses.first { $0.group == stage + "attn proj: frozen forward" })
                XCTAssertTrue(f.fp32Only)
                forward += f.count * proj.shape.m * proj.shape.n * proj.shape.k - macs(f)
            }
            let ratio = Double(forward) / Double(m.flopsPerView - m.config.numClasses * m.config.swinFeatureWidth)
            XCTAssertGreaterThan(ratio, 0.99, "\(backbone)")
            XCTAssertLessThan(ratio, 1.0, "\(backbone): LayerNorms are counted by the model only")
            XCTAssertTrue(uses.contains { $0.group.contains("input gradient") }, "\(backbone): backward products listed")
            XCTAssertEqual(uses.contains { $0.group.contains("weight gradient") && $0.group.contains("qkv") }, backbone == .videoswin)
        }
    }
}
