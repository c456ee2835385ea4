import AIMConfig
import AIMModel
import AIMTensor
import Foundation
import XCTest

/// `gemm: auto` measures: the probe times every available library on the model's linear shapes,
/// picks the fastest, and the choice is cached under a key of everything that decides it.
final class GemmChoiceTests: XCTestCase {
    func testProbeTimesEveryLibraryAndPicksTheFastest() {
        var c = ModelConfig()
        c.inputResolution = 32; c.patchSize = 8; c.width = 64; c.layers = 2; c.heads = 4; c.numFrames = 4
        let uses = StepGemms.list(c, clips: 2).map(\.probed)
        XCTAssertTrue(uses.contains { $0.biased } && uses.contains { !$0.biased }, "linear forwards are timed with their bias, the rest plain")
        XCTAssertTrue(uses.contains { $0.shape.pairs == 1 && $0.shape.m == 2 * 4 * 17 }, "rows scale with the clips per forward")
        let before = Gemm.library
        let r = GemmProbe.measure(uses, budget: 0.5)
        XCTAssertEqual(Gemm.library, before, "the probe leaves the selected library as it found it")
        let available = GemmLibrary.allCases.filter(Gemm.isAvailable)
        XCTAssertEqual(Set(r.secondsPerStep.keys), Set(available.map(\.rawValue)))
        XCTAssertTrue(r.secondsPerStep.values.allSatisfy { $0 > 0 && $0.isFinite }, "\(r.secondsPerStep)")
        XCTAssertEqual(r.secondsPerStep[r.library], r.secondsPerStep.values.min(), "the chosen library is the fastest: \(r.figures)")
        XCTAssertGreaterThanOrEqual(r.rounds, 1)
        print("gemm probe (tiny model): \(r.figures) → \(r.library) in \(String(format: "%.3f", r.probeSeconds)) s")
    }

    func testCacheKeysOnTheMachineThreadsAndShapes() throws {
        let s1 = [GemmProbe.Use(shape: GemmShape(transA: false, transB: true, m: 64, n: 32, k: 16), count: 3)]
        let s2 = [GemmProbe.Use(shape: GemmShape(transA: false, transB: true, m: 128, n: 32, k: 16), count: 3)]
        let s1Biased = [GemmProbe.Use(shape: GemmShape(transA: false, transB: true, m: 64, n: 32, k: 16), count: 3, biased: true)]
        let m1 = GemmProbe.machineKey(threads: 1), m2 = GemmProbe.machineKey(threads: 2)
        XCTAssertNotEqual(m1, m2)
        XCTAssertTrue(m1.contains(CPUReport.modelName) && m1.contains("openblas"), m1)
        XCTAssertNotEqual(GemmChoiceCache.key(machine: m1, shapes: s1), GemmChoiceCache.key(machine: m2, shapes: s1))
        XCTAssertNotEqual(GemmChoiceCache.key(machine: m1, shapes: s1), GemmChoiceCache.key(machine: m1, shapes: s2))
        XCTAssertEqual(GemmChoiceCache.key(machine: m1, shapes: s1), GemmChoiceCache.key(machine: m1, shapes: s1))
        XCTAssertNotEqual(GemmChoiceCache.key(machine: m1, shapes: s1), GemmChoiceCache.key(machine: m1, shapes: s1Biased),
                          "a product timed with its bias is another measurement")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gemm-cache-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = GemmChoiceCache(file: dir.appendingPathComponent("gemm-choice.json"))
        XCTAssertNil(cache.lookup("k1"))
        let r = GemmProbeResult(library: "onednn", secondsPerStep: ["openblas": 2, "onednn": 1.5], rounds: 3, probeSeconds: 0.9, measuredAt: "t")
        try cache.store(r, key: "k1", machine: m1)
        try cache.store(GemmProbeResult(library: "openblas", secondsPerStep: ["openblas": 1], rounds: 1, probeSeconds: 0.1, measuredAt: "u"),
                        key: "k2", machine: m2)
        XCTAssertEqual(cache.lookup("k1"), r)
        XCTAssertEqual(cache.lookup("k2")?.chosen, .openblas)
        XCTAssertEqual(cache.entries.count, 2)
        XCTAssertNil(cache.entries.first { $0.result == r }?.model)
        try cache.store(r, key: "k1", machine: m1, model: ModelConfig().summary)
        XCTAssertEqual(cache.entries.first { $0.result == r }?.model, "clip AIM, width 768, 12 layers, patch 16, 8×224², tune adapters")

        // A file written before entries named their model still reads.
        let old = #"{"k9": {"machine": "m", "result": {"library": "blis", "secondsPerStep": {"blis": 1}, "rounds": 1, "probeSeconds": 0.1, "measuredAt": "t"}}}"#
        let oldFile = GemmChoiceCache(file: dir.appendingPathComponent("old.json"))
        try Data(old.utf8).write(to: oldFile.file)
        XCTAssertEqual(oldFile.lookup("k9")?.chosen, .blis)

        // The newest `capacity` entries are kept.
        let full = GemmChoiceCache(file: dir.appendingPathComponent("full.json"))
        for i in 0..<(GemmChoiceCache.capacity + 5) {
            let at = String(format: "2026-12-07T10:%02d:00Z", i)
            try full.store(GemmProbeResult(library: "openblas", secondsPerStep: ["openblas": 1], rounds: 1, probeSeconds: 0.1, measuredAt: at),
                           key: "m\(i)", machine: m1)
        }
        XCTAssertEqual(full.entries.count, GemmChoiceCache.capacity)
        XCTAssertNil(full.lookup("m4"), "the oldest go")
        XCTAssertNotNil(full.lookup("m5"))
        XCTAssertNotNil(full.lookup("m\(GemmChoiceCache.capacity + 4)"))
        // A damaged cache is measured again, never an error.
        try Data("{not json".utf8).write(to: cache.file)
        XCTAssertNil(cache.lookup("k1"))
    }

    func testForcedLibraryIsNotMeasured() throws {
        var cfg = Config()
        try cfg.set("gemm", .string("openblas"))
        let choice = try GemmChoice.apply(config: cfg)
        XCTAssertEqual(choice.library, .openblas)
        XCTAssertEqual(choice.reason, "set by gemm: openblas")
        XCTAssertEqual(Gemm.library, .openblas)
    }

    /// Every process takes the deciding one's answer (a broadcast in a real run).
    func testNonDecidingProcessTakesTheSharedChoice() throws {
        if let forced = ProcessInfo.processInfo.environment["AIM_GEMM"], !forced.isEmpty, forced != "auto" {
            throw XCTSkip("AIM_GEMM=\(forced) forces the library in this environment")
        }
        let choice = try GemmChoice.apply(config: Config(), decides: false, share: { _ in "openblas\nrank 0 measured it" })
        XCTAssertEqual(choice.library, .openblas)
        XCTAssertEqual(choice.reason, "rank 0 measured it")
    }

    /// One answer serves every micro-batch of a model: the probe times one clip's shapes (8 clips'
    /// rows took 15 s for ViT-B/16), so a run with another micro-batch finds the first one's answer.
    func testEveryMicroBatchSharesOneCachedAnswer() throws {
        if let forced = ProcessInfo.processInfo.environment["AIM_GEMM"], !forced.isEmpty, forced != "auto" {
            throw XCTSkip("AIM_GEMM=\(forced) forces the library in this environment")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gemm-choice-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let saved = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"]
        setenv("XDG_CACHE_HOME", dir.path, 1)
        defer { if let saved { setenv("XDG_CACHE_HOME", saved, 1) } else { unsetenv("XDG_CACHE_HOME") } }
        let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/debug/tiny_aim.yaml").path
        let one = try Config.load(path: config, overrides: ["train.micro_batch=1", "train.batch_size=1"])
        let eight = try Config.load(path: config, overrides: ["train.micro_batch=8", "train.batch_size=16"])
        let first = try GemmChoice.apply(config: one)
        XCTAssertTrue(first.reason.contains("probe "), first.reason)
        let again = try GemmChoice.apply(config: eight)
        XCTAssertEqual(again.library, first.library)
        XCTAssertFalse(again.reason.contains("probe "), "measured again for another micro-batch: \(again.reason)")
        XCTAssertTrue(again.reason.contains(dir.path), again.reason)
        XCTAssertEqual(GemmChoiceCache(file: dir.appendingPathComponent("aim-swift/gemm-choice.json")).entries.count, 1)
    }
}
