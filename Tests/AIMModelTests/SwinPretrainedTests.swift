import Foundation
import XCTest
import AIMModel
import AIMTensor

/// One 2D Swin file (tools/export_pretrained.py swin: the backbone's own keys, Conv3d patch weight
/// already inflated) feeds both Swin backbones: AIM-Swin loads it as SwinTransformer2D_Adapter
/// does (adapters and temporal bias tables stay initialised), Video Swin repeats each bias table
/// over the 2·wd−1 temporal offsets as SwinTransformer3D.inflate_weights. A ViT config refuses it.
final class SwinPretrainedTests: XCTestCase {
    func swin(_ backbone: ModelConfig.Backbone) -> ModelConfig {
        var c = ModelConfig()
        c.backbone = backbone; c.embedDim = 8; c.depths = [2, 2]; c.numHeads = [1, 2]; c.inputResolution = 32
        c.numFrames = 4; c.numClasses = 3
        if backbone == .videoswin { c.windowSize = [2, 4, 4]; c.tune = .all; c.adapters = [] } else { c.windowSize = [4] }
        return c
    }

    /// The "2D checkpoint": every backbone weight of a swin2d model but its adapters and temporal tables.
    func writeImageSwin(to path: String) throws -> Recognizer {
        let image = try Recognizer(config: swin(.swin2d), seed: 5)
        var w = SafetensorsWriter()
        for p in image.store.parameters where p.name.hasPrefix("backbone.") && !p.name.contains("Adapter") && !p.name.contains("temporal_position") {
            w.add(String(p.name.dropFirst("backbone.".count)), tensor: p.value)
        }
        try w.save(to: path)
        return image
    }

    func testOneFileFeedsBothSwinBackbones() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swin2d-\(getpid()).safetensors").path
        defer { unlink(path) }
        let image = try writeImageSwin(to: path)

        let aim = try Recognizer(config: swin(.swin2d), seed: 9)
        let report = try aim.loadPretrainedBackbone(path: path)
        XCTAssertTrue(report.unexpected.isEmpty && report.misshapen.isEmpty, "\(report)")
        XCTAssertTrue(report.missing.allSatisfy { $0.contains("Adapter") || $0.contains("temporal_position") || $0.hasPrefix("cls_head") },
                      "\(report.missing)")
        for p in aim.store.parameters where report.loaded.contains(p.name) {
            XCTAssertEqual(p.value.array, image.store[p.name]!.value.array, p.name)
        }

        let video = try Recognizer(config: swin(.videoswin), seed: 9)
        let vr = try video.loadPretrainedBackbone(path: path)
        XCTAssertTrue(vr.unexpected.isEmpty && vr.misshapen.isEmpty && vr.missing == ["cls_head.fc_cls.weight", "cls_head.fc_cls.bias"], "\(vr)")
        // Stage 1: 2D table [(2·4−1)², 1] repeated 2·2−1 = 3 times over the temporal offsets.
        let name = "backbone.layers.0.blocks.1.attn.relative_position_bias_table"
        let t2 = image.store[name]!.value.array, t3 = try XCTUnwrap(video.store[name]).value.array
        XCTAssertEqual(t3.count, 3 * t2.count)
        XCTAssertEqual(t3, t2 + t2 + t2)
        XCTAssertEqual(video.store["backbone.patch_embed.proj.weight"]!.value.array, image.store["backbone.patch_embed.proj.weight"]!.value.array)
    }

    func testAViTConfigRefusesASwinFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swin2d-vit-\(getpid()).safetensors").path
        defer { unlink(path) }
        _ = try writeImageSwin(to: path)
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 2; c.numClasses = 3
        let vit = try Recognizer(config: c, seed: 1)
        XCTAssertThrowsError(try vit.loadPretrainedBackbone(path: path)) { error in
            XCTAssertTrue("\(error)".contains("no weight of this clip backbone") && "\(error)".contains("conv1.weight"), "\(error)")
        }
    }
}
