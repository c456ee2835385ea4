import AIMTensor
import Foundation
import XCTest

/// Issue 12, multi-node for real: two "hosts" as Linux network namespaces joined by a bridge
/// (`cluster/local_cluster.sh`), `aim-train` under mpirun with one rank per host, TCP only.
/// - Over the network the run ends with the weights of the 1-rank run (≤ 1e-4 relative) and
///   `aim-mpi-check` passes.
/// - When host 2's rank is SIGKILLed, or host 2's cable is pulled, the rank on host 1 stops
///   within 60 s with a clear message, the newest checkpoint reads back whole, and
///   `--resume auto` with 1 rank on host 1 continues from it to the end, where the
///   uninterrupted 1-rank run ends.
/// Skipped, with the reason printed, where `ip netns` is not permitted (not root, no iproute2,
/// no CAP_SYS_ADMIN in a container) or mpirun is missing.
final class LocalClusterTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = root.appendingPathComponent("cluster/local_cluster.sh").path
    static let tinyConfig = root.appendingPathComponent("configs/debug/tiny_aim.yaml").path
    /// Length of the runs that get a fault: long enough (≈ 20 s at 2 ranks) to fault mid-run.
    static let faultSteps = 300

    struct Run {
        var status: Int32
        var output: String
        var seconds: Double
        var timedOut: Bool
    }

    // MARK: - Shared by the tests of this class (made once, removed at the end)

    static var scratchDir: URL?
    static var dataDir: URL?
    static var referenceRun: URL?   // latest.safetensors of the uninterrupted 1-rank run

    var scratch: URL {
        if let s = Self.scratchDir { return s }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-cluster-tests-\(getpid())")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        Self.scratchDir = dir
        return dir
    }

    override class func tearDown() {
        if let s = scratchDir { try? FileManager.default.removeItem(at: s) }
        scratchDir = nil; dataDir = nil; referenceRun = nil
        super.tearDown()
    }

    // MARK: - Permission, lock, cluster up and down

    private var lockFD: Int32 = -1

    override func setUpWithError() throws {
        try Self.checkPermitted()
        // One user of the fixed namespace names at a time (another `swift test` on this machine).
        let fd = open("/run/aim-local-cluster.tests.lock", O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw XCTSkip("cannot open /run/aim-local-cluster.tests.lock: \(String(cString: strerror(errno)))") }
        let deadline = Date().addingTimeInterval(600)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard Date() < deadline else { close(fd); XCTFail("another process held the local-cluster test lock for 10 minutes"); throw XCTSkip("lock busy") }
            usleep(200_000)
        }
        lockFD = fd
        _ = try cluster(["down"], limit: 60)           // leftovers of an interrupted earlier run
        let up = try cluster(["up", "2"], limit: 60)
        XCTAssertEqual(up.status, 0, up.output)
        guard up.status == 0 else { throw XCTSkip("local_cluster.sh up 2 failed") }
    }

    override func tearDown() {
        if lockFD >= 0 {
            // Always, also after a failed run: kills what is left on the hosts, removes them.
            if let r = try? cluster(["down"], limit: 90) {
                XCTAssertEqual(r.status, 0, "local_cluster.sh down: \(r.output)")
            }
            flock(lockFD, LOCK_UN); close(lockFD); lockFD = -1
        }
        super.tearDown()
    }

    static var permission: String??   // nil = not checked; .some(nil) = permitted

    /// Throws XCTSkip with the reason when network namespaces cannot be made here.
    static func checkPermitted() throws {
        if permission == nil { permission = .some(probe()) }
        if let reason = permission! {
            print("LocalClusterTests skipped: \(reason)")
            throw XCTSkip(reason)
        }
    }

    private static func probe() -> String? {
        guard getuid() == 0 else { return "needs root: `ip netns` requires CAP_NET_ADMIN and CAP_SYS_ADMIN" }
        guard let ip = which("ip") else { return "`ip` not found: install iproute2 (make deps)" }
        guard which("mpirun") != nil else { return "mpirun is not on PATH (install openmpi-bin)" }
        let name = "aimprobe\(getpid())"
        let add = quickRun(ip, ["netns", "add", name])
        defer { _ = quickRun(ip, ["netns", "del", name]) }
        guard add.0 == 0 else { return "`ip netns add` is not permitted here: \(add.1.trimmingCharacters(in: .whitespacesAndNewlines))" }
        let br = "aimprobe\(getpid() % 100000)"
        let bridge = quickRun(ip, ["link", "add", br, "type", "bridge"])
        _ = quickRun(ip, ["link", "del", br])
        guard bridge.0 == 0 else { return "cannot create a bridge: \(bridge.1.trimmingCharacters(in: .whitespacesAndNewlines))" }
        return nil
    }

    static func which(_ name: String) -> String? {
        for dir in ((ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    private static func quickRun(_ exe: String, _ args: [String]) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    // MARK: - Running things

    /// An executable built next to this test bundle (.build/<config>/NAME), else bin/NAME.
    func tool(_ name: String) throws -> String {
        let dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for c in [dir.appendingPathComponent(name), Self.root.appendingPathComponent("bin/\(name)")]
        where FileManager.default.isExecutableFile(atPath: c.path) { return c.path }
        XCTFail("\(name) is not built; run `swift build -c release` first")
        throw XCTSkip("\(name) missing")
    }

    /// The children's environment: no MPI variables of this process, root allowed for mpirun,
    /// sleeping idle BLAS threads, plus `extra`.
    func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { k, _ in
            !(k.hasPrefix("OMPI_") || k.hasPrefix("PMIX_") || k.hasPrefix("PMI_") || k.hasPrefix("OPAL_") || k.hasPrefix("ORTE_") || k.hasPrefix("AIM_CLUSTER_"))
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_THREAD_TIMEOUT"] = "4"
        env.merge(extra) { _, new in new }
        return env
    }

    func start(_ exe: String, _ args: [String], env: [String: String] = [:], log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.environment = environment(env)
        p.standardOutput = handle; p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try handle.close()
        return p
    }

    /// Waits at most `limit` seconds for `p` (then SIGKILLs it: the run counts as timed out).
    func finish(_ p: Process, log: URL, started: Date, limit: Double) -> Run {
        var timedOut = false
        if !waitFor(limit, { !p.isRunning }) { timedOut = true; kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return Run(status: p.terminationStatus, output: (try? String(contentsOf: log, encoding: .utf8)) ?? "",
                   seconds: Date().timeIntervalSince(started), timedOut: timedOut)
    }

    func run(_ exe: String, _ args: [String], env: [String: String] = [:], limit: Double = 120) throws -> Run {
        let log = scratch.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).log")
        let t0 = Date()
        let r = finish(try start(exe, args, env: env, log: log), log: log, started: t0, limit: limit)
        XCTAssertFalse(r.timedOut, "\(exe) \(args.joined(separator: " ")) did not finish in \(limit) s:\n\(r.output)")
        return r
    }

    func cluster(_ args: [String], env: [String: String] = [:], limit: Double = 120) throws -> Run {
        try run("/bin/bash", [Self.script] + args, env: env, limit: limit)
    }

    /// `local_cluster.sh pids HOST`: (pid, executable name) of every process on that host.
    func processes(host: Int) -> [(Int32, String)] {
        let r = Self.quickRun("/bin/bash", [Self.script, "pids", "\(host)"])
        return r.1.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 2, let pid = Int32(f[0]) else { return nil }
            return (pid, String(f[1]))
        }
    }

    func waitFor(_ limit: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }

    // MARK: - Data, runs, checkpoints

    func dataset() throws -> URL {
        if let d = Self.dataDir { return d }
        let dir = scratch.appendingPathComponent("data")
        let r = try run(try tool("aim-data"), ["synth", dir.path, "--classes", "4", "--per-class", "4"])
        XCTAssertEqual(r.status, 0, r.output)
        Self.dataDir = dir
        return dir
    }

    /// The tiny AIM config on the synthetic data (as Tests/AIMTrainingTests' trainArgs): seeded
    /// init, global batch 8 in micro-batches of 4, dropout, drop-path and flips on, one thread,
    /// a checkpoint every 2 steps, all kept.
    func trainArgs(_ data: URL, workDir: URL, steps: Int) -> [String] {
        var args = ["--config", Self.tinyConfig, "--work-dir", workDir.path, "--threads", "1"]
        for s in ["data.root=\(data.path)", "data.train=\(data.path)/train_list.txt", "data.val=\(data.path)/val_list.txt",
                  "model.num_classes=4", "model.pretrained=", "model.head_dropout=0.5", "model.drop_path_rate=0.2", "data.flip_ratio=0.5",
                  "train.batch_size=8", "train.micro_batch=4", "train.max_steps=\(steps)", "train.log_interval=1",
                  "checkpoint.interval=2", "checkpoint.keep_last=0"] {
            args += ["--set", s]
        }
        return args
    }

    /// The uninterrupted 1-rank run of `faultSteps` steps, made once.
    func reference() throws -> URL {
        if let r = Self.referenceRun { return r }
        let wd = scratch.appendingPathComponent("reference")
        let r = try run(try tool("aim-train"), trainArgs(try dataset(), workDir: wd, steps: Self.faultSteps), limit: 180)
        XCTAssertEqual(r.status, 0, r.output)
        print("local cluster: uninterrupted 1-rank run of \(Self.faultSteps) steps took \(String(format: "%.1f", r.seconds)) s")
        Self.referenceRun = wd.appendingPathComponent("latest.safetensors")
        return Self.referenceRun!
    }

    func stepFiles(_ workDir: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workDir.appendingPathComponent("checkpoints").path)) ?? []
        return names.filter { $0.hasPrefix("step_") && $0.hasSuffix(".safetensors") }.sorted()
    }

    /// The tunable weights of a checkpoint (not the moments); reading every tensor proves the file whole.
    func tunable(_ path: URL) throws -> [String: [Float]] {
        try WeightComparison.tunableWeights(ofCheckpoint: path.path)
    }

    /// max over tensors of max|a−b| / max|a| (as RankInvarianceTests).
    func maxRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> (Float, String) {
        let c = WeightComparison(a, b)
        XCTAssertEqual(c.mismatchedKeys, [], "the two checkpoints differ in these keys or their sizes")
        return (c.maxRelativeDifference, c.worstKey)
    }

    /// Bytes through host 2's cable (both directions), from the bridge end's counters.
    func cableBytes(host: Int) -> Int {
        ["rx_bytes", "tx_bytes"].reduce(0) { sum, f in
            sum + (Int(((try? String(contentsOfFile: "/sys/class/net/aimv\(host)/statistics/\(f)", encoding: .utf8)) ?? "0")
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        }
    }

    // MARK: - Item 2: training across hosts

    func testTwoHostsOverTCPTrainLikeOneRankAndPassMPICheck() throws {
        let check = try cluster(["run", "--", "-n", "2", try tool("aim-mpi-check")], limit: 120)
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("PASS:") && check.output.contains("on 2 ranks"), check.output)

        let data = try dataset()
        let one = scratch.appendingPathComponent("one"), two = scratch.appendingPathComponent("two")
        var r = try run(try tool("aim-train"), trainArgs(data, workDir: one, steps: 6))
        XCTAssertEqual(r.status, 0, r.output)
        let before = cableBytes(host: 2)
        r = try cluster(["run", "--", "-n", "2", try tool("aim-train")] + trainArgs(data, workDir: two, steps: 6), limit: 120)
        let moved = cableBytes(host: 2) - before
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("2 rank(s)"), r.output)

        let a = try tunable(one.appendingPathComponent("latest.safetensors"))
        let b = try tunable(two.appendingPathComponent("latest.safetensors"))
        let (diff, key) = maxRelativeDifference(a, b)
        // Every step allreduces the whole tunable buffer: a ring over 2 ranks sends and receives
        // at least its size through host 2's cable.
        let floats = a.values.reduce(0) { $0 + $1.count }
        print("local cluster: 2 hosts over TCP vs 1 rank after 6 steps: max relative difference \(diff) (\(key)); \(moved) bytes through host 2's cable (tunable buffer \(floats * 4) bytes); run \(String(format: "%.1f", r.seconds)) s")
        XCTAssertLessThanOrEqual(diff, 1e-4, "1 rank vs 2 hosts differ most in \(key)")
        XCTAssertGreaterThanOrEqual(moved, 6 * floats * 4, "the gradients did not cross host 2's cable")
    }

    /// Issue 21: the synthetic data written to tar shards (`aim-data shard`) and staged to a
    /// second folder (what cluster/README says to do for node-local disks); 2 hosts train from
    /// the staged shards (`data.format: shards`, a brace pattern for train, the manifest for val)
    /// and end where 1 rank ends training from the files.
    func testTwoHostsTrainFromShardsLikeOneRankFromFiles() throws {
        let data = try dataset()
        let shards = scratch.appendingPathComponent("shards"), staged = scratch.appendingPathComponent("node-local/shards")
        for split in ["train", "val"] {
            let r = try run(try tool("aim-data"), ["shard", "--config", Self.tinyConfig, "--split", split, "--out", shards.path,
                                                   "--shard-size", "64KiB", "--set", "data.root=\(data.path)",
                                                   "--set", "data.\(split)=\(data.path)/\(split)_list.txt", "--set", "model.num_classes=4"])
            XCTAssertEqual(r.status, 0, r.output)
        }
        try FileManager.default.createDirectory(at: staged.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: shards, to: staged)
        let manifest = try String(contentsOf: staged.appendingPathComponent("train-manifest.json"), encoding: .utf8)
        guard let p = manifest.range(of: "\"pattern\": \"")?.upperBound, let e = manifest[p...].firstIndex(of: "\"") else {
            return XCTFail("no pattern in the train manifest: \(manifest)")
        }
        let pattern = String(manifest[p..<e])
        XCTAssertTrue(pattern.contains("{000000.."), "the train split should span several 64 KiB shards: \(pattern)")

        let one = scratch.appendingPathComponent("one-files"), two = scratch.appendingPathComponent("two-shards")
        var r = try run(try tool("aim-train"), trainArgs(data, workDir: one, steps: 6))
        XCTAssertEqual(r.status, 0, r.output)
        var args = trainArgs(data, workDir: two, steps: 6)
        args += ["--set", "data.format=shards", "--set", "data.root=",
                 "--set", "data.train=\(staged.path)/\(pattern)", "--set", "data.val=\(staged.path)/val-manifest.json"]
        r = try cluster(["run", "--", "-n", "2", try tool("aim-train")] + args, limit: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("2 rank(s)"), r.output)
        let (diff, key) = maxRelativeDifference(try tunable(one.appendingPathComponent("latest.safetensors")),
                                                try tunable(two.appendingPathComponent("latest.safetensors")))
        print("local cluster: 2 hosts from shards vs 1 rank from files after 6 steps: max relative difference \(diff) (\(key)); run \(String(format: "%.1f", r.seconds)) s")
        XCTAssertLessThanOrEqual(diff, 1e-4, "1 rank from files vs 2 hosts from shards differ most in \(key)")
    }

    // MARK: - Item 3: faults across hosts

    enum Fault: String { case killRank = "kill", pullCable = "cable" }

    /// Runs `faultSteps` steps on 2 hosts, injects `fault` on host 2 once the step-10 checkpoint
    /// exists, and checks: the rank on host 1 stops within 60 s, mpirun ends, the newest
    /// checkpoint reads back, and 1 rank on host 1 resumes from it to where the uninterrupted
    /// 1-rank run ends. Returns mpirun's output.
    @discardableResult
    func faultRun(_ fault: Fault, collectiveTimeout: Int?, name: String) throws -> String {
        let data = try dataset()
        let expected = try reference()
        let train = try tool("aim-train")
        let wd = scratch.appendingPathComponent(name)
        let log = scratch.appendingPathComponent("\(name).log")
        var env: [String: String] = [:]
        if let t = collectiveTimeout { env["AIM_COLLECTIVE_TIMEOUT"] = "\(t)" }
        let started = Date()
        let p = try start("/bin/bash", [Self.script, "run", "--", "-n", "2", train] + trainArgs(data, workDir: wd, steps: Self.faultSteps),
                          env: env, log: log)
        let ckpt = wd.appendingPathComponent("checkpoints/step_00000010.safetensors")
        var victim: Int32?
        let ready = waitFor(90) {
            victim = processes(host: 2).first { $0.1 == "aim-train" }?.0
            return (victim != nil && FileManager.default.fileExists(atPath: ckpt.path)) || !p.isRunning
        }
        guard ready, p.isRunning, let victim else {
            let r = finish(p, log: log, started: started, limit: 5)
            XCTFail("the 2-host run did not reach its step-10 checkpoint with a rank on host 2: \(r.output)")
            return r.output
        }
        let onHost1 = { self.processes(host: 1).contains { $0.1 == "aim-train" } }
        XCTAssertTrue(onHost1(), "no aim-train on host 1")

        let t0 = Date()
        switch fault {
        case .killRank:
            XCTAssertEqual(kill(victim, SIGKILL), 0, "kill rank on host 2")
        case .pullCable:
            let r = try cluster(["link", "2", "down"], limit: 30)
            XCTAssertEqual(r.status, 0, r.output)
        }
        let stopped = waitFor(90) { !onHost1() }
        let stopSeconds = Date().timeIntervalSince(t0)
        let r = finish(p, log: log, started: started, limit: max(5, 150 - Date().timeIntervalSince(t0)))
        let endSeconds = Date().timeIntervalSince(t0)
        let newest = try XCTUnwrap(stepFiles(wd).last, "no checkpoint at all")
        let newestStep = Int(newest.dropFirst(5).prefix(8))!
        print("local cluster, \(fault.rawValue) on host 2 (AIM_COLLECTIVE_TIMEOUT \(collectiveTimeout.map { "\($0)" } ?? "default 300")): rank on host 1 stopped after \(String(format: "%.1f", stopSeconds)) s, mpirun ended after \(String(format: "%.1f", endSeconds)) s with status \(r.status); newest checkpoint step \(newestStep)")
        XCTAssertTrue(stopped, "the rank on host 1 was still running 90 s after the fault:\n\(r.output)")
        XCTAssertLessThanOrEqual(stopSeconds, 60, "the rank on host 1 took more than 60 s to stop")
        XCTAssertFalse(r.timedOut, "mpirun did not end within 150 s of the fault:\n\(r.output)")
        XCTAssertNotEqual(r.status, 0, "mpirun reported success after a fault:\n\(r.output)")
        XCTAssertLessThan(newestStep, Self.faultSteps, "the run finished before the fault: make it longer")

        // The newest checkpoint is whole and is the one --resume auto takes, with 1 rank on host 1.
        let newestURL = wd.appendingPathComponent("checkpoints/\(newest)")
        XCTAssertNoThrow(try tunable(newestURL), "the newest checkpoint does not read back")
        XCTAssertEqual(try SafetensorsFile(path: newestURL.path).metadata["world_size"], "2")
        let resumed = try cluster(["exec", "1", "--", train] + trainArgs(data, workDir: wd, steps: Self.faultSteps) + ["--resume", "auto"], limit: 180)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("resumed from \(newestURL.path) at step \(newestStep)"), resumed.output)
        XCTAssertFalse(resumed.output.contains("skipped:"), "a checkpoint was found corrupt: \(resumed.output)")
        XCTAssertTrue(resumed.output.contains("1 rank(s)"), resumed.output)
        let latest = wd.appendingPathComponent("latest.safetensors")
        let meta = try SafetensorsFile(path: latest.path).metadata
        XCTAssertEqual(meta["step"], "\(Self.faultSteps)")
        XCTAssertEqual(meta["world_size"], "1")
        let (diff, key) = maxRelativeDifference(try tunable(expected), try tunable(latest))
        print("local cluster, \(fault.rawValue): resumed with 1 rank on host 1 from step \(newestStep) in \(String(format: "%.1f", resumed.seconds)) s; vs the uninterrupted 1-rank run: max relative difference \(diff) (\(key))")
        XCTAssertLessThanOrEqual(diff, 1e-4, "resumed run differs from the uninterrupted one in \(key)")
        return r.output
    }

    /// SIGKILL of host 2's rank: its daemon reports the death and mpirun ends the job at once.
    func testRankKilledOnHost2StopsHost1AndResumesOnOneHost() throws {
        let out = try faultRun(.killRank, collectiveTimeout: 20, name: "kill")
        XCTAssertTrue(out.contains("mpirun noticed that process rank 1") && out.contains("on node 10.231.0.2 exited on signal 9"), out)
    }

    /// Host 2's cable pulled, collective watchdog shorter than the daemons' keepalive (15–25 s):
    /// rank 0 names the collective that stalled and says the newest checkpoint is complete.
    func testCablePulledOnHost2WatchdogStopsHost1() throws {
        let out = try faultRun(.pullCable, collectiveTimeout: 10, name: "cable-watchdog")
        XCTAssertTrue(out.contains("error: rank 0 of 2: collective '") && out.contains("did not complete within 10.0 s"), out)
        XCTAssertTrue(out.contains("the newest one on disk is complete") && out.contains("--resume auto"), out)
    }

    /// Host 2's cable pulled with the default 300 s watchdog: the launcher's keepalive on its
    /// link to host 2's daemon (set by local_cluster.sh run) ends the job first.
    func testCablePulledOnHost2KeepaliveEndsJob() throws {
        let out = try faultRun(.pullCable, collectiveTimeout: nil, name: "cable-keepalive")
        XCTAssertTrue(out.contains("ORTE has lost communication with a remote daemon"), out)
    }
}
