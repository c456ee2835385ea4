import AIMConfig
import AIMDistributed
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// `load_from` (mmaction2's key): a new run starts from a trained model's tunable weights; a head
/// of another class count stays initialised; frozen weights must be model.pretrained's.
final class LoadFromTests: XCTestCase {
    func config(_ extra: [String] = []) throws -> Config {
        try tinyAIMConfig("load-from", ["checkpoint.interval=1000", "train.seed=3"] + extra)
    }

    func scratch(_ name: String) -> URL { freshScratch(name) }

    func trainer(_ config: Config, _ dir: URL, resume: String? = nil) throws -> Trainer {
        var options = TrainOptions(); options.workDir = dir; options.threads = 2; options.resume = resume
        return try Trainer(config: config, options: options, communicator: SingleProcessCommunicator(),
                           trainData: QuadrantBatches(localBatch: 8, frames: 2, size: 16))
    }

    /// A trained run's latest.safetensors (4 steps from the config's init).
    func trainedCheckpoint() throws -> URL {
        let dir = scratch("load-from-source")
        _ = try trainer(try config(), dir).run()
        return dir.appendingPathComponent("latest.safetensors")
    }

    func tunable(_ t: Trainer) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: t.model.store.tunableParameters.map { ($0.name, Array(UnsafeBufferPointer(start: $0.data, count: $0.count))) })
    }

    func testANewRunStartsFromTheCheckpointsTunableWeights() throws {
        let file = try trainedCheckpoint()
        let saved = try WeightComparison.tunableWeights(ofCheckpoint: file.path)
        let fresh = tunable(try trainer(try config(), scratch("load-from-fresh")))
        XCTAssertNotEqual(fresh, saved, "training moved the weights (else loading could not be seen)")
        let started = try trainer(try config(["load_from=\(file.path)"]), scratch("load-from-same"))
        XCTAssertEqual(tunable(started), saved)
        XCTAssertEqual(started.state.step, 0, "a new run: step and optimizer start fresh")
        XCTAssertEqual(started.optimizer.m.array.filter { $0 != 0 }.count, 0)
    }

    /// Another class count (mmaction2's finetuning on a new dataset): the adapters come from the
    /// file, the head stays as a run without load_from initialises it.
    func testAHeadOfAnotherClassCountStaysInitialised() throws {
        let file = try trainedCheckpoint()
        let saved = try WeightComparison.tunableWeights(ofCheckpoint: file.path)
        let fresh = tunable(try trainer(try config(["model.num_classes=5"]), scratch("load-from-fresh5")))
        let started = tunable(try trainer(try config(["model.num_classes=5", "load_from=\(file.path)"]), scratch("load-from-5")))
        let head = ["cls_head.fc_cls.weight", "cls_head.fc_cls.bias"]
        for (name, values) in started {
            XCTAssertEqual(values, head.contains(name) ? fresh[name] : saved[name], name)
        }
        XCTAssertTrue(started.keys.contains { $0.contains("Adapter") }, "AIM adapters are among the loaded weights")
    }

    /// The checkpoint was trained on other frozen weights (another seed's draw here, another
    /// model.pretrained in a real run): refused, naming the file.
    func testOtherFrozenWeightsAreRefused() throws {
        let file = try trainedCheckpoint()
        XCTAssertThrowsError(try trainer(try config(["train.seed=4", "load_from=\(file.path)"]), scratch("load-from-seed"))) {
            XCTAssertTrue("\($0)".contains(file.path) && "\($0)".contains("other frozen weights"), "\($0)")
        }
    }

    /// A full weights file (as convert_checkpoint.py from-official writes): its frozen weights are
    /// compared with the model's; equal ones pass, others are refused.
    func testAFullWeightsFileIsCheckedAgainstTheFrozenWeights() throws {
        let source = try trainer(try config(), scratch("load-from-full-source"))
        _ = try source.run()
        let dir = scratch("load-from-full")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: [:])
        source.model.addWeights(to: &writer)
        let full = dir.appendingPathComponent("full.safetensors")
        try writer.save(to: full.path)
        let started = try trainer(try config(["load_from=\(full.path)"]), scratch("load-from-full-run"))
        XCTAssertEqual(tunable(started), tunable(source))

        // The same file with one frozen weight changed: adapters trained on another backbone.
        let frozen = try XCTUnwrap(source.model.store.parameters.first { !$0.tunable })
        frozen.data[0] += 1
        var other = SafetensorsWriter(metadata: [:])
        source.model.addWeights(to: &other)
        let otherFile = dir.appendingPathComponent("other.safetensors")
        try other.save(to: otherFile.path)
        XCTAssertThrowsError(try trainer(try config(["load_from=\(otherFile.path)"]), scratch("load-from-other"))) {
            XCTAssertTrue("\($0)".contains("load_from: 1 frozen weights in the file are not those") && "\($0)".contains(frozen.name), "\($0)")
        }
    }

    func testAFileWithoutThisModelsWeightsIsRefused() throws {
        let dir = scratch("load-from-foreign")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: [:])
        writer.add("layers.0.weight", tensor: Tensor([2, 2]))
        let file = dir.appendingPathComponent("foreign.safetensors")
        try writer.save(to: file.path)
        XCTAssertThrowsError(try trainer(try config(["load_from=\(file.path)"]), scratch("load-from-foreign-run"))) {
            XCTAssertTrue("\($0)".contains("none of this model's") && "\($0)".contains("layers.0.weight"), "\($0)")
        }
        // A PyTorch file is never unpickled: refused with the converter to use, before the work dir is made.
        let pth = dir.appendingPathComponent("k400.pth")
        try Data([0x50, 0x4B, 0x03, 0x04] + Array(repeating: 0, count: 60)).write(to: pth)
        let runDir = scratch("load-from-pth-run")
        XCTAssertThrowsError(try trainer(try config(["load_from=\(pth.path)"]), runDir)) {
            XCTAssertTrue("\($0)".contains(pth.path) && "\($0)".contains("convert_checkpoint.py from-official"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: runDir.path))
    }

    /// `--resume` wins: a run resumed from its own checkpoint ends with that checkpoint's weights.
    func testResumeTakesPrecedence() throws {
        let file = try trainedCheckpoint()
        let dir = scratch("load-from-resume")
        _ = try trainer(try config(["train.seed=3", "train.lr=1e-2"]), dir).run()
        let own = try WeightComparison.tunableWeights(ofCheckpoint: dir.appendingPathComponent("latest.safetensors").path)
        XCTAssertNotEqual(own, try WeightComparison.tunableWeights(ofCheckpoint: file.path))
        let resumed = try trainer(try config(["train.lr=1e-2", "load_from=\(file.path)"]), dir, resume: "auto")
        _ = try resumed.run()   // nothing left to train
        XCTAssertEqual(resumed.state.step, 4)
        XCTAssertEqual(tunable(resumed), own)
    }

    /// A fully finetuned checkpoint (nothing frozen, so no frozen fingerprint to compare) given to
    /// an AIM config is "another model": its missing adapters say so, not a frozen-weights mismatch.
    func testAFullyFinetunedCheckpointIsAnotherModelNotOtherFrozenWeights() throws {
        let dir = scratch("load-from-full-finetune")
        _ = try trainer(try config(["model.tune=all", "model.adapters=[]"]), dir).run()
        let file = dir.appendingPathComponent("latest.safetensors").path
        XCTAssertEqual(try SafetensorsFile(path: file).metadata["frozen_weights"], "", "nothing frozen: no fingerprint")
        XCTAssertThrowsError(try Launch.loadModel(config: try config(), checkpoint: file)) {
            XCTAssertTrue("\($0)".contains("is not in the file") && "\($0)".contains("another model"), "\($0)")
            XCTAssertFalse("\($0)".contains("other frozen weights"), "\($0)")
        }
    }

    /// The head follows class names, not label numbers: a checkpoint records its label map's names,
    /// and a new run whose data.classes lists the same classes in another order (aim-data list
    /// sorts them) gets the head's rows reordered; other names leave the head as it is.
    func testTheHeadIsReorderedToTheLabelMapsOrder() throws {
        let dir = scratch("load-from-classes")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func map(_ name: String, _ names: [String]) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try names.map { $0 + "\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let trainedOrder = try map("trained.txt", ["walk", "run", "jump", "swim"])
        let sorted = try map("sorted.txt", ["jump", "run", "swim", "walk"])
        let other = try map("other.txt", ["a", "b", "c", "d"])
        let runDir = dir.appendingPathComponent("run")
        _ = try trainer(try config(["data.classes=\(trainedOrder)"]), runDir).run()
        let file = runDir.appendingPathComponent("latest.safetensors").path
        XCTAssertEqual(try SafetensorsFile(path: file).metadata["classes"], #"["walk","run","jump","swim"]"#)
        let saved = try WeightComparison.tunableWeights(ofCheckpoint: file)
        let w = try XCTUnwrap(saved["cls_head.fc_cls.weight"]), b = try XCTUnwrap(saved["cls_head.fc_cls.bias"])
        let d = w.count / 4

        let reordered = tunable(try trainer(try config(["load_from=\(file)", "data.classes=\(sorted)"]), dir.appendingPathComponent("sorted")))
        let rows = [2, 1, 3, 0]   // jump, run, swim, walk in the trained order
        XCTAssertEqual(reordered["cls_head.fc_cls.weight"], rows.flatMap { Array(w[($0 * d)..<($0 * d + d)]) })
        XCTAssertEqual(reordered["cls_head.fc_cls.bias"], rows.map { b[$0] })
        XCTAssertEqual(reordered["backbone.ln_post.weight"], saved["backbone.ln_post.weight"])

        let unrelated = tunable(try trainer(try config(["load_from=\(file)", "data.classes=\(other)"]), dir.appendingPathComponent("other")))
        XCTAssertEqual(unrelated["cls_head.fc_cls.weight"], w)
        XCTAssertEqual(unrelated["cls_head.fc_cls.bias"], b)

        // Classes that differ in one name: the warning names that class, not the first of each list.
        let oneOther = try map("one-other.txt", ["walk", "run", "jump", "fly"])
        let captured = dir.appendingPathComponent("stderr.txt").path
        RunLog.hold()
        _ = try trainer(try config(["load_from=\(file)", "data.classes=\(oneOther)"]), dir.appendingPathComponent("one-other"))
        try RunLog.attach(path: captured, header: [])
        RunLog.stop()
        let said = try String(contentsOfFile: captured, encoding: .utf8)
        XCTAssertTrue(said.contains("trained for other classes than data.classes names (`swim` there, not here), loaded as it is"), said)

        // No label map here: the head cannot be matched by name, and that is said.
        let noMap = dir.appendingPathComponent("no-map-stderr.txt").path
        RunLog.hold()
        _ = try trainer(try config(["load_from=\(file)"]), dir.appendingPathComponent("no-map"))
        try RunLog.attach(path: noMap, header: [])
        RunLog.stop()
        let noMapSaid = try String(contentsOfFile: noMap, encoding: .utf8)
        XCTAssertTrue(noMapSaid.contains("trained for named classes (walk, run, jump …) and data.classes is empty"), noMapSaid)
    }

    /// A file's weights this model lacks (an AIM file's adapters for a space-only model) are
    /// listed as not read, as mmcv lists unexpected keys.
    func testWeightsTheModelLacksAreListed() throws {
        let file = try trainedCheckpoint()
        let captured = scratch("load-from-unused-log").path
        RunLog.hold()
        let started = try trainer(try config(["model.adapters=[]", "load_from=\(file.path)"]), scratch("load-from-unused"))
        try RunLog.attach(path: captured, header: [])
        RunLog.stop()
        let said = try String(contentsOfFile: captured, encoding: .utf8)
        // The adapters and the temporal embedding (it exists only where some block adapts temporally).
        let adapters = try SafetensorsFile(path: file.path).names.filter { !$0.hasPrefix("optimizer.") && ($0.contains("Adapter") || $0.hasSuffix("temporal_embedding")) }.count
        XCTAssertGreaterThan(adapters, 0)
        XCTAssertTrue(said.contains("; \(adapters) of the file not in this model, not read (backbone."), said)
        XCTAssertGreaterThan(started.model.store.tunableParameters.count, 0)
    }
}
