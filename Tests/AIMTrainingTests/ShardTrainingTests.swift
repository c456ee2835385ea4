import Foundation
import XCTest

/// Issue 21 end to end: `aim-data shard` on the synthetic data (with a bad entry), then
/// `aim-train` from the shards — bitwise the run from the files, and exactly resumable.
final class ShardTrainingTests: TrainToolTestCase {
    let steps = 8

    /// The synthetic data with a missing video and a text file added to its training list,
    /// sharded into 64 KiB shards (several of them).
    func shardedDataset() throws -> (data: URL, shards: URL, pattern: String, output: String) {
        let data = try makeDataset()
        let list = try String(contentsOf: data.appendingPathComponent("train_list.txt"), encoding: .utf8)
        try "not a video\n".write(to: data.appendingPathComponent("notes.mp4"), atomically: true, encoding: .utf8)
        try (list + "videos/none.mp4 1\nnotes.mp4 2\n").write(to: data.appendingPathComponent("train_bad.txt"), atomically: true, encoding: .utf8)
        let shards = scratch.appendingPathComponent("shards")
        var output = ""
        for (split, file) in [("train", "train_bad.txt"), ("val", "val_list.txt")] {
            let r = try run(try tool("aim-data"), ["shard", "--config", Self.tinyConfig, "--split", split, "--out", shards.path,
                                                   "--shard-size", "64KiB", "--set", "data.root=\(data.path)",
                                                   "--set", "data.\(split)=\(data.path)/\(file)", "--set", "model.num_classes=4"])
            XCTAssertEqual(r.status, 0, r.output)
            output += r.output
        }
        let manifest = try String(contentsOf: shards.appendingPathComponent("train-manifest.json"), encoding: .utf8)
        guard let p = manifest.range(of: "\"pattern\": \"")?.upperBound, let e = manifest[p...].firstIndex(of: "\"") else {
            XCTFail("no pattern in \(manifest)")
            throw XCTSkip("no manifest pattern")
        }
        return (data, shards, String(manifest[p..<e]), output)
    }

    func testShardCommandSkipsAndListsBadVideosWithProgressAndRefusesToOverwrite() throws {
        let (data, shards, pattern, output) = try shardedDataset()
        XCTAssertTrue(output.contains("ETA"), output)
        XCTAssertTrue(output.contains("skipped: \(data.path)/videos/none.mp4: missing file"), output)
        XCTAssertTrue(output.contains("skipped: \(data.path)/notes.mp4: not a video file"), output)
        XCTAssertTrue(output.contains("wrote 16 of 18 videos (2 skipped)"), output)
        XCTAssertTrue(output.contains("data.train: \(shards.path)/\(pattern)"), output)
        XCTAssertTrue(pattern.hasPrefix("train-{000000.."), pattern)
        let again = try run(try tool("aim-data"), ["shard", "--config", Self.tinyConfig, "--split", "val", "--out", shards.path,
                                                   "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt",
                                                   "--set", "model.num_classes=4"])
        XCTAssertEqual(again.status, 1, again.output)
        // The shards there are kept: the refusal must not read as if they were deleted.
        XCTAssertTrue(again.output.contains("already holds val shards (") && again.output.contains("they were left as they are and nothing was written"), again.output)
        XCTAssertFalse(again.output.contains("removed"), again.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: shards.appendingPathComponent("val-manifest.json").path))
        let check = try run(try tool("aim-data"), ["check", "--config", Self.tinyConfig, "--set", "model.num_classes=4",
                                                   "--set", "data.format=shards", "--set", "data.train=\(shards.path)/train-manifest.json"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("videos: 16, ok: 16, bad: 0") && check.output.contains("shard checksums: all match"), check.output)

        // No usable video: exit 1 and nothing written (an empty manifest used to refuse the rerun).
        let badList = scratch.appendingPathComponent("all_bad.txt"), none = scratch.appendingPathComponent("none")
        try Data("notes.mp4 0\nvideos/none.mp4 1\n".utf8).write(to: badList)
        for _ in 0..<2 {
            let r = try run(try tool("aim-data"), ["shard", "--config", Self.tinyConfig, "--split", "train", "--out", none.path,
                                                   "--set", "data.root=\(data.path)", "--set", "data.train=\(badList.path)",
                                                   "--set", "model.num_classes=4"])
            XCTAssertEqual(r.status, 1, r.output)
            XCTAssertTrue(r.output.contains("is usable: nothing written to \(none.path)"), r.output)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: none.path), [], r.output)
        }
    }

    /// One rank from shards ends bitwise where one rank from the files ends (the same 16 good
    /// videos in the same order; the files' list has no bad entries), and a run resumed from the
    /// shard run's step-4 checkpoint ends there too.
    func testTrainingFromShardsIsBitwiseTheFilesRunAndResumesExactly() throws {
        let (data, shards, pattern, _) = try shardedDataset()
        let fromShards = ["data.format=shards", "data.root=", "data.train=\(shards.path)/\(pattern)",
                          "data.val=\(shards.path)/val-manifest.json"]
        let files = workDir("files"), whole = workDir("shards"), resumed = workDir("resumed")
        var r = try train(trainArgs(data: data, workDir: files, steps: steps))
        XCTAssertEqual(r.status, 0, r.output)
        r = try train(trainArgs(data: data, workDir: whole, steps: steps, fromShards))
        XCTAssertEqual(r.status, 0, r.output)
        // The step-4 checkpoint of the shard run (written mid-run, the schedule of all 8 steps).
        r = try train(trainArgs(data: data, workDir: resumed, steps: steps, fromShards) + ["--resume", stepFile(whole, 4).path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("resumed from"), r.output)
        let a = try rawTensors(files.appendingPathComponent("latest.safetensors"))
        for (wd, what) in [(whole, "from shards"), (resumed, "from shards, resumed at step 4")] {
            let b = try rawTensors(wd.appendingPathComponent("latest.safetensors"))
            XCTAssertEqual(Set(a.keys), Set(b.keys), what)
            let differing = a.keys.filter { a[$0] != b[$0] }.sorted()
            XCTAssertTrue(differing.isEmpty, "\(what) vs files: \(differing.count) tensors differ, e.g. \(differing.prefix(3))")
        }
    }

    /// An --out that cannot be made is said as such, not as Foundation's error domain, and not as if
    /// begun shards had been removed.
    func testAnOutThatCannotBeMadeIsNamed() throws {
        let data = try makeDataset()
        let file = scratch.appendingPathComponent("a_file")
        try Data("x".utf8).write(to: file)
        let r = try run(try tool("aim-data"), ["shard", "--config", Self.tinyConfig, "--split", "val", "--out", file.appendingPathComponent("sub").path,
                                               "--set", "data.root=\(data.path)", "--set", "data.val=\(data.path)/val_list.txt", "--set", "model.num_classes=4"])
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("cannot create the folder") && r.output.contains("nothing was written"), r.output)
        XCTAssertFalse(r.output.contains("NSCocoaErrorDomain") || r.output.contains("were removed"), r.output)
    }
}
