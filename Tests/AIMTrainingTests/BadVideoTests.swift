import Foundation
import XCTest

/// Issue 5 (with the data issue's loader): a video that cannot be decoded (an empty file,
/// random bytes) is skipped, replaced, counted in metrics.jsonl, and training completes — with
/// the same count however many ranks share the work.
final class BadVideoTests: TrainToolTestCase {
    func testBadVideosAreSkippedAndCounted() throws {
        let data = try makeDataset()
        // Spoil 4 of the 16 training videos: two emptied, two overwritten with random bytes.
        let list = try String(contentsOf: data.appendingPathComponent("train_list.txt"), encoding: .utf8)
        let paths = list.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        var rng = SystemRandomNumberGenerator()
        let spoilt = [paths[1], paths[6], paths[11], paths[14]]
        for (i, p) in spoilt.enumerated() {
            let bytes = i < 2 ? Data() : Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
            try bytes.write(to: data.appendingPathComponent(p))
        }

        // 4 steps = 2 whole epochs, so every spoilt file is asked for at least twice.
        var counts: [Int] = []
        for ranks in [1, 2] {
            let wd = workDir("wd-\(ranks)")
            let r = try train(trainArgs(data: data, workDir: wd, steps: 4), ranks: ranks)
            XCTAssertEqual(r.status, 0, "\(ranks) rank(s): \(r.output)")
            XCTAssertEqual(try metadata(wd.appendingPathComponent("latest.safetensors"))["step"], "4")
            let last = try XCTUnwrap(try metrics(wd).last { ($0["mode"] as? String) == "train" })
            let skipped = try XCTUnwrap(last["skipped"] as? Int, "metrics.jsonl has no skip count")
            XCTAssertGreaterThanOrEqual(skipped, 2 * spoilt.count, "\(ranks) rank(s): 4 bad files × 2 epochs")
            counts.append(skipped)
            if ranks == 1 {
                for p in spoilt { XCTAssertTrue(r.output.contains(p), "\(p) is not named:\n\(r.output)") }
            }
        }
        print("bad videos: \(spoilt.count) spoilt files, skip events after 2 epochs: \(counts[0]) (1 rank), \(counts[1]) (2 ranks)")
        XCTAssertEqual(counts[0], counts[1], "the skip count in metrics.jsonl must cover every rank")
    }
}
