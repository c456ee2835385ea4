import Foundation
import XCTest

/// `aim-data list` end to end: the demo's videos moved into one folder per class, listed for
/// training and validation (validation reading the training label map), then trained on.
final class DataListToolTests: TrainToolTestCase {
    func testClassFoldersTrainThroughTheirLists() throws {
        let data = try makeDataset()
        let mine = scratch.appendingPathComponent("my_videos")
        let names = try String(contentsOf: data.appendingPathComponent("classes.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        for split in ["train", "val"] {
            for line in try String(contentsOf: data.appendingPathComponent("\(split)_list.txt"), encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: " ")
                let folder = mine.appendingPathComponent("\(split)/\(names[Int(parts[1])!])")
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: data.appendingPathComponent(String(parts[0])),
                                                 to: folder.appendingPathComponent((split == "val" ? "val_" : "") + (String(parts[0]) as NSString).lastPathComponent))
            }
        }
        let list = try tool("aim-data")
        var r = try run(list, ["list", mine.appendingPathComponent("train").path, "--out", mine.appendingPathComponent("train_list.txt").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("16 videos in 4 classes") && r.output.contains("(written, 4 classes)"), r.output)
        let trainDir = mine.appendingPathComponent("train").path, valDir = mine.appendingPathComponent("val").path
        XCTAssertTrue(r.output.contains("as training data: --set data.root=\(trainDir) --set data.train=") && r.output.contains("--set model.num_classes=4"), r.output)
        r = try run(list, ["list", mine.appendingPathComponent("val").path, "--out", mine.appendingPathComponent("val_list.txt").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("(read, 4 classes)"), r.output)
        XCTAssertTrue(r.output.contains("--set data.val_root=\(valDir) --set data.val=\(mine.path)/val_list.txt"), r.output)
        XCTAssertFalse(r.output.contains("as training data"), "one suggestion per list: pasted together, both validated on the training videos\n\(r.output)")
        // Class names sorted: the label map is the sorted demo names, not their synth order.
        let map = try String(contentsOf: mine.appendingPathComponent("classes.txt"), encoding: .utf8)
        XCTAssertEqual(map, names.sorted().map { $0 + "\n" }.joined())

        var args = ["--config", Self.tinyConfig, "--work-dir", workDir("wd").path, "--threads", "1"]
        for s in ["data.root=\(mine.path)/train", "data.val_root=\(mine.path)/val", "data.train=\(mine.path)/train_list.txt",
                  "data.val=\(mine.path)/val_list.txt", "data.classes=\(mine.path)/classes.txt", "model.num_classes=4",
                  "model.pretrained=", "train.max_steps=2", "train.batch_size=8", "train.micro_batch=8"] { args += ["--set", s] }
        r = try train(args)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("(8 videos, 0 skipped)"), r.output)

        // data.val_root forgotten: the validation list's paths are looked up under data.root and
        // none is there; refused before the first step (not at the first evaluation), naming the key.
        let withoutValRoot = args.enumerated().filter { !($0.element.hasPrefix("data.val_root=") || (args.indices.contains($0.offset + 1) && args[$0.offset + 1].hasPrefix("data.val_root="))) }.map(\.element)
        r = try train(withoutValRoot.map { $0 == workDir("wd").path ? workDir("wd2").path : $0 })
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("config key data.root: none of the 8 videos looked up of the 8 that \(mine.path)/val_list.txt lists exists under data.root"), r.output)
        XCTAssertTrue(r.output.contains("data.val_root, which is empty"), r.output)
        XCTAssertFalse(r.output.contains("step 1/"), r.output)

        // The folder of class folders given as data.train: named with its key and the tool that lists it.
        r = try train(["--config", Self.tinyConfig, "--work-dir", workDir("wd3").path, "--set", "data.train=\(mine.path)/train",
                       "--set", "model.num_classes=4", "--set", "model.pretrained="])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("config key data.train: \(mine.path)/train is a folder, not an annotation file") && r.output.contains("aim-data list"), r.output)

        // A file given as the folder is a malformed command line.
        r = try run(list, ["list", mine.appendingPathComponent("classes.txt").path, "--out", scratch.appendingPathComponent("x.txt").path])
        XCTAssertEqual(r.status, 64, r.output)
    }

    /// Empty files named as videos: `list` reads names only.
    func classFolders(_ files: [String]) throws -> URL {
        let root = scratch.appendingPathComponent("folders-\(UUID().uuidString.prefix(6))")
        for f in files {
            let url = root.appendingPathComponent(f)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: Data()))
        }
        return root
    }

    /// A video below ROOT/<class>/<video> is not listed (mmaction2's --level 2), and the count says so.
    func testDeeperVideosAreCountedNotListed() throws {
        let root = try classFolders(["run/a.mp4", "run/sub/c.mkv", "walk/b.mp4"])
        let out = scratch.appendingPathComponent("deeper_list.txt")
        let r = try run(try tool("aim-data"), ["list", root.path, "--out", out.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "run/a.mp4 0\nwalk/b.mp4 1\n")
        XCTAssertTrue(r.output.contains("1 file(s) deeper than ROOT/<class>/<video> not listed (as mmaction2's build_file_list.py --level 2), e.g. run/sub/c.mkv"), r.output)
    }

    /// An unusable --out or --classes is refused before anything is written: a label map left by a
    /// failed run would be read by the next one as the labels.
    func testUnusableOutputsAreRefusedBeforeTheLabelMapIsWritten() throws {
        let root = try classFolders(["run/a.mp4", "walk/b.mp4"])
        let here = scratch.appendingPathComponent("outputs-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: here.appendingPathComponent("a_folder"), withIntermediateDirectories: true)
        let list = try tool("aim-data")
        let map = here.appendingPathComponent("classes.txt")

        var r = try run(list, ["list", root.path, "--out", here.appendingPathComponent("a_folder").path])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--out \(here.path)/a_folder is a directory"), r.output)
        XCTAssertFalse(r.output.contains("free"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: map.path), r.output)

        let missing = here.appendingPathComponent("missing/list.txt").path
        r = try run(list, ["list", root.path, "--out", missing, "--classes", map.path])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--out \(missing) cannot be written: its folder \(here.path)/missing does not exist"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: map.path), r.output)

        r = try run(list, ["list", root.path, "--out", here.appendingPathComponent("list.txt").path, "--classes", here.appendingPathComponent("a_folder").path])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--classes \(here.path)/a_folder is a directory, not a label map file"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: here.appendingPathComponent("list.txt").path), r.output)

        // Then the same command with a file for --out writes both.
        r = try run(list, ["list", root.path, "--out", here.appendingPathComponent("list.txt").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(try String(contentsOf: map, encoding: .utf8), "run\nwalk\n")
    }
}
