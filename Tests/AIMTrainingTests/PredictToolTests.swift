import AIMTraining
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `aim-predict`: top-k classes with names for videos and folders (table, JSON Lines, CSV), the
/// same scores as `aim-eval --predictions`, per-window prediction of a long video with its CSV and
/// SVG timeline, and bad input (a corrupt or missing video among good ones, a label map that
/// does not fit, a checkpoint of another class count).
final class PredictToolTests: TrainToolTestCase {
    struct Setup { let data: URL; let checkpoint: String; let base: [String] }

    func setUpModel() throws -> Setup {
        let data = try makeDataset()
        let wd = workDir("wd")
        let r = try train(trainArgs(data: data, workDir: wd, steps: 4))
        XCTAssertEqual(r.status, 0, r.output)
        let checkpoint = wd.appendingPathComponent("latest.safetensors").path
        let base = ["--config", Self.tinyConfig, "--threads", "1", "--checkpoint", checkpoint,
                    "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                    "--set", "model.num_classes=4", "--set", "model.pretrained=",
                    "--set", "data.classes=\(data.path)/classes.txt"]
        return Setup(data: data, checkpoint: checkpoint, base: base)
    }

    func jsonLines(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    func testNamesFormatsAndAgreementWithEval() throws {
        let s = try setUpModel()
        let predict = try tool("aim-predict")
        let classes = ["move_right", "move_left", "move_down", "move_up"]
        let valDir = s.data.appendingPathComponent("videos/val").path

        // Hidden files and folders (macOS's `._x.avi`) are not inputs, as aim-data list skips them.
        let hidden = URL(fileURLWithPath: valDir).appendingPathComponent(".hidden")
        try FileManager.default.createDirectory(at: hidden, withIntermediateDirectories: true)
        try Data("resource fork".utf8).write(to: URL(fileURLWithPath: valDir).appendingPathComponent("._x.avi"))
        try Data("resource fork".utf8).write(to: hidden.appendingPathComponent("y.avi"))

        // JSON Lines over a folder: every video once, 4 classes ranked, probabilities summing to 1.
        var r = try run(predict, s.base + ["--json", "--top-k", "4", valDir])
        try FileManager.default.removeItem(at: hidden)
        try FileManager.default.removeItem(at: URL(fileURLWithPath: valDir).appendingPathComponent("._x.avi"))
        XCTAssertEqual(r.status, 0, r.output)
        let rows = try jsonLines(r.output)
        XCTAssertEqual(rows.count, 8, r.output)
        var predicted: [String: (label: Int, p: Double)] = [:]
        for row in rows {
            let top = try XCTUnwrap(row["top"] as? [[String: Any]])
            XCTAssertEqual(top.count, 4)
            let ps = top.compactMap { $0["probability"] as? Double }
            XCTAssertEqual(ps, ps.sorted(by: >))
            XCTAssertEqual(ps.reduce(0, +), 1, accuracy: 1e-4)
            for t in top { XCTAssertEqual(t["class"] as? String, classes[t["label"] as! Int]) }
            let video = try XCTUnwrap(row["video"] as? String)
            predicted[URL(fileURLWithPath: video).lastPathComponent] = (top[0]["label"] as! Int, ps[0])
        }

        // aim-eval --predictions scores the same videos with the same views: same top-1 and probability.
        let csv = scratch.appendingPathComponent("pred.csv").path
        r = try run(try tool("aim-eval"), s.base + ["--predictions", csv])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("per-class accuracy") && r.output.contains("move_up"), r.output)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "video,label,class,top1_label,top1_class,top1_prob,top2_label,top2_class,top2_prob,top3_label,top3_class,top3_prob,top4_label,top4_class,top4_prob")
        XCTAssertEqual(lines.count, 9)
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let name = URL(fileURLWithPath: f[0]).lastPathComponent
            let p = try XCTUnwrap(predicted[name], name)
            XCTAssertEqual(Int(f[3]), p.label, name)
            XCTAssertEqual(Double(f[5])!, p.p, accuracy: 1e-5, name)
            XCTAssertEqual(f[2], classes[Int(f[1])!], "true class name")
        }

        // The table names classes; CSV has a header and one row per video.
        let two = try FileManager.default.contentsOfDirectory(atPath: valDir).sorted().prefix(2).map { valDir + "/" + $0 }
        r = try run(predict, s.base + two)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(two.allSatisfy { r.output.contains($0) }, r.output)
        XCTAssertTrue(r.output.contains("  1. ") && classes.contains { r.output.contains($0) }, r.output)
        r = try run(predict, s.base + ["--csv", "--top-k", "2"] + two)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("video,top1_label,top1_class,top1_prob,top2_label,top2_class,top2_prob"), r.output)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.hasPrefix(valDir) }.count, 2, r.output)
    }

    func testBadVideosMapsAndCheckpoints() throws {
        let s = try setUpModel()
        let predict = try tool("aim-predict")
        let valDir = s.data.appendingPathComponent("videos/val").path
        let mixed = scratch.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: mixed, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: valDir).sorted().prefix(2) {
            try FileManager.default.copyItem(atPath: valDir + "/" + name, toPath: mixed.appendingPathComponent(name).path)
        }
        try Data(repeating: 0x5A, count: 4096).write(to: mixed.appendingPathComponent("broken.mp4"))
        let missing = scratch.appendingPathComponent("gone.mp4").path

        // One line per bad input, the good ones still predicted, status 1 at the end.
        var r = try run(predict, s.base + ["--csv", mixed.path, missing])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.signalled)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.contains("broken.mp4") }.count, 1, r.output)
        XCTAssertTrue(r.output.contains("\(missing): no such file"), r.output)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.hasPrefix(mixed.path) && !$0.contains("broken") }.count, 2, r.output)
        XCTAssertTrue(r.output.contains("2 of 4 inputs could not be predicted"), r.output)

        // A label map with fewer names than classes: refused before any video is looked at.
        let short = scratch.appendingPathComponent("three.txt")
        try Data("a\nb\nc\n".utf8).write(to: short)
        r = try run(predict, s.base + ["--set", "data.classes=\(short.path)", missing])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains(short.path) && r.output.contains("names 3 classes"), r.output)
        XCTAssertFalse(r.output.contains("no such file"), "a video was looked at before the map was checked: \(r.output)")

        // aim-data check refuses the same map for the config, and names a fitting one.
        let dataArgs = ["check", "--config", Self.tinyConfig, "--set", "data.root=\(s.data.path)",
                        "--set", "data.train=\(s.data.path)/train_list.txt", "--set", "model.num_classes=4"]
        r = try run(try tool("aim-data"), dataArgs + ["--set", "data.classes=\(short.path)"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("names 3 classes, model.num_classes is 4"), r.output)
        r = try run(try tool("aim-data"), dataArgs + ["--set", "data.classes=\(s.data.path)/classes.txt"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("4 class names"), r.output)

        // A checkpoint of another class count: the first mismatching key with both shapes.
        let five = scratch.appendingPathComponent("five.txt")
        try Data("a\nb\nc\nd\ne\n".utf8).write(to: five)
        r = try run(predict, s.base + ["--set", "model.num_classes=5", "--set", "data.classes=\(five.path)", mixed.path])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("cls_head.fc_cls.weight: file [4, 64], model [5, 64]"), r.output)

        // Under mpirun every rank would label every video and print it again: refused (64).
        r = try run(try mpirun(), ["-n", "2", "--oversubscribe", predict] + s.base + [mixed.path])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("aim-predict: error: it runs as one process"), r.output)
        XCTAssertEqual(r.output.components(separatedBy: "runs as one process").count, 2, "printed once (rank 0): \(r.output)")
        XCTAssertFalse(r.output.contains(mixed.path + "/"), "a video was predicted: \(r.output)")
    }

    func testLongVideoWindowsWriteCSVAndTimeline() throws {
        let s = try setUpModel()
        let valDir = s.data.appendingPathComponent("videos/val").path
        // Three 16-frame clips of different classes one after another: a 48-frame video at 25 fps.
        let parts = try FileManager.default.contentsOfDirectory(atPath: valDir).sorted().filter { $0.hasSuffix("_000000.mp4") || $0.hasSuffix("_000000.avi") || $0.hasSuffix("_000000.mkv") }.prefix(3)
        XCTAssertEqual(parts.count, 3, "\(parts)")
        let long = scratch.appendingPathComponent("long.mp4").path
        var args = ["-v", "error", "-y"]
        for p in parts { args += ["-i", valDir + "/" + p] }
        args += ["-filter_complex", "concat=n=3:v=1:a=0", "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p", long]
        let ff = Process()
        ff.executableURL = URL(fileURLWithPath: "/usr/bin/env"); ff.arguments = ["ffmpeg"] + args
        try ff.run(); ff.waitUntilExit()
        try XCTSkipIf(ff.terminationStatus != 0, "ffmpeg could not make the long video")

        let out = scratch.appendingPathComponent("windows")
        let r = try run(try tool("aim-predict"), s.base + ["--window", "0.64", "--stride", "0.32", "--top-k", "2", "--out", out.path, long])
        XCTAssertEqual(r.status, 0, r.output)
        let csv = try String(contentsOf: out.appendingPathComponent("long.windows.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "start,end,top1_label,top1_class,top1_prob,top2_label,top2_class,top2_prob")
        let expected = Predictor.windows(duration: 48.0 / 25, window: 0.64, stride: 0.32)
        XCTAssertEqual(csv.count - 1, expected.count, csv.joined(separator: "\n"))
        for (line, w) in zip(csv.dropFirst(), expected) {
            let f = line.split(separator: ",").map(String.init)
            XCTAssertEqual(Double(f[0])!, w.0, accuracy: 1e-3); XCTAssertEqual(Double(f[1])!, w.1, accuracy: 1e-3)
            XCTAssertTrue(["move_right", "move_left", "move_down", "move_up"].contains(f[3]), line.description)
        }
        // The timeline is well-formed SVG with one line per plotted class.
        let svg = try Data(contentsOf: out.appendingPathComponent("long.timeline.svg"))
        final class Counter: NSObject, XMLParserDelegate {
            var polylines = 0
            func parser(_ p: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if e == "polyline" { polylines += 1 }
            }
        }
        let parser = XMLParser(data: svg), counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "timeline SVG does not parse: \(parser.parserError.map { "\($0)" } ?? "")")
        XCTAssertEqual(counter.polylines, 4, "every class plotted (4 classes ≤ 5 lines)")

        // Two inputs of one name in different folders: x.windows.csv and x-2.windows.csv (the
        // second overwrote the first before).
        let twin = scratch.appendingPathComponent("twin")
        try FileManager.default.createDirectory(at: twin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: long, toPath: twin.appendingPathComponent("long.mp4").path)
        let both = scratch.appendingPathComponent("windows2")
        let r2 = try run(try tool("aim-predict"), s.base + ["--window", "0.64", "--out", both.path, long, twin.appendingPathComponent("long.mp4").path])
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: both.path).sorted(),
                       ["long-2.timeline.svg", "long-2.windows.csv", "long.timeline.svg", "long.windows.csv"], r2.output)
    }
}
