import AIMConfig
import Foundation
import XCTest

/// Every committed config loads, and the experiment configs carry the official settings.
final class ConfigFilesTests: XCTestCase {
    static let configs = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("configs")

    static func load(_ relative: String) throws -> Config {
        try Config.load(path: configs.appendingPathComponent(relative).path)
    }

    func testEveryYAMLUnderConfigsLoads() throws {
        let root = Self.configs.path
        let files = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        XCTAssertGreaterThanOrEqual(files.count, 33, "configs found under \(root)")
        for file in files {
            XCTAssertNoThrow(try Config.load(path: root + "/" + file), file)
        }
    }

    /// Every paper experiment validates every 5 epochs, as the official configs'
    /// `evaluation = dict(interval=5)`, whatever the size of the user's copy of the dataset.
    func testExperimentsValidateEveryFiveEpochs() throws {
        let root = Self.configs.path
        let experiments = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("_base_") && !$0.hasPrefix("debug") && !$0.hasPrefix("labels") }
        XCTAssertGreaterThanOrEqual(experiments.count, 20)
        for file in experiments {
            let c = try Config.load(path: root + "/" + file)
            XCTAssertEqual(c.int("eval.interval"), 5, file)
            XCTAssertTrue(c.bool("eval.by_epoch"), file)
        }
    }

    /// Every committed config's keys fit together as training and testing read them.
    func testEveryConfigsKeysFitTogether() throws {
        let root = Self.configs.path
        let files = (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("_base_") && !$0.hasPrefix("labels") }
        for file in files {
            XCTAssertEqual(try Config.load(path: root + "/" + file).relationProblems().map(\.description), [], file)
        }
    }

    /// frame_uniform samples one clip per video: more clips asked of it are refused, not silently one.
    func testFrameUniformTakesOneClip() throws {
        var c = try Self.load("ssv2/aim_vitb16_clip.yaml")
        XCTAssertEqual(c.relationProblems().count, 0)
        try c.apply(overrides: ["data.test_num_clips=2", "data.val_num_clips=3"])
        let problems = c.relationProblems().map(\.description)
        XCTAssertEqual(problems.count, 2, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("data.test_num_clips") && $0.contains("frame_uniform samples one clip per video") }, "\(problems)")
        try c.apply(overrides: ["data.frame_uniform=false"])
        XCTAssertEqual(c.relationProblems().count, 0)
    }

    /// data.class_list is read by the formats whose annotations name classes; given to another
    /// format it was silently unused (a 2-name list for a 4-class Diving-48 model passed).
    func testAClassListOtherFormatsDoNotReadIsRefused() throws {
        var c = try Self.load("diving48/aim_vitb16_clip_32f.yaml")
        try c.apply(overrides: ["data.format=diving48_json", "data.class_list=names.txt"])
        let problems = c.relationProblems().map(\.description)
        XCTAssertEqual(problems.count, 1, "\(problems)")
        XCTAssertTrue(problems[0].contains("data.class_list") && problems[0].contains("data.classes"), "\(problems)")
        try c.apply(overrides: ["data.format=kinetics_csv"])
        XCTAssertEqual(c.relationProblems().count, 0)
    }

    /// The run's config as written into its work dir reads back the same, integer lists as integers.
    func testTheWrittenConfigReadsBackTheSame() throws {
        let c = try Self.load("k400/aim_swinb_in21k_32f.yaml")
        let text = c.yamlText(header: ["a header"], describe: true)
        XCTAssertTrue(text.contains("  depths: [2, 2, 18, 2]\n") && text.contains("  patch_size: [2, 4, 4]\n"), text)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("written-config-\(getpid()).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(text.utf8).write(to: file)
        XCTAssertEqual(try Config.load(path: file.path).values, c.values)
    }

    func testRequiredExperimentFilesExist() {
        var required = ["k700/aim_vitb16_clip_32f.yaml", "k700/aim_vitl14_clip_32f.yaml",
                        "k400/timesformer_vitb16_clip_8f.yaml", "k400/finetune_space_only_vitb16_clip_8f.yaml",
                        "ssv2/aim_vitb16_clip.yaml", "diving48/aim_vitb16_clip_32f.yaml", "diving48/aim_vitl14_clip_32f.yaml",
                        "debug/tiny_aim.yaml", "debug/tiny_space_only.yaml", "debug/tiny_full_finetune.yaml",
                        "k400/aim_swinb_in21k_32f.yaml", "k400/videoswin_b_in21k_32f.yaml", "ssv2/aim_swinb_in21k_32f.yaml",
                        "ssv2/videoswin_b_in21k_32f.yaml", "debug/tiny_swin_aim.yaml"]
        for t in [8, 16, 32] { required += ["k400/aim_vitb16_clip_\(t)f.yaml", "k400/aim_vitl14_clip_\(t)f.yaml"] }
        for p in ["bottom6", "top6", "skip"] { required.append("k400/aim_vitb16_clip_8f_\(p).yaml") }
        for a in ["frozen_space_only", "finetuned_space_only", "timesformer", "spatial", "temporal", "aim"] {
            required.append("ssv2/ablation_\(a).yaml")
        }
        for r in required {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Self.configs.appendingPathComponent(r).path), r)
        }
    }

    func check(_ relative: String, _ expected: [String: ConfigValue], file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try Self.load(relative)
        XCTAssertEqual(c.name, URL(fileURLWithPath: relative).deletingPathExtension().lastPathComponent, file: file, line: line)
        for (key, value) in expected {
            XCTAssertEqual(c.value(key), value, "\(relative): \(key)", file: file, line: line)
        }
        // The clip the loader samples is what the model's temporal embedding expects.
        XCTAssertEqual(c.int("model.num_frames"), c.int("data.clip_len"), "\(relative): frames", file: file, line: line)
    }

    let aimAll: ConfigValue = .strings(["temporal", "spatial", "joint"])
    let clipMean: ConfigValue = .floats([122.769, 116.74, 104.04])
    let imagenetMean: ConfigValue = .floats([123.675, 116.28, 103.53])

    /// The Swin pair as the official configs (swin2d_adapter_patch244_window7_kinetics400_1k.py,
    /// swin_base_patch244_window877_kinetics400_22k.py): 32 frames x 2, test 4 clips x ThreeCrop at 224.
    func testKinetics400Swin() throws {
        let common: [String: ConfigValue] = [
            "model.num_classes": .int(400), "model.patch_size": .floats([2, 4, 4]), "model.embed_dim": .int(128),
            "model.depths": .floats([2, 2, 18, 2]), "model.num_heads": .floats([4, 8, 16, 32]), "model.drop_path_rate": .float(0.2),
            "data.clip_len": .int(32), "data.frame_interval": .int(2), "data.num_clips": .int(1), "data.test_num_clips": .int(4),
            "data.test_crop": .string("three"), "data.test_short_side": .int(224), "data.short_side": .int(256),
            "data.mean": imagenetMean, "train.weight_decay": .float(0.05), "train.backbone_lr_mult": .float(0.1),
            "train.epochs": .int(30), "train.warmup_epochs": .float(2.5),
            "train.no_decay_keys": .strings(["relative_position_bias_table"])]
        try check("k400/aim_swinb_in21k_32f.yaml", common.merging([
            "model.backbone": .string("swin2d"), "model.window_size": .int(7), "model.tune": .string("adapters"),
            "train.lr": .float(1e-3), "train.batch_size": .int(64)]) { $1 })
        try check("k400/videoswin_b_in21k_32f.yaml", common.merging([
            "model.backbone": .string("videoswin"), "model.window_size": .floats([8, 7, 7]), "model.tune": .string("all"),
            "train.lr": .float(3e-4), "train.batch_size": .int(64)]) { $1 })
    }

    func testKinetics400() throws {
        let common: [String: ConfigValue] = [
            "model.backbone": .string("clip"), "model.num_classes": .int(400), "model.adapters": aimAll,
            "model.num_tadapter": .int(1), "model.adapter_scale": .float(0.5), "model.drop_path_rate": .float(0.2),
            "model.tune": .string("adapters"), "train.epochs": .int(30), "train.lr": .float(3e-4),
            "train.weight_decay": .float(0.05), "train.batch_size": .int(64), "train.warmup_epochs": .float(2.5),
            "train.label_smoothing": .float(0), "train.clip_grad": .float(0), "data.flip_ratio": .float(0.5),
            "data.frame_uniform": .bool(false), "data.test_num_clips": .int(3), "data.test_crop": .string("center"),
            "data.mean": clipMean, "data.root": .string("data/kinetics400/train_256"),
            "data.val_root": .string("data/kinetics400/val_256"),
        ]
        for (t, interval) in [(8, 16), (16, 8), (32, 4)] {
            let frames: [String: ConfigValue] = ["model.num_frames": .int(t), "data.frame_interval": .int(interval)]
            try check("k400/aim_vitb16_clip_\(t)f.yaml", common.merging(frames) { $1 }.merging([
                "model.width": .int(768), "model.layers": .int(12), "model.heads": .int(12), "model.patch_size": .int(16),
                "data.color_jitter": .bool(false), "train.backbone_lr_mult": .float(1),
                "model.pretrained": .string("pretrained/clip_vitb16.safetensors"),
            ]) { $1 })
            try check("k400/aim_vitl14_clip_\(t)f.yaml", common.merging(frames) { $1 }.merging([
                "model.width": .int(1024), "model.layers": .int(24), "model.heads": .int(16), "model.patch_size": .int(14),
                "data.color_jitter": .bool(true), "train.backbone_lr_mult": .float(0.1),
                "train.no_decay_keys": .strings(["class_embedding", "positional_embedding"]),
                "model.pretrained": .string("pretrained/clip_vitl14.safetensors"),
            ]) { $1 })
        }
        for p in ["bottom6", "top6", "skip"] {
            try check("k400/aim_vitb16_clip_8f_\(p).yaml", common.merging(["model.adapter_layers": .string(p), "model.num_frames": .int(8)]) { $1 })
        }
        try check("k400/timesformer_vitb16_clip_8f.yaml", [
            "model.backbone": .string("timesformer"), "model.adapters": .strings([]), "model.tune": .string("all"),
            "model.drop_path_rate": .float(0.1), "train.weight_decay": .float(5e-6), "model.num_frames": .int(8),
        ])
        try check("k400/finetune_space_only_vitb16_clip_8f.yaml", [
            "model.backbone": .string("clip"), "model.adapters": .strings([]), "model.tune": .string("all"),
            "model.num_classes": .int(400),
        ])
    }

    func testKinetics700() throws {
        for (arch, width) in [("vitb16", 768), ("vitl14", 1024)] {
            try check("k700/aim_\(arch)_clip_32f.yaml", [
                "model.num_classes": .int(700), "model.width": .int(width), "model.num_frames": .int(32),
                "data.frame_interval": .int(4), "data.test_num_clips": .int(3), "data.test_crop": .string("three"),
                "data.color_jitter": .bool(false), "train.backbone_lr_mult": .float(1), "train.epochs": .int(30),
                "data.root": .string("data/kinetics700/train_256"),
            ])
        }
    }

    func testSomethingSomethingV2() throws {
        let recipe: [String: ConfigValue] = [
            "model.num_classes": .int(174), "model.num_frames": .int(8), "model.num_tadapter": .int(2),
            "model.adapter_scale": .float(1), "model.drop_path_rate": .float(0.2), "train.label_smoothing": .float(0.1),
            "train.epochs": .int(50), "data.flip_ratio": .float(0), "data.rand_augment": .bool(true),
            "data.rand_augment_n": .int(4), "data.rand_augment_m": .int(7), "data.random_erasing": .float(0.25),
            "data.frame_uniform": .bool(true), "data.test_num_clips": .int(1), "data.test_crop": .string("three"),
            "data.root": .string("data/sthv2/videos"),
        ]
        let in21k = recipe.merging(["model.backbone": .string("imagenet"), "data.mean": imagenetMean,
                                    "model.divided_space_time": .bool(false)]) { $1 }
        try check("ssv2/ablation_frozen_space_only.yaml", in21k.merging(["model.adapters": .strings([]), "model.tune": .string("adapters")]) { $1 })
        try check("ssv2/ablation_finetuned_space_only.yaml", in21k.merging(["model.adapters": .strings([]), "model.tune": .string("all")]) { $1 })
        try check("ssv2/ablation_timesformer.yaml", in21k.merging([
            "model.adapters": .strings([]), "model.tune": .string("all"), "model.divided_space_time": .bool(true),
        ]) { $1 })
        try check("ssv2/ablation_spatial.yaml", in21k.merging(["model.adapters": .strings(["spatial"]), "model.tune": .string("adapters")]) { $1 })
        try check("ssv2/ablation_temporal.yaml", in21k.merging(["model.adapters": .strings(["temporal", "spatial"])]) { $1 })
        try check("ssv2/ablation_aim.yaml", in21k.merging(["model.adapters": aimAll]) { $1 })
        try check("ssv2/aim_vitb16_clip.yaml", recipe.merging(["model.backbone": .string("clip"), "data.mean": clipMean, "model.adapters": aimAll]) { $1 })
    }

    func testDiving48() throws {
        let common: [String: ConfigValue] = [
            "model.num_classes": .int(48), "model.num_frames": .int(32), "data.frame_uniform": .bool(true),
            "data.test_num_clips": .int(1), "train.epochs": .int(50), "data.flip_ratio": .float(0.5),
            "model.adapter_scale": .float(0.5), "train.label_smoothing": .float(0),
        ]
        try check("diving48/aim_vitb16_clip_32f.yaml", common.merging(["model.width": .int(768), "data.test_crop": .string("three")]) { $1 })
        try check("diving48/aim_vitl14_clip_32f.yaml", common.merging(["model.width": .int(1024), "data.test_crop": .string("center")]) { $1 })
    }

    func testDebugConfigsShareOneTinyBackbone() throws {
        let backbone = ["model.backbone", "model.width", "model.layers", "model.heads", "model.patch_size",
                        "model.input_resolution", "model.num_frames", "model.pretrained", "data.crop_size", "data.mean"]
        let aim = try Self.load("debug/tiny_aim.yaml")
        XCTAssertEqual(aim.int("model.width"), 64)
        XCTAssertEqual(aim.int("model.input_resolution"), aim.int("data.crop_size"))
        XCTAssertEqual(aim.string("model.pretrained"), "work_dirs/demo/backbone.safetensors")
        XCTAssertEqual(aim.value("model.adapters"), aimAll)
        XCTAssertEqual(aim.string("data.format"), "list")
        for (name, tune) in [("tiny_space_only", "adapters"), ("tiny_full_finetune", "all")] {
            let c = try Self.load("debug/\(name).yaml")
            XCTAssertEqual(c.strings("model.adapters"), [], name)
            XCTAssertEqual(c.string("model.tune"), tune, name)
            for key in backbone { XCTAssertEqual(c.value(key), aim.value(key), "\(name): \(key)") }
        }
        // The data is given on the command line.
        let given = try Config.load(path: Self.configs.appendingPathComponent("debug/tiny_aim.yaml").path, overrides: [
            "data.root=work_dirs/demo/videos", "data.train=work_dirs/demo/train.txt",
            "data.val=work_dirs/demo/val.txt", "model.num_classes=6",
        ])
        XCTAssertEqual(given.int("model.num_classes"), 6)
        XCTAssertEqual(given.string("data.train"), "work_dirs/demo/train.txt")
    }
}
