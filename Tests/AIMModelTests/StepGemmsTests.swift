import AIMModel
import AIMTensor
import XCTest

/// `StepGemms.list` is what the step runs (the bench's roofline and the GEMM probe read it): the
/// temporal pass and the adapters only in the blocks `model.adapter_layers` adapts, and the last
/// AIM block's out_proj, MLP and S/MLP adapters on the class rows alone, its attention scores
/// of the class queries as no product (`Recognizer.skipsUnreadRows`).
final class StepGemmsTests: XCTestCase {
    private func config(_ layers: ModelConfig.AdapterLayers) -> ModelConfig {
        var c = ModelConfig()   // ViT-B/16 CLIP, 8 frames
        c.adapterLayers = layers
        return c
    }

    /// Calls per step of the forward products of `group` with `rows` rows.
    private func forwardCalls(_ uses: [StepGemms.Use], _ group: String, rows: Int) -> Int {
        uses.filter { $0.group.hasPrefix(group) && $0.group.hasSuffix("forward") && $0.shape.m == rows && $0.shape.pairs == 1 }
            .reduce(0) { $0 + $1.count }
    }

    func testAdaptedBlocksAndClassRows() {
        let M = 8 * 197, F = 8
        // (adapter_layers, adapted blocks, whether block 11 is adapted)
        for (layers, adapted, lastAdapted) in [(ModelConfig.AdapterLayers.all, 12, true), (.top6, 6, true), (.bottom6, 6, false), (.skip, 6, false)] {
            let c = config(layers), uses = StepGemms.list(c)
            let name = "\(layers)"
            XCTAssertEqual(forwardCalls(uses, "attn in_proj", rows: M), 12 + adapted, "\(name): in_proj once per block, twice where temporal")
            XCTAssertEqual(forwardCalls(uses, "attn out_proj", rows: M), 11, "\(name): the temporal out_proj is folded, the last block's on class rows")
            XCTAssertEqual(forwardCalls(uses, "attn out_proj, class rows", rows: F), 1, name)
            let spatial = uses.filter { $0.group == "spatial attention Q·Kᵀ" }.reduce(0) { $0 + $1.count }
            XCTAssertEqual(spatial, 11, "\(name): the last block's class queries are no product")
            XCTAssertEqual(forwardCalls(uses, "mlp c_fc", rows: M), 11, name)
            XCTAssertEqual(forwardCalls(uses, "mlp c_fc, class rows", rows: F), 1, name)
            let classRowAdapters = lastAdapted ? 2 : 0
            XCTAssertEqual(forwardCalls(uses, "adapter D_fc1", rows: M), 3 * adapted - classRowAdapters, name)
            XCTAssertEqual(forwardCalls(uses, "adapter D_fc1, class rows", rows: F), classRowAdapters, name)
            let temporal = uses.filter { $0.group == "temporal attention Q·Kᵀ" }.reduce(0) { $0 + $1.count }
            XCTAssertEqual(temporal, adapted, "\(name): the temporal attention runs in the adapted blocks")
        }
    }

    /// The TimeSformers' last MLP runs on the class rows too: one per frame in the CLIP one, one
    /// per video in the IN-21K one; their last spatial attention (per frame) on the frames' class queries.
    func testTimeSformers() {
        var c = ModelConfig()
        c.backbone = .timesformer; c.adapters = []; c.tune = .all
        for imagenet in [false, true] {
            if imagenet { c.backbone = .imagenet; c.dividedSpaceTime = true }
            let uses = StepGemms.list(c)
            XCTAssertEqual(forwardCalls(uses, "mlp c_fc, class rows", rows: imagenet ? 1 : 8), 1)
            XCTAssertEqual(forwardCalls(uses, "attn out_proj, class rows", rows: 8), 1)
            XCTAssertEqual(forwardCalls(uses, "attn out_proj", rows: 8 * 197), 11)
            XCTAssertEqual(uses.filter { $0.group == "spatial attention Q·Kᵀ" }.reduce(0) { $0 + $1.count }, 11)
        }
    }
}
