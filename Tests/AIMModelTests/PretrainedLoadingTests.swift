import Foundation
import XCTest
import AIMConfig
import AIMModel
import AIMTensor

/// Loading an image backbone the way the official init_weights does (strict=False), and the
/// counts of the shipped paper configs themselves.
final class PretrainedLoadingTests: XCTestCase {
    func tiny(_ edit: (inout ModelConfig) -> Void = { _ in }) -> ModelConfig {
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        edit(&c)
        return c
    }

    func tempFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid()).safetensors").path
    }

    /// An image model's backbone written without the `backbone.` prefix (tools/export_pretrained.py's layout).
    func writeBackbone(of model: Recognizer, to path: String, rename: (String) -> String? = { $0 }) throws {
        var w = SafetensorsWriter()
        for p in model.store.parameters where p.name.hasPrefix("backbone.") {
            if let key = rename(String(p.name.dropFirst("backbone.".count))) { w.add(key, tensor: p.value) }
        }
        w.add("proj", floats: [1, 2, 3, 4], shape: [2, 2])   // CLIP's projection: unused, reported
        try w.save(to: path)
    }

    func testCLIPBackboneIntoAIM() throws {
        let image = try Recognizer(config: tiny { $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        let path = tempFile("clip-backbone")
        defer { unlink(path) }
        try writeBackbone(of: image, to: path)
        let aim = try Recognizer(config: tiny(), seed: 12)
        let before = aim.store.parameters.filter { $0.name.contains("Adapter") }.map { $0.value.array }
        let report = try aim.loadPretrainedBackbone(path: path)
        XCTAssertEqual(report.unexpected, ["proj"])
        // New in AIM: adapters, temporal_embedding, the head — exactly what the official log lists as missing.
        for name in report.missing {
            XCTAssertTrue(name.contains("Adapter") || name.contains("temporal_embedding") || name.hasPrefix("cls_head"), name)
        }
        for p in aim.store.parameters where !report.missing.contains(p.name) {
            XCTAssertEqual(p.value.array, image.store[p.name]!.value.array, p.name)
        }
        XCTAssertEqual(aim.store.parameters.filter { $0.name.contains("Adapter") }.map { $0.value.array }, before, "adapters untouched")
        // The official zero-init: every D_fc2 starts at zero, so AIM starts as the image model.
        for p in aim.store.parameters where p.name.contains("D_fc2") { XCTAssertTrue(p.value.array.allSatisfy { $0 == 0 }, p.name) }
    }

    /// A run's starting point draws only what the pretrained file does not hold, and draws it as a
    /// fully seeded model would (each parameter from generators keyed by its name), on any thread count.
    func testStartingPointDrawsOnlyWhatTheFileLacks() throws {
        let image = try Recognizer(config: tiny { $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        let path = tempFile("starting-point")
        defer { unlink(path) }
        try writeBackbone(of: image, to: path)
        let threads = Threads.count
        defer { Threads.set(threads) }
        Threads.set(1)
        let seeded = try Recognizer(config: tiny { $0.width = 256; $0.heads = 4 }, seed: 12)   // 4 blocks of 2¹⁶ values per MLP weight
        let expected = try Recognizer(config: tiny(), seed: 12)
        try expected.loadPretrainedBackbone(path: path)
        for n in [1, 2] {
            Threads.set(n)
            XCTAssertEqual(try Recognizer(config: tiny { $0.width = 256; $0.heads = 4 }, seed: 12).store.parameters.map { $0.value.array },
                           seeded.store.parameters.map { $0.value.array }, "the same values on \(n) thread(s)")
            let start = try Recognizer.startingPoint(config: tiny { $0.pretrained = path }, seed: 12)
            XCTAssertEqual(Set(try XCTUnwrap(start.pretrained).loaded), Set(image.store.parameters.map(\.name).filter { $0.hasPrefix("backbone.") }))
            for p in expected.store.parameters {
                XCTAssertEqual(start.model.store[p.name]!.value.array, p.value.array, "\(p.name) on \(n) thread(s)")
            }
        }
        let drawn = try XCTUnwrap(expected.store["backbone.transformer.resblocks.0.S_Adapter.D_fc1.weight"]).value.array
        XCTAssertTrue(drawn.contains { $0 != 0 }, "adapters are drawn, not left at zero")
        XCTAssertNotEqual(drawn, expected.store["backbone.transformer.resblocks.0.T_Adapter.D_fc1.weight"]!.value.array,
                          "each parameter draws its own values")
        XCTAssertNotEqual(drawn, try Recognizer(config: tiny(), seed: 13).store["backbone.transformer.resblocks.0.S_Adapter.D_fc1.weight"]!.value.array,
                          "another seed draws other values")
    }

    func testTimeSformerCopiesSpatialIntoTemporal() throws {
        let image = try Recognizer(config: tiny { $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        let path = tempFile("clip-backbone-ts")
        defer { unlink(path) }
        try writeBackbone(of: image, to: path)
        let ts = try Recognizer(config: tiny { $0.backbone = .timesformer; $0.adapters = []; $0.tune = .all }, seed: 12)
        try ts.loadPretrainedBackbone(path: path)
        let prefix = "backbone.transformer.resblocks.1."
        XCTAssertEqual(ts.store[prefix + "t_attn.in_proj_weight"]!.value.array, image.store[prefix + "attn.in_proj_weight"]!.value.array)
        XCTAssertEqual(ts.store[prefix + "t_norm.weight"]!.value.array, image.store[prefix + "ln_1.weight"]!.value.array)
    }

    func testTimmBackboneIntoImageNetTimeSformer() throws {
        let image = try Recognizer(config: tiny { $0.backbone = .imagenet; $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        let path = tempFile("timm-backbone")
        defer { unlink(path) }
        try writeBackbone(of: image, to: path)
        let ts = try Recognizer(config: tiny { $0.backbone = .imagenet; $0.dividedSpaceTime = true; $0.adapters = []; $0.tune = .all }, seed: 12)
        let report = try ts.loadPretrainedBackbone(path: path)
        XCTAssertEqual(ts.store["backbone.norm.weight"]!.value.array, image.store["backbone.ln_post.weight"]!.value.array, "timm norm = our ln_post")
        XCTAssertEqual(ts.store["backbone.blocks.0.temporal_attn.qkv.weight"]!.value.array, image.store["backbone.blocks.0.attn.qkv.weight"]!.value.array)
        XCTAssertTrue(report.missing.contains("backbone.time_embed"))
        XCTAssertTrue(report.missing.contains("backbone.blocks.1.temporal_fc.weight"))
    }

    func testMisshapenAndMalformedFilesAreRefused() throws {
        let model = try Recognizer(config: tiny(), seed: 1)
        let path = tempFile("misshapen")
        defer { unlink(path) }
        var w = SafetensorsWriter()
        w.add("conv1.weight", floats: [Float](repeating: 0, count: 5), shape: [5])
        try w.save(to: path)
        XCTAssertThrowsError(try model.loadPretrainedBackbone(path: path)) { error in
            XCTAssertTrue("\(error)".contains("conv1.weight") && "\(error)".contains("mis-shaped"), "\(error)")
        }
        try Data([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7B]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try model.loadWeights(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "names the file: \(error)")
        }
    }

    func testStrictLoadNamesMissingAndUnexpectedKeys() throws {
        let model = try Recognizer(config: tiny(), seed: 1)
        let path = tempFile("strict")
        defer { unlink(path) }
        var w = SafetensorsWriter()
        model.addWeights(to: &w)
        w.add("backbone.not_a_weight", floats: [1], shape: [1])
        try w.save(to: path)
        XCTAssertThrowsError(try model.loadWeights(path: path)) { XCTAssertTrue("\($0)".contains("unexpected keys: backbone.not_a_weight"), "\($0)") }
        var w2 = SafetensorsWriter()
        for p in model.store.parameters where p.name != "cls_head.fc_cls.bias" { w2.add(p.name, tensor: p.value) }
        try w2.save(to: path)
        XCTAssertThrowsError(try model.loadWeights(path: path)) { XCTAssertTrue("\($0)".contains("missing keys: cls_head.fc_cls.bias"), "\($0)") }
    }

    /// The paper's figures from the shipped config files, as `aim-model info` reads them.
    func testShippedConfigsReproduceThePaper() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        func counts(_ file: String) throws -> (Double, Double, Double) {
            let c = try Config.load(path: root.appendingPathComponent("configs/" + file).path)
            let m = try Recognizer(config: try ModelConfig(c), initialize: false)
            let views = c.int("data.test_num_clips") * (c.string("data.test_crop") == "three" ? 3 : 1)
            return (Double(m.totalParameters) / 1e6, Double(m.tunableParameterCount) / 1e6, Double(m.flopsPerView) / 1e9 * Double(views))
        }
        for (file, total, tunable, gflops) in [("k400/aim_vitb16_clip_8f.yaml", 97.0, 11.0, 606.0), ("k400/aim_vitb16_clip_16f.yaml", 97, 11, 1214),
                                               ("k400/aim_vitb16_clip_32f.yaml", 97, 11, 2428), ("k400/aim_vitl14_clip_8f.yaml", 341, 38, 2802)] {
            let (t, u, g) = try counts(file)
            XCTAssertEqual(t.rounded(), total, file); XCTAssertEqual(u.rounded(), tunable, file)
            XCTAssertLessThan(abs(g - gflops) / gflops, 0.01, "\(file): \(g) GFLOPs")
        }
        for (file, total, tunable) in [("ssv2/ablation_frozen_space_only.yaml", 86.0, 0.1), ("ssv2/ablation_spatial.yaml", 89, 3.7),
                                       ("ssv2/ablation_temporal.yaml", 97, 10.8), ("ssv2/ablation_aim.yaml", 100, 14.3),
                                       ("k400/aim_vitb16_clip_8f_skip.yaml", 91, 5.6)] {
            let (t, u, _) = try counts(file)
            XCTAssertEqual(t.rounded(), total, file); XCTAssertEqual((u * 10).rounded() / 10, tunable, file)
        }
    }

    /// Gives every LayerNorm weight and bias of `model` values of its own (they start as all
    /// ones and zeros, so a norm loaded from the wrong one, or not loaded, looked right).
    func distinctNorms(_ model: Recognizer) {
        for (k, p) in model.store.parameters.enumerated() where p.name.contains("ln_") || p.name.contains("norm") {
            for i in 0..<p.count { p.data[i] = Float(k) + Float(i) / 64 }
        }
    }

    /// TimeSformer's temporal parts start from the image model's spatial ones, each from its own
    /// counterpart: the temporal norm from the attention's norm (`ln_1` / `norm1`), not the
    /// MLP's, and timm's final `norm` from the image model's final norm.
    func testTimeSformerNormsComeFromTheirOwnImageNorms() throws {
        let clip = try Recognizer(config: tiny { $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        distinctNorms(clip)
        let clipPath = tempFile("clip-norms")
        defer { unlink(clipPath) }
        try writeBackbone(of: clip, to: clipPath)
        let ts = try Recognizer(config: tiny { $0.backbone = .timesformer; $0.adapters = []; $0.tune = .all }, seed: 12)
        try ts.loadPretrainedBackbone(path: clipPath)
        for b in 0..<2 {
            let prefix = "backbone.transformer.resblocks.\(b)."
            for f in ["weight", "bias"] {
                XCTAssertEqual(ts.store[prefix + "t_norm." + f]!.value.array, clip.store[prefix + "ln_1." + f]!.value.array, prefix + f)
                XCTAssertNotEqual(ts.store[prefix + "t_norm." + f]!.value.array, clip.store[prefix + "ln_2." + f]!.value.array, prefix + f)
            }
        }

        let image = try Recognizer(config: tiny { $0.backbone = .imagenet; $0.adapters = []; $0.numFrames = 1 }, seed: 11)
        distinctNorms(image)
        let timmPath = tempFile("timm-norms")
        defer { unlink(timmPath) }
        try writeBackbone(of: image, to: timmPath)
        let divided = try Recognizer(config: tiny { $0.backbone = .imagenet; $0.dividedSpaceTime = true; $0.adapters = []; $0.tune = .all }, seed: 12)
        let report = try divided.loadPretrainedBackbone(path: timmPath)
        for f in ["weight", "bias"] {
            XCTAssertEqual(divided.store["backbone.norm." + f]!.value.array, image.store["backbone.ln_post." + f]!.value.array, f)
            XCTAssertEqual(divided.store["backbone.blocks.1.temporal_norm1." + f]!.value.array,
                           image.store["backbone.blocks.1.norm1." + f]!.value.array, f)
        }
        XCTAssertFalse(report.missing.contains("backbone.norm.weight"))
    }
}
