import AIMTensor
import Foundation
import XCTest

/// Shared by the end-to-end tests of `aim-train` / `aim-eval`: finds the binaries built next to
/// this test bundle, makes a tiny synthetic dataset with `aim-data synth`, runs the tools (alone
/// or under `mpirun -n 2 --oversubscribe`) and reads their work dirs.
class TrainToolTestCase: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let tinyConfig = root.appendingPathComponent("configs/debug/tiny_aim.yaml").path
    static let tinySwinConfig = root.appendingPathComponent("configs/debug/tiny_swin_aim.yaml").path

    struct Run {
        var status: Int32
        var output: String      // stdout and stderr interleaved
        var timedOut = false
        var signalled: Bool     // ended by an uncaught signal
    }

    // MARK: - Tools

    /// A tool built next to this test bundle (.build/release/<name>), else bin/<name>. `swift test`
    /// builds the package's executables, so a missing one fails the test rather than skipping it.
    func tool(_ name: String) throws -> String {
        let bundle = Bundle(for: TrainToolTestCase.self).bundleURL
        let candidates = [bundle.appendingPathComponent(name), bundle.deletingLastPathComponent().appendingPathComponent(name),
                          Self.root.appendingPathComponent("bin/\(name)")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            XCTFail("\(name) is not built (looked in \(candidates.map(\.path))); run `swift build -c release` first")
            throw XCTSkip("\(name) missing")
        }
        return found.path
    }

    func mpirun() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("mpirun is not on PATH (install openmpi-bin): multi-rank tests skipped")
    }

    /// Added to every child's environment (e.g. AIM_CPU_FEATURES to take another CPU class's paths).
    var extraEnvironment: [String: String] = [:]

    /// The environment for a child: no MPI variables of this process (it must not look like a
    /// rank of some job), root allowed for mpirun, plus `extraEnvironment`.
    func childEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { k, _ in
            !(k.hasPrefix("OMPI_") || k.hasPrefix("PMIX_") || k.hasPrefix("PMI_") || k.hasPrefix("OPAL_") || k.hasPrefix("ORTE_"))
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env.merge(extraEnvironment) { _, new in new }
        return env
    }

    /// Starts `exe args` with output going to `log` (in `directory`, else this process's working
    /// directory); the caller waits or signals it.
    func launch(_ exe: String, _ args: [String], log: URL, directory: URL? = nil) throws -> Process {
        XCTAssertTrue(FileManager.default.createFile(atPath: log.path, contents: nil))
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = childEnvironment()
        p.standardOutput = handle; p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        if let directory { p.currentDirectoryURL = directory }
        try p.run()
        try handle.close()
        return p
    }

    /// Waits for `p` at most `limit` seconds (then kills it, and the run counts as timed out).
    func wait(_ p: Process, log: URL, limit: Double) -> Run {
        let deadline = Date().addingTimeInterval(limit)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline { timedOut = true; killTree(p.processIdentifier); p.waitUntilExit(); break }
            usleep(2000)
        }
        p.waitUntilExit()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return Run(status: p.terminationStatus, output: text, timedOut: timedOut, signalled: p.terminationReason == .uncaughtSignal)
    }

    /// SIGKILL to `pid` and every process below it (mpirun's ranks, a script's mpirun), so a test
    /// that times out leaves no orphans running on: descendants first found from /proc.
    func killTree(_ pid: Int32) {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // Fields after "(comm)": state, ppid, …
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { children[ppid, default: []].append(child) }
        }
        var order: [Int32] = [], queue = [pid]
        while let next = queue.popLast() { order.append(next); queue += children[next] ?? [] }
        for p in order { kill(p, SIGSTOP) }   // no new children while the tree is taken down
        for p in order.reversed() { kill(p, SIGKILL) }
    }

    /// Runs `exe args` to the end (killed after `limit` seconds).
    func run(_ exe: String, _ args: [String], limit: Double = 60) throws -> Run {
        let log = scratch.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).log")
        let p = try launch(exe, args, log: log)
        let r = wait(p, log: log, limit: limit)
        XCTAssertFalse(r.timedOut, "\(exe) \(args.joined(separator: " ")) did not finish in \(limit) s:\n\(r.output)")
        return r
    }

    /// `aim-train` with `args`, alone (ranks 1) or under `mpirun -n ranks --oversubscribe`.
    func train(_ args: [String], ranks: Int = 1, limit: Double = 60) throws -> Run {
        let exe = try tool("aim-train")
        if ranks == 1 { return try run(exe, args, limit: limit) }
        return try run(try mpirun(), ["-n", "\(ranks)", "--oversubscribe", exe] + args, limit: limit)
    }

    // MARK: - Scratch space and data

    /// A fresh temporary folder for this test, removed when it ends.
    private(set) lazy var scratch: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-train-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }()

    /// 4 classes × 4 training videos (2 validation videos each), 32×32, from `aim-data synth`.
    func makeDataset(perClass: Int = 4) throws -> URL {
        let dir = scratch.appendingPathComponent("data")
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("train_list.txt").path) { return dir }
        let r = try run(try tool("aim-data"), ["synth", dir.path, "--classes", "4", "--per-class", "\(perClass)"])
        XCTAssertEqual(r.status, 0, r.output)
        return dir
    }

    /// The arguments of a tiny run: the tiny AIM config on the synthetic data, from the seeded
    /// (frozen) init, global batch 8 in micro-batches of 4 (2 steps per epoch), one thread,
    /// head dropout, drop-path and random flips on, a record in metrics.jsonl every step.
    func trainArgs(data: URL, workDir: URL, steps: Int, _ extra: [String] = []) -> [String] {
        var args = ["--config", Self.tinyConfig, "--work-dir", workDir.path, "--threads", "1"]
        let sets = ["data.root=\(data.path)", "data.train=\(data.path)/train_list.txt", "data.val=\(data.path)/val_list.txt",
                    "model.num_classes=4", "model.pretrained=", "model.head_dropout=0.5", "model.drop_path_rate=0.2", "data.flip_ratio=0.5",
                    "train.batch_size=8", "train.micro_batch=4", "train.max_steps=\(steps)", "train.log_interval=1",
                    "checkpoint.interval=2", "checkpoint.keep_last=0"] + extra
        for s in sets { args += ["--set", s] }
        return args
    }

    // MARK: - Reading work dirs

    func workDir(_ name: String) -> URL { scratch.appendingPathComponent(name) }

    func stepFile(_ workDir: URL, _ step: Int) -> URL {
        workDir.appendingPathComponent(String(format: "checkpoints/step_%08d.safetensors", step))
    }

    func stepFiles(_ workDir: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workDir.appendingPathComponent("checkpoints").path)) ?? []
        return names.filter { $0.hasPrefix("step_") && $0.hasSuffix(".safetensors") }.sorted()
    }

    /// The tunable weights of a checkpoint (not the optimizer moments), by key.
    func tunable(_ path: URL) throws -> [String: [Float]] {
        try WeightComparison.tunableWeights(ofCheckpoint: path.path)
    }

    /// Every tensor of a checkpoint as raw bytes (weights and moments), for bitwise comparison.
    func rawTensors(_ path: URL) throws -> [String: [UInt8]] {
        let f = try SafetensorsFile(path: path.path)
        var out: [String: [UInt8]] = [:]
        for name in f.names { out[name] = try f.rawBytes(named: name) }
        return out
    }

    func metadata(_ path: URL) throws -> [String: String] { try SafetensorsFile(path: path.path).metadata }

    /// max over tensors of max|a−b| / max(max|a|, 1e-12): a difference relative to each
    /// tensor's scale, so zero-initialised tensors that stay tiny do not blow it up.
    func maxRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> (Float, String) {
        let c = WeightComparison(a, b)
        XCTAssertEqual(c.mismatchedKeys, [], "the two checkpoints differ in these keys or their sizes")
        return (c.maxRelativeDifference, c.worstKey)
    }

    /// metrics.jsonl, one object per line.
    func metrics(_ workDir: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: workDir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// Polls until `condition` holds (true) or `limit` seconds pass (false).
    func waitFor(_ limit: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }
}
