import AIMConfig
import AIMDistributed
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// A run that does not continue the run in its work dir sets that run's files aside, whole, in
/// `earlier_runs/<time>/`: a new run, a `--resume` from another folder, an auto resume that finds
/// no checkpoint (a run that died before its first one). `load_from` is read before anything
/// moves, and with `--resume` it is needed only when no checkpoint is found.
final class EarlierRunTests: XCTestCase {
    func config(_ extra: [String] = []) throws -> Config {
        try tinyAIMConfig("earlier", ["checkpoint.interval=2", "checkpoint.keep_last=0"] + extra)
    }

    func trainer(_ config: Config, _ dir: URL, resume: String? = nil) throws -> Trainer {
        var options = TrainOptions(); options.workDir = dir; options.threads = 2; options.resume = resume
        return try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                           trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16))
    }

    func names(_ dir: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }

    /// The one folder under earlier_runs, nil when nothing was set aside.
    func setAside(_ dir: URL) -> URL? {
        let runs = names(dir.appendingPathComponent("earlier_runs"))
        XCTAssertLessThanOrEqual(runs.count, 1, "\(runs)")
        return runs.first.map { dir.appendingPathComponent("earlier_runs/\($0)") }
    }

    func trainSteps(_ dir: URL) throws -> [Int] {
        let text = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["mode"] as? String == "train" }.compactMap { $0["step"] as? Int }
    }

    /// What a run killed before its first checkpoint leaves: records, events, its config and log.
    func deadRun(in dir: URL) throws {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("tensorboard"), withIntermediateDirectories: true)
        try Data("{\"mode\":\"train\",\"step\":20}\n".utf8).write(to: dir.appendingPathComponent("metrics.jsonl"))
        try Data("events".utf8).write(to: dir.appendingPathComponent("tensorboard/events.out.tfevents.1.host"))
        try Data("# Every key of this run (defaults and --set overrides included), written by aim-train.\nmodel:\n".utf8)
            .write(to: dir.appendingPathComponent("earlier.yaml"))
        try Data("aim-train run log, 2026-12-07T10:00:00Z on host, 1 rank(s)\n".utf8).write(to: dir.appendingPathComponent("20261207_100000.log"))
        // The user's own files stay.
        try Data("model:\n  num_classes: 4\n".utf8).write(to: dir.appendingPathComponent("edited.yaml"))
        try Data("notes\n".utf8).write(to: dir.appendingPathComponent("notes.log"))
    }

    func testARunThatDiedBeforeItsFirstCheckpointIsSetAside() throws {
        for resume in [nil, "auto"] {
            let dir = freshScratch("earlier-dead-\(resume ?? "new")")
            try deadRun(in: dir)
            let summary = try trainer(try config(), dir, resume: resume).run()
            XCTAssertEqual(summary.state.step, 4)
            let moved = try XCTUnwrap(setAside(dir), "resume \(resume ?? "none"): the dead run's records were not set aside")
            XCTAssertEqual(names(moved), ["20261207_100000.log", "earlier.yaml", "metrics.jsonl", "tensorboard"])
            XCTAssertEqual(names(moved.appendingPathComponent("tensorboard")), ["events.out.tfevents.1.host"])
            XCTAssertTrue(names(dir).contains("edited.yaml") && names(dir).contains("notes.log"), "\(names(dir))")
            XCTAssertEqual(try trainSteps(dir), [1, 4], "metrics.jsonl holds the new run's records alone (its first and last steps)")
        }
    }

    func testResumingFromAnotherFolderSetsTheRunHereAsideAndFromItsOwnDoesNot() throws {
        let source = freshScratch("earlier-source"), here = freshScratch("earlier-here")
        _ = try trainer(try config(), source).run()
        _ = try trainer(try config(["train.seed=9"]), here).run()
        let hereLatest = try WeightComparison.tunableWeights(ofCheckpoint: here.appendingPathComponent("latest.safetensors").path)

        // Its own newest checkpoint continues the run here: nothing moves.
        _ = try trainer(try config(["train.seed=9"]), here, resume: here.appendingPathComponent("checkpoints/step_00000004.safetensors").path).run()
        XCTAssertNil(setAside(here))

        // Another folder's: the run here moves whole, and its step files cannot mix with the new lineage's.
        let step2 = source.appendingPathComponent("checkpoints/step_00000002.safetensors").path
        let resumed = try trainer(try config(), here, resume: step2)
        _ = try resumed.run()
        let moved = try XCTUnwrap(setAside(here))
        XCTAssertEqual(try WeightComparison.tunableWeights(ofCheckpoint: moved.appendingPathComponent("latest.safetensors").path), hereLatest)
        XCTAssertEqual(names(here.appendingPathComponent("checkpoints")), ["step_00000004.safetensors"], "the resumed lineage's steps only")
        XCTAssertEqual(try WeightComparison.tunableWeights(ofCheckpoint: here.appendingPathComponent("latest.safetensors").path),
                       try WeightComparison.tunableWeights(ofCheckpoint: source.appendingPathComponent("latest.safetensors").path),
                       "resumed from the source's step 2, the run ends as the source did")
    }

    func testLoadFromAFileOfTheRunThatIsSetAside() throws {
        let dir = freshScratch("earlier-load-self")
        _ = try trainer(try config(), dir).run()
        let saved = try WeightComparison.tunableWeights(ofCheckpoint: dir.appendingPathComponent("latest.safetensors").path)
        let started = try trainer(try config(["load_from=\(dir.appendingPathComponent("latest.safetensors").path)"]), dir)
        let loaded = Dictionary(uniqueKeysWithValues: started.model.store.tunableParameters.map {
            ($0.name, Array(UnsafeBufferPointer(start: $0.data, count: $0.count)))
        })
        XCTAssertEqual(loaded, saved)
        XCTAssertNotNil(setAside(dir))
    }

    func testAMissingLoadFromMattersOnlyWhenResumeFindsNothing() throws {
        let source = freshScratch("earlier-lf-source")
        _ = try trainer(try config(), source).run()
        let copy = freshScratch("earlier-lf-copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let file = copy.appendingPathComponent("start.safetensors")
        try FileManager.default.copyItem(at: source.appendingPathComponent("latest.safetensors"), to: file)

        let dir = freshScratch("earlier-lf-run")
        _ = try trainer(try config(["load_from=\(file.path)", "train.epochs=2"]), dir).run()
        try FileManager.default.removeItem(at: file)
        // Resumed: the checkpoint gives the weights, the missing file does not matter.
        let resumed = try trainer(try config(["load_from=\(file.path)", "train.epochs=2"]), dir, resume: "auto")
        XCTAssertEqual(try resumed.run().state.step, 8)
        // Nothing to resume from: the run would start from load_from, which is gone.
        XCTAssertThrowsError(try trainer(try config(["load_from=\(file.path)"]), freshScratch("earlier-lf-empty"), resume: "auto").run()) {
            XCTAssertTrue("\($0)".contains("load_from: ") && "\($0)".contains(file.path) && "\($0)".contains("found no checkpoint"), "\($0)")
        }
        // Without --resume it is refused before the work dir is made.
        let fresh = freshScratch("earlier-lf-new")
        XCTAssertThrowsError(try trainer(try config(["load_from=\(file.path)"]), fresh)) {
            XCTAssertTrue("\($0)".contains("load_from: ") && "\($0)".contains(file.path), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path))
    }

    /// A run that died after its last checkpoint logged later steps; resumed, it logs them again:
    /// metrics.jsonl then holds each step once, as the TensorBoard events do.
    func testResumeKeepsEachStepOnceInTheMetrics() throws {
        let config = try self.config(["train.epochs=2", "train.log_interval=1", "checkpoint.interval=4"])
        let dir = freshScratch("earlier-metrics")
        _ = try trainer(config, dir).run()
        XCTAssertEqual(try trainSteps(dir), Array(1...8))
        // As if the run had died after logging step 8, before its checkpoint (latest still step 4's).
        try FileManager.default.removeItem(at: dir.appendingPathComponent("checkpoints/step_00000008.safetensors"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("latest.safetensors"))
        try FileManager.default.linkItem(at: dir.appendingPathComponent("checkpoints/step_00000004.safetensors"),
                                         to: dir.appendingPathComponent("latest.safetensors"))
        let handle = try FileHandle(forWritingTo: dir.appendingPathComponent("metrics.jsonl"))
        try handle.seekToEnd(); try handle.write(contentsOf: Data("{\"mode\":\"train\",\"st".utf8)); try handle.close()
        let resumed = try trainer(config, dir, resume: "auto")
        XCTAssertEqual(try resumed.run().state.step, 8)
        XCTAssertEqual(try trainSteps(dir), Array(1...8))
        XCTAssertNil(setAside(dir))
    }
}

extension EarlierRunTests {
    func trainer(_ config: Config, _ dir: URL, resume: String?, maxSteps: Int?, validating: Bool) throws -> Trainer {
        var options = TrainOptions(); options.workDir = dir; options.threads = 2; options.resume = resume; options.maxSteps = maxSteps
        return try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                           trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16),
                           valData: validating ? IndexedViews(videos: 4, views: 1) : nil)
    }

    func step(of file: URL) throws -> Int { Int(try SafetensorsFile(path: file.path).metadata["step"] ?? "") ?? -1 }

    /// Resuming the run here at an earlier step of its own (after a divergence, say): what it
    /// wrote after that step moves aside, `best` is no later than the resumed step, and a
    /// `--resume auto` after the next stop continues this run, not the abandoned steps.
    func testResumingAnEarlierStepOfItsOwnSetsTheLaterStepsAside() throws {
        let config = try self.config(["train.epochs=2", "eval.interval=2", "train.log_interval=1"])
        let dir = freshScratch("earlier-branch")
        _ = try trainer(config, dir, resume: nil, maxSteps: nil, validating: true).run()
        XCTAssertEqual(names(dir.appendingPathComponent("checkpoints")).count, 4, "steps 2, 4, 6, 8")

        let step2 = dir.appendingPathComponent("checkpoints/step_00000002.safetensors").path
        XCTAssertEqual(try trainer(config, dir, resume: step2, maxSteps: 3, validating: true).run().state.step, 3)
        XCTAssertEqual(names(dir.appendingPathComponent("checkpoints")), ["step_00000002.safetensors", "step_00000003.safetensors"])
        let moved = try XCTUnwrap(setAside(dir), "the abandoned steps were left in place")
        XCTAssertEqual(names(moved.appendingPathComponent("checkpoints")),
                       ["step_00000004.safetensors", "step_00000006.safetensors", "step_00000008.safetensors"])
        XCTAssertEqual(try step(of: dir.appendingPathComponent("latest.safetensors")), 3)
        XCTAssertLessThanOrEqual(try step(of: dir.appendingPathComponent("best.safetensors")), 3, "best is one of this run's")

        XCTAssertEqual(try trainer(config, dir, resume: "auto", maxSteps: nil, validating: true).run().state.step, 8)
        XCTAssertEqual(try trainSteps(dir), Array(1...8), "auto continued from step 3, not the abandoned step 8")
    }

    /// A --resume file that cannot be used (missing, not a checkpoint) is refused before anything
    /// in the work dir moves: the natural retry, --resume auto, still finds the run.
    func testAnUnusableResumeFileMovesNothing() throws {
        let dir = freshScratch("earlier-bad-resume")
        _ = try trainer(try config(), dir).run()
        let before = names(dir)
        let junk = dir.appendingPathComponent("junk.safetensors")
        try Data("not a checkpoint".utf8).write(to: junk)
        for path in [dir.appendingPathComponent("typo/latest.safetensors").path, junk.path] {
            XCTAssertThrowsError(try trainer(try config(), dir, resume: path)) {
                XCTAssertTrue("\($0)".contains("--resume ") && "\($0)".contains(path), "\($0)")
            }
            XCTAssertNil(setAside(dir))
            XCTAssertEqual(names(dir), (before + ["junk.safetensors"]).sorted())
        }
        XCTAssertEqual(try trainer(try config(), dir, resume: "auto").run().state.step, 4)
    }
}

extension EarlierRunTests {
    /// A checkpoint whose weights hold a NaN (its checksum, taken over the NaN, agrees) is refused
    /// by name, and --resume auto resumes the newest good one instead. Before, the run died a step
    /// later without naming the file, and auto chose it again at every restart.
    func testACheckpointHoldingANaNIsRefusedAndAutoTakesTheOneBefore() throws {
        let dir = freshScratch("earlier-nan")
        _ = try trainer(try config(), dir).run()
        let t = try trainer(try config(), freshScratch("earlier-nan-maker"))
        t.model.store.tunableParameters[0].data[0] = .nan
        try CheckpointStore(workDir: dir, keepLast: 0).save(model: t.model, optimizer: t.optimizer, state: TrainingState(step: 6, epoch: 1, stepInEpoch: 2),
                                                             config: try config().dump(), worldSize: 1, isBest: false)
        let bad = dir.appendingPathComponent("checkpoints/step_00000006.safetensors").path
        XCTAssertThrowsError(try trainer(try config(), dir, resume: bad)) {
            XCTAssertTrue("\($0)".contains(bad) && "\($0)".contains("inf or NaN"), "\($0)")
        }
        XCTAssertEqual(try trainer(try config(["train.epochs=2"]), dir, resume: "auto").run().state.step, 8)
        let steps = try trainSteps(dir)
        XCTAssertTrue(steps.contains(5), "resumed at step 4, the newest good checkpoint: \(steps)")
    }
}

extension EarlierRunTests {
    /// load_from checks an aim-swift checkpoint's checksum as --resume and aim-eval do: a flipped
    /// bit started a new run from damaged weights without a word.
    func testLoadFromRefusesADamagedCheckpoint() throws {
        let dir = freshScratch("earlier-lf-damaged")
        _ = try trainer(try config(), dir).run()
        let copy = freshScratch("earlier-lf-damaged-copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let file = copy.appendingPathComponent("start.safetensors")
        var bytes = try Data(contentsOf: dir.appendingPathComponent("latest.safetensors"))
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: file)
        XCTAssertThrowsError(try trainer(try config(["load_from=\(file.path)"]), freshScratch("earlier-lf-damaged-run"))) {
            XCTAssertTrue("\($0)".contains(file.path) && "\($0)".contains("checksum"), "\($0)")
        }
    }
}

extension EarlierRunTests {
    /// A later best set aside when the resumed checkpoint's own best is gone (pruned by
    /// checkpoint.keep_last, or a checkpoint of an older build names none): the best top-1 starts
    /// over, so the next validation writes best.safetensors. Before, the run kept the old best
    /// score and never wrote one again, and --test-best failed on every retry.
    func testABestThatCannotBePutBackStartsOver() throws {
        let config = try self.config(["eval.interval=2"])
        let dir = freshScratch("earlier-best-gone")
        _ = try trainer(config, dir, resume: nil, maxSteps: nil, validating: true).run()
        // best at step 4; a step-3 checkpoint whose own best (step 1) was pruned, with a top-1 no validation beats.
        let store = CheckpointStore(workDir: dir, keepLast: 0)
        try? FileManager.default.removeItem(at: store.best)
        try FileManager.default.linkItem(at: store.path(step: 4), to: store.best)
        let maker = try trainer(config, freshScratch("earlier-best-gone-maker"))
        try store.save(model: maker.model, optimizer: maker.optimizer, state: TrainingState(step: 3, epoch: 0, stepInEpoch: 3, bestTop1: 1, bestStep: 1),
                       config: config.dump(), worldSize: 1, isBest: false)
        _ = try trainer(config, dir, resume: store.path(step: 3).path, maxSteps: nil, validating: true).run()
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.best.path), "no best.safetensors after the resumed run's validation")
        XCTAssertEqual(try step(of: store.best), 4)
    }
}

extension EarlierRunTests {
    /// A latest newer than every step file auto can resume (its step file removed) belongs to the
    /// steps the resumed run replaces: it is set aside with them, not left to name weights this
    /// run never had until its next checkpoint.
    func testALatestNewerThanTheResumedStepIsSetAside() throws {
        let config = try self.config(["train.epochs=2", "checkpoint.interval=4"])
        let dir = freshScratch("earlier-latest-newer")
        _ = try trainer(config, dir).run()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("checkpoints/step_00000008.safetensors"))
        let resumed = try trainer(config, dir, resume: "auto")
        let moved = try XCTUnwrap(setAside(dir), "latest (step 8) was left in place")
        XCTAssertEqual(try step(of: moved.appendingPathComponent("latest.safetensors")), 8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("latest.safetensors").path))
        XCTAssertEqual(try resumed.run().state.step, 8)
        XCTAssertEqual(try step(of: dir.appendingPathComponent("latest.safetensors")), 8)
    }
}
