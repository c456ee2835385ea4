import Foundation
import XCTest

/// Issue 5: the config and every override are validated first. An unknown key, a wrong type or a
/// missing file stops aim-train with a non-zero status and a message naming the key or file,
/// before any work: no work dir, no metrics, no checkpoint.
final class ConfigRejectionTests: TrainToolTestCase {
    func testBadConfigsStopBeforeAnyWork() throws {
        let data = try makeDataset()
        let missing = scratch.appendingPathComponent("nowhere").path
        // A YAML file inheriting the tiny config, with one misspelt key.
        let yaml = scratch.appendingPathComponent("typo.yaml")
        try "base: \(Self.tinyConfig)\ntrain:\n  warmup_epoch: 1\n".write(to: yaml, atomically: true, encoding: .utf8)

        let cases: [(what: String, args: [String], mustName: [String])] = [
            ("unknown key in the YAML", ["--config", yaml.path], ["train.warmup_epoch", "unknown key", yaml.lastPathComponent]),
            ("unknown key in --set", ["--set", "train.learning_rate=0.1"], ["train.learning_rate", "unknown key"]),
            ("wrong type", ["--set", "train.batch_size=eight"], ["train.batch_size"]),
            ("wrong type (list for a number)", ["--set", "train.lr=[1, 2]"], ["train.lr"]),
            ("missing training list", ["--set", "data.train=\(missing)/train_list.txt"], ["\(missing)/train_list.txt"]),
            ("missing validation list", ["--set", "data.val=\(missing)/val_list.txt"], ["\(missing)/val_list.txt"]),
            ("missing pretrained backbone", ["--set", "model.pretrained=\(missing)/backbone.safetensors"],
             ["model.pretrained", "\(missing)/backbone.safetensors"]),
            ("missing config file", ["--config", "\(missing)/config.yaml"], ["\(missing)/config.yaml"]),
        ]
        for c in cases {
            let wd = workDir("wd-\(c.what.replacingOccurrences(of: " ", with: "-"))")
            var args = trainArgs(data: data, workDir: wd, steps: 4)
            // Later options win: the case's --config replaces the tiny one, its --set comes last.
            if c.args.first == "--config" { args[1] = c.args[1] } else { args += c.args }
            let start = Date()
            let r = try train(args)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertNotEqual(r.status, 0, "\(c.what): accepted\n\(r.output)")
            XCTAssertFalse(r.signalled, "\(c.what): crashed instead of reporting\n\(r.output)")
            for s in c.mustName { XCTAssertTrue(r.output.contains(s), "\(c.what): the message does not name '\(s)':\n\(r.output)") }
            XCTAssertTrue(r.output.contains("error"), "\(c.what): \(r.output)")
            XCTAssertFalse(r.output.contains("step 1/"), "\(c.what): training started\n\(r.output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: wd.path), "\(c.what): the work dir was created before the check")
            XCTAssertLessThan(seconds, 10, "\(c.what)")
        }
    }
}
