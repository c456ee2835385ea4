import Foundation
import AIMTensor
import XCTest

/// Bad values are refused, never trapped: each tool over a table of bad options and config
/// values (zero, negative, huge, NaN, pairs that do not fit together, labels outside the classes)
/// ends with a clean non-zero status and one message naming what is wrong — no signal, no
/// "Fatal error", no crash dump.
final class BadValueTests: TrainToolTestCase {
    struct Case {
        let args: [String]
        let expect: String        // a piece of the message that names the key or option
        var status: Int32? = nil  // the documented status, where one is fixed (64 = command line)
    }

    func check(_ tool: String, _ base: [String], _ cases: [Case], file: StaticString = #filePath, line: UInt = #line) throws {
        let exe = try self.tool(tool)
        for c in cases {
            let r = try run(exe, base + c.args, limit: 60)
            let shown = "\(tool) \(c.args.joined(separator: " ")) → status \(r.status):\n\(r.output)"
            XCTAssertFalse(r.signalled, "trapped: \(shown)", file: file, line: line)
            XCTAssertNotEqual(r.status, 0, shown, file: file, line: line)
            if let s = c.status { XCTAssertEqual(r.status, s, shown, file: file, line: line) }
            XCTAssertFalse(r.output.contains("Fatal error"), shown, file: file, line: line)
            XCTAssertFalse(r.output.contains("Stack dump") || r.output.contains("Crash"), shown, file: file, line: line)
            XCTAssertTrue(r.output.contains(c.expect), "message should name '\(c.expect)': \(shown)", file: file, line: line)
        }
    }

    func testAimTrainRefusesBadValues() throws {
        let data = try makeDataset()
        let base = trainArgs(data: data, workDir: workDir("wd"), steps: 2)
        let sets: [(String, String)] = [
            ("model.head_dropout=1.0", "model.head_dropout"), ("model.head_dropout=-0.1", "model.head_dropout"),
            ("model.head_dropout=nan", "model.head_dropout"), ("model.drop_path_rate=1", "model.drop_path_rate"),
            ("train.label_smoothing=1", "train.label_smoothing"), ("train.lr=-1", "train.lr"), ("train.lr=.inf", "train.lr"),
            ("train.batch_size=0", "train.batch_size"), ("train.batch_size=99999999999", "train.batch_size"),
            ("train.batch_size=9000000", "train.batch_size"), ("train.micro_batch=3", "train.micro_batch"),
            ("model.width=1000000000", "model.width"), ("model.heads=5", "model.heads"), ("model.mlp_ratio=0", "model.mlp_ratio"),
            ("model.adapter_mlp_ratio=0", "model.adapter_mlp_ratio"), ("model.patch_size=7", "model.input_resolution"),
            ("data.short_side=8", "data.short_side"), ("data.crop_size=64", "data.crop_size"), ("data.clip_len=4", "data.clip_len"),
            ("data.test_short_side=8", "data.test_short_side"), ("train.warmup_epochs=1e300", "train.warmup_epochs"),
            ("dist.bucket_mb=1e300", "dist.bucket_mb"), ("checkpoint.max_failures=0", "checkpoint.max_failures"),
            ("threads=-2", "threads"), ("threads=100000", "threads"), ("data.workers=-1", "data.workers"),
            ("train.max_steps=-5", "train.max_steps"), ("train.epochs=99999999999999", "train.epochs"),
            ("data.mean=[1, 2]", "data.mean"), ("data.std=[0, 1, 1]", "data.std"), ("train.betas=[0.9, 1.0]", "train.betas"),
            ("model.num_classes=0", "model.num_classes"),
            // Labels 0..3 in the list: 3 classes leave label 3 outside, named with its file and line.
            ("model.num_classes=3", "train_list.txt:"),
        ]
        var cases = sets.map { Case(args: ["--set", $0.0], expect: $0.1) }
        cases += [
            Case(args: ["--threads", "0"], expect: "--threads", status: 64),
            Case(args: ["--threads=-1"], expect: "--threads", status: 64),
            Case(args: ["--threads", "100000"], expect: "--threads", status: 64),
            Case(args: ["--max-steps", "0"], expect: "--max-steps", status: 64),
            Case(args: ["--resume", "/nonexistent/step.safetensors"], expect: "/nonexistent/step.safetensors"),
            Case(args: ["--work-dir="], expect: "--work-dir", status: 64),
        ]
        // Swin configs that do not fit together (issue 19), each refused naming its key.
        func swin(_ sets: [String], _ expect: String) -> Case {
            Case(args: ["model.backbone=swin2d", "model.pretrained=", "model.depths=[2, 2]", "model.num_heads=[1, 2]",
                        "model.embed_dim=16", "model.window_size=4"].flatMap { ["--set", $0] } + sets.flatMap { ["--set", $0] }, expect: expect)
        }
        cases += [
            swin(["model.num_heads=[1, 2, 4]"], "model.num_heads"),
            // Read by the `gemm: auto` probe's list of products before a model is built (it trapped there).
            swin(["model.depths=[2, 2, 2]"], "model.num_heads"),
            swin(["model.depths=[2, 0]"], "model.depths"),
            swin(["model.patch_size=[2, 4]"], "model.patch_size"),
            swin(["model.window_size=3"], "model.window_size"),            // 8×8 grid, window 3
            swin(["model.window_size=[2, 4]"], "model.window_size"),
            swin(["model.backbone=videoswin", "model.window_size=[2, 4, 4]"], "model.tune"),
        ]
        try check("aim-train", base, cases)
    }

    func testAimTrainRefusesAnnotationsThatCannotTrain() throws {
        let data = try makeDataset()
        let empty = scratch.appendingPathComponent("empty_list.txt")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty.path, contents: Data()))
        let missing = scratch.appendingPathComponent("missing_list.txt")
        XCTAssertTrue(FileManager.default.createFile(atPath: missing.path, contents: Data("gone/a.mp4 0\ngone/b.mp4 1\ngone/c.mp4 2\n".utf8)))
        // Every listed file there but none a video: an error naming the reasons, not an endless search or a trap.
        let garbage = scratch.appendingPathComponent("garbage")
        try FileManager.default.createDirectory(at: garbage, withIntermediateDirectories: true)
        for name in ["a.mp4", "b.mp4"] { try Data("not a video".utf8).write(to: garbage.appendingPathComponent(name)) }
        let garbageList = scratch.appendingPathComponent("garbage_list.txt")
        try Data("\(garbage.path)/a.mp4 0\n\(garbage.path)/b.mp4 1\n".utf8).write(to: garbageList)
        let base = trainArgs(data: data, workDir: workDir("wd"), steps: 2)
        try check("aim-train", base, [
            Case(args: ["--set", "data.train=\(empty.path)"], expect: "lists no videos"),
            Case(args: ["--set", "data.train=/nonexistent/list.txt"], expect: "/nonexistent/list.txt"),
            // Every listed file is missing: the root is named before any step.
            Case(args: ["--set", "data.train=\(missing.path)"], expect: "none of the 3 videos looked up of the 3"),
            Case(args: ["--set", "data.train=\(garbageList.path)"], expect: "no usable clip"),
        ])
    }

    func testOtherToolsRefuseBadValues() throws {
        let data = try makeDataset()
        let cfg = ["--config", Self.tinyConfig, "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                   "--set", "model.num_classes=4", "--set", "model.pretrained="]
        try check("aim-eval", cfg + ["--checkpoint", "/nonexistent/ckpt.safetensors"], [
            Case(args: ["--threads", "0"], expect: "--threads", status: 64),
            Case(args: ["--threads", "99999"], expect: "--threads", status: 64),
            Case(args: ["--views", "0x1"], expect: "--views", status: 64),
            Case(args: ["--views", "3x2"], expect: "--views", status: 64),
            Case(args: ["--set", "model.head_dropout=2"], expect: "model.head_dropout"),
            Case(args: ["--set", "data.test_crop=three", "--set", "data.test_short_side=40"], expect: "data.test_short_side"),
            Case(args: [], expect: "/nonexistent/ckpt.safetensors"),
        ])
        try check("aim-report", ["efficiency", "--config", Self.tinyConfig, "--out", scratch.appendingPathComponent("r").path], [
            Case(args: ["--threads", "0"], expect: "--threads", status: 64),
            Case(args: ["--steps", "0"], expect: "--steps", status: 64),
            Case(args: ["--steps=-3"], expect: "--steps", status: 64),
            Case(args: ["--ranks", "0"], expect: "--ranks", status: 64),
            Case(args: ["--sweep", "ranks=0,1"], expect: "--sweep"),
            Case(args: ["--set", "train.batch_size=0"], expect: "train.batch_size"),
            Case(args: ["--config", Self.tinyConfig], expect: "measured twice", status: 64),
        ])
        // A later config's typo is found before the first one is measured (it threw the measurement away).
        let later = try run(try tool("aim-report"), ["efficiency", "--config", Self.tinyConfig, "--config", "/nonexistent/later.yaml",
                                                     "--set", "model.pretrained=", "--out", scratch.appendingPathComponent("r3").path])
        XCTAssertEqual(later.status, 1, later.output)
        XCTAssertTrue(later.output.contains("/nonexistent/later.yaml") && !later.output.contains("measuring"), later.output)
        // A Swin config whose lists do not fit together, in the tools that read a config before building a model.
        let swinMismatch = ["--config", Self.tinySwinConfig, "--set", "model.depths=[2, 2, 2]", "--set", "model.pretrained="]
        try check("aim-model", ["cpu"], [Case(args: swinMismatch, expect: "model.num_heads")])
        try check("aim-eval", ["--checkpoint", "/nonexistent/ckpt.safetensors"], [Case(args: swinMismatch, expect: "model.num_heads")])
        // Sizes past the config keys' ranges: refused, not an overflow trap or a failed allocation.
        let video = data.appendingPathComponent("videos/train").path
        let firstVideo = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: video).sorted().first)
        try check("aim-data", ["clip", "--video", "\(video)/\(firstVideo)", "--output", scratch.appendingPathComponent("c.safetensors").path], [
            Case(args: ["--clip-len", "8", "--num-clips", "99999999999"], expect: "--num-clips", status: 64),
            Case(args: ["--clip-len", "99999999999"], expect: "--clip-len", status: 64),
            Case(args: ["--clip-len", "8", "--frame-interval", "9223372036854775807", "--num-clips", "2"], expect: "--frame-interval", status: 64),
            Case(args: ["--clip-len", "8", "--size", "100000", "100000"], expect: "--size", status: 64),
            Case(args: ["--clip-len", "1024", "--num-clips", "1000", "--size", "4000", "4000"], expect: "memory"),
        ])
        try check("aim-data", ["decode-bench", "--dir", scratch.appendingPathComponent("db").path],
                  [Case(args: ["--clips-per-thread", "0"], expect: "--clips-per-thread", status: 64)])
        // Sizes and counts that died allocating, overflowed, ran without end, or wrote nowhere.
        let aFile = scratch.appendingPathComponent("a_file")
        try Data("x".utf8).write(to: aFile)
        let synthOut = scratch.appendingPathComponent("synth").path
        try check("aim-data", ["synth"], [
            Case(args: [synthOut, "--frames", "9223372036854775807"], expect: "--frames", status: 64),
            Case(args: [synthOut, "--size", "4294967296"], expect: "--size", status: 64),
            Case(args: [synthOut, "--val-per-class=-1"], expect: "--val-per-class", status: 64),
            Case(args: [synthOut, "--per-class", "9223372036854775807"], expect: "--per-class", status: 64),
            Case(args: [synthOut, "--frames", "10000", "--size", "4096"], expect: "1 GB", status: 64),
            Case(args: [aFile.path], expect: "is a file", status: 64),
        ])
        try check("aim-data", ["shard", "--config", Self.tinyConfig, "--split", "val", "--out", scratch.appendingPathComponent("sh").path], [
            Case(args: ["--shard-size", "8EiB"], expect: "--shard-size", status: 64),
            Case(args: ["--shard-size", "9999999999G"], expect: "1TiB", status: 64),
        ])
        try check("aim-data", ["shard", "--config", Self.tinyConfig, "--split", "val", "--set", "data.root=\(data.path)",
                               "--set", "data.val=\(data.path)/val_list.txt", "--set", "model.num_classes=4"],
                  [Case(args: ["--out", aFile.path], expect: "is a file", status: 64)])
        let predict = ["--config", Self.tinyConfig, "--checkpoint", "/nonexistent/ckpt.safetensors", "\(video)/\(firstVideo)"]
        try check("aim-predict", predict, [
            Case(args: ["--window=1e-308"], expect: "--window", status: 64),
            Case(args: ["--window=0.32", "--stride=1e308"], expect: "--stride", status: 64),
            Case(args: ["--window=0.32", "--stride=1e-9"], expect: "--stride", status: 64),
            Case(args: ["--window=0.32", "--out="], expect: "--out", status: 64),
            Case(args: ["--window=0.32", "--out", aFile.path], expect: "is a file", status: 64),
            Case(args: ["--out", scratch.path], expect: "--out needs --window", status: 64),
        ])
        try check("aim-report", ["efficiency", "--config", Self.tinyConfig], [
            Case(args: ["--out", scratch.appendingPathComponent("r2").path, "--sweep", "model.num_frames=4", "--sweep", "ranks=1"],
                 expect: "one variable per report", status: 64),
            Case(args: ["--out", scratch.appendingPathComponent("r2").path, "--sweep=model.num_frames=,"], expect: "empty value", status: 64),
            Case(args: ["--out", aFile.path], expect: "is a file", status: 64),
            Case(args: ["--out", scratch.appendingPathComponent("r2").path, "--ranks", "2", "--sweep", "ranks=1"], expect: "give one of them", status: 64),
        ])
        // A config that is not UTF-8: the line, not Foundation's "couldn't be opened".
        let latin1 = scratch.appendingPathComponent("latin1.yaml")
        try Data("model:\n  num_classes: 4\n# caf\u{E9}\n".utf8.map { $0 } .replacingUTF8E9()).write(to: latin1)
        try check("aim-model", ["info"], [Case(args: ["--config", latin1.path], expect: "\(latin1.path):3: not UTF-8 text")])
        try check("aim-report", ["curves", scratch.path], [Case(args: ["--out="], expect: "--out", status: 64),
                                                             Case(args: ["--out", aFile.path], expect: "is a file", status: 64),
                                                             Case(args: [scratch.path + "/", "--out", scratch.appendingPathComponent("c").path],
                                                                  expect: "given twice", status: 64)])
        let empty = scratch.appendingPathComponent("empty.txt")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty.path, contents: Data("\r\n\r\n".utf8)))
        try check("aim-data", ["check"], [
            Case(args: ["--list", "\(data.path)/train_list.txt", "--root", data.path, "--threads", "0"], expect: "--threads", status: 64),
            Case(args: ["--list", empty.path], expect: "lists no videos"),
            Case(args: ["--list", "\(data.path)/train_list.txt", "--root", data.path, "--num-classes", "2"], expect: "train_list.txt:"),
            Case(args: ["--config", Self.tinyConfig, "--set", "data.train=\(empty.path)"], expect: "lists no videos"),
        ])
    }

    /// Weight files that used to give wrong numbers with exit 0, or hang: a `model.pretrained` without
    /// the frozen weights (they would stay random for the whole run), a FIFO named as a weights file
    /// (the open blocked), a checkpoint without a checksum holding a NaN (top-1 read NaN logits as hits).
    func testWeightFilesThatWouldMislead() throws {
        let data = try makeDataset()
        let base = trainArgs(data: data, workDir: workDir("wd"), steps: 2)
        let emptyObject = scratch.appendingPathComponent("empty_object.safetensors")
        try Data([8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8)).write(to: emptyObject)
        let fifo = scratch.appendingPathComponent("fifo.safetensors").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try check("aim-train", base, [
            Case(args: ["--set", "model.pretrained=\(emptyObject.path)"], expect: "frozen weights are not in the file"),
            Case(args: ["--set", "model.pretrained=\(fifo)"], expect: "not a regular file"),
        ])
        // A checkpoint as tools/convert_checkpoint.py writes one (no checksum), with a NaN in the head.
        let wd = workDir("good")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 2))
        XCTAssertEqual(r.status, 0, r.output)
        let good = try SafetensorsFile(path: wd.appendingPathComponent("latest.safetensors").path)
        var w = SafetensorsWriter()
        for name in good.names where !name.hasPrefix("optimizer.") {
            let t = try good.tensor(named: name)
            if name == "cls_head.fc_cls.bias" { t.data[1] = .nan }
            w.add(name, tensor: t)
        }
        let poisoned = scratch.appendingPathComponent("nan.safetensors")
        try w.save(to: poisoned.path)
        let evalArgs = ["--config", Self.tinyConfig, "--threads", "1", "--set", "data.root=\(data.path)",
                        "--set", "data.val=\(data.path)/val_list.txt", "--set", "model.num_classes=4", "--set", "model.pretrained="]
        try check("aim-eval", evalArgs, [
            Case(args: ["--checkpoint", poisoned.path], expect: "cls_head.fc_cls.bias: value 1 is nan"),
            Case(args: ["--checkpoint", fifo], expect: "not a regular file"),
        ])
    }
}

private extension Array where Element == UInt8 {
    /// "é" in UTF-8 (C3 A9) replaced by its Latin-1 byte (E9): text that is not UTF-8.
    func replacingUTF8E9() -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while i < count {
            if i + 1 < count && self[i] == 0xC3 && self[i + 1] == 0xA9 { out.append(0xE9); i += 2 } else { out.append(self[i]); i += 1 }
        }
        return out
    }
}
