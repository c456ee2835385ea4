import AIMConfig
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// Issue 5: `aim-eval --config C --checkpoint P [--views TxS] [--json]` prints top-1, top-5 and
/// mean-class accuracy as fractions over data.val (the test split when data.test is empty).
final class EvalToolTests: TrainToolTestCase {
    func testJSONKeysFractionsAndViews() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 4))
        XCTAssertEqual(r.status, 0, r.output)
        let eval = try tool("aim-eval")
        func args(_ checkpoint: String) -> [String] {
            ["--config", Self.tinyConfig, "--threads", "1", "--checkpoint", checkpoint,
             "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
             "--set", "model.num_classes=4", "--set", "model.pretrained="]
        }
        let base = args(wd.appendingPathComponent("latest.safetensors").path)

        r = try run(eval, base + ["--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let line = try XCTUnwrap(r.output.split(separator: "\n").last { $0.hasPrefix("{") }, r.output)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(Set(obj.keys), ["top1", "top5", "mean_class_accuracy", "videos", "skipped", "views", "average_clips", "per_class", "confused_pairs",
                                        "predicted_only_labels"])
        // Per class: every validation video counted once, and the correct ones add up to top-1.
        let perClass = try XCTUnwrap(obj["per_class"] as? [[String: Any]])
        XCTAssertEqual(perClass.compactMap { $0["videos"] as? Int }.reduce(0, +), 8)
        let correct = perClass.compactMap { $0["correct"] as? Int }.reduce(0, +)
        XCTAssertEqual(Double(correct) / 8, try XCTUnwrap(obj["top1"] as? Double), accuracy: 1e-9)
        XCTAssertNil(perClass.first?["class"], "no label map: no class names made up")
        let pairs = try XCTUnwrap(obj["confused_pairs"] as? [[String: Any]])
        let confused = pairs.compactMap { $0["videos"] as? Int }.reduce(0, +)
        if pairs.count < 10 { XCTAssertEqual(confused, 8 - correct, "every wrong video is in one pair") } else { XCTAssertLessThanOrEqual(confused, 8 - correct) }
        let videos = try XCTUnwrap(obj["videos"] as? Int)
        XCTAssertEqual(videos, 8, "2 validation videos × 4 classes")
        XCTAssertEqual(obj["skipped"] as? Int, 0)
        for k in ["top1", "top5", "mean_class_accuracy"] {
            let x = try XCTUnwrap(obj[k] as? Double, k)
            XCTAssertTrue(x >= 0 && x <= 1, "\(k) = \(x) is not a fraction")
        }
        // top-1 counts whole videos; with 4 classes every label is in the top 5.
        let top1 = obj["top1"] as! Double
        XCTAssertEqual(top1 * Double(videos), (top1 * Double(videos)).rounded(), accuracy: 1e-9)
        XCTAssertEqual(obj["top5"] as? Double, 1)

        // Views: the text form reports frames × clips × crops. The tiny config samples uniformly
        // (frame_uniform, one clip per video, as the official SSv2 sampler), so more temporal
        // clips need the regular sampler; asking for them with frame_uniform is an error.
        r = try run(eval, base)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("views 8×1×1"), r.output)
        let regular = ["--set", "data.frame_uniform=false", "--set", "data.frame_interval=1"]
        r = try run(eval, base + regular + ["--views", "2x3"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("views 8×2×3"), r.output)
        XCTAssertTrue(r.output.contains("8 videos"), r.output)
        r = try run(eval, base + regular + ["--views", "2x3", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertNotNil(r.output.split(separator: "\n").last { $0.hasPrefix("{") && $0.contains("\"videos\":8") && $0.contains("\"views\":\"8×2×3\"")
                                                                && $0.contains("\"average_clips\":\"prob\"") }, r.output)
        r = try run(eval, base + ["--views", "1x3"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("views 8×1×3"), r.output)
        // As the result lines print them, frames first: the frames must be the model's.
        r = try run(eval, base + ["--views", "8×1×3"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("views 8×1×3"), r.output)
        r = try run(eval, base + ["--views", "16x1x3"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("model.num_frames 8"), r.output)
        r = try run(eval, base + ["--views", "2x3"])
        XCTAssertNotEqual(r.status, 0, "2 clips silently became 1 under frame_uniform: \(r.output)")
        XCTAssertTrue(r.output.contains("data.frame_uniform"), r.output)

        r = try run(eval, base + ["--views", "2by3"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("--views"), r.output)
        // mmaction2's --average-clips: score runs; anything else is a malformed option (64).
        r = try run(eval, base + regular + ["--views", "2x3", "--average-clips", "score"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("8 videos"), r.output)
        r = try run(eval, base + ["--average-clips", "mean"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--average-clips mean: expected one of prob, score"), r.output)
        // A checkpoint that does not exist is named.
        let missing = wd.appendingPathComponent("nope.safetensors").path
        r = try run(eval, args(missing))
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(missing), r.output)
        // Under mpirun, a checkpoint of another model is said once for all ranks.
        r = try run(try mpirun(), ["-n", "2", "--oversubscribe", eval] + base + ["--set", "model.num_classes=5"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "aim-eval: error:").count, 2, r.output)
        XCTAssertTrue(r.output.contains("cls_head.fc_cls.weight: file [4, 64], model [5, 64]") && r.output.contains("(all 2 ranks)"), r.output)
    }

    /// A file of every weight (what tools/convert_checkpoint.py makes of an official checkpoint)
    /// evaluates without model.pretrained: the config's backbone file need not exist, and the
    /// result is the checkpoint's with its own backbone.
    func testAFullWeightsFileNeedsNoPretrainedFile() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 2))
        XCTAssertEqual(r.status, 0, r.output)
        let sets = ["data.root=\(data.path)", "data.val=\(data.path)/val_list.txt", "model.num_classes=4"]
        let checkpoint = wd.appendingPathComponent("latest.safetensors").path
        let model = try Launch.loadModel(config: try Config.load(path: Self.tinyConfig, overrides: sets + ["model.pretrained="]),
                                         checkpoint: checkpoint)
        var w = SafetensorsWriter()
        model.addWeights(to: &w)
        let full = scratch.appendingPathComponent("full.safetensors").path
        try w.save(to: full)
        func eval(_ file: String, pretrained: String) throws -> Run {
            try run(try tool("aim-eval"), ["--config", Self.tinyConfig, "--threads", "1", "--json", "--checkpoint", file]
                    + (sets + ["model.pretrained=\(pretrained)"]).flatMap { ["--set", $0] })
        }
        let original = try eval(checkpoint, pretrained: "")
        XCTAssertEqual(original.status, 0, original.output)
        r = try eval(full, pretrained: "/nonexistent/backbone.safetensors")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.split(separator: "\n").last { $0.hasPrefix("{") }, original.output.split(separator: "\n").last { $0.hasPrefix("{") })
        // An aim-swift checkpoint still needs its backbone file.
        r = try eval(checkpoint, pretrained: "/nonexistent/backbone.safetensors")
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("/nonexistent/backbone.safetensors"), r.output)
    }

    /// Bad validation videos are skipped and counted, never scored: the loader stands another video
    /// of the set in for a bad one (training goes on with it), which evaluation counted again —
    /// 9 videos and a different top-1 from 8 good ones and 1 bad one.
    func testBadValidationVideosAreSkippedNotReplaced() throws {
        let data = try makeDataset()
        let wd = workDir("wd")
        var r = try train(trainArgs(data: data, workDir: wd, steps: 2))
        XCTAssertEqual(r.status, 0, r.output)
        try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }).write(to: data.appendingPathComponent("noise.mp4"))
        let clean = try String(contentsOf: data.appendingPathComponent("val_list.txt"), encoding: .utf8)
        let bad = data.appendingPathComponent("val_bad.txt")
        try (clean + "noise.mp4 0\nvideos/gone.mp4 1\nnoise.mp4 2\n").write(to: bad, atomically: true, encoding: .utf8)
        func evaluate(_ list: URL, _ csv: URL) throws -> [String: Any] {
            r = try run(try tool("aim-eval"), ["--config", Self.tinyConfig, "--threads", "1", "--json", "--predictions", csv.path,
                                               "--checkpoint", wd.appendingPathComponent("latest.safetensors").path,
                                               "--set", "data.root=\(data.path)", "--set", "data.val=\(list.path)",
                                               "--set", "model.num_classes=4", "--set", "model.pretrained="])
            XCTAssertEqual(r.status, 0, r.output)
            let line = try XCTUnwrap(r.output.split(separator: "\n").last { $0.hasPrefix("{") }, r.output)
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let cleanCSV = scratch.appendingPathComponent("clean.csv"), badCSV = scratch.appendingPathComponent("bad.csv")
        let good = try evaluate(data.appendingPathComponent("val_list.txt"), cleanCSV), withBad = try evaluate(bad, badCSV)
        XCTAssertEqual(withBad["videos"] as? Int, 8, r.output)
        XCTAssertEqual(withBad["skipped"] as? Int, 3, r.output)
        for k in ["top1", "top5", "mean_class_accuracy"] { XCTAssertEqual(withBad[k] as? Double, good[k] as? Double, k) }
        XCTAssertEqual(try String(contentsOf: badCSV, encoding: .utf8), try String(contentsOf: cleanCSV, encoding: .utf8))
    }
}
