import AIMData
import AIMDistributed
import Foundation

/// Which weights `--test-last` / `--test-best` test once training is complete.
public enum TestCheckpoint: String, CaseIterable, Sendable {
    /// The final weights (those of `latest.safetensors`).
    case last
    /// `best.safetensors`: the validation with the highest top-1.
    case best
}

/// One test after training: the weights tested (and the step they are from) and `aim-eval`'s figures.
public struct TestResult {
    public let checkpoint: TestCheckpoint
    public let step: Int
    public let result: EvalResult
}

extension Trainer {
    /// mmaction2's `train.py --test-last / --test-best`: when the run is complete, the test split
    /// (`data.test`, else `data.val`) with the config's test views, as `aim-eval` runs it, on the
    /// final weights and then on best.safetensors. Each result is printed and recorded in
    /// metrics.jsonl (`"mode": "test"`); TensorBoard keeps train and val curves only.
    /// A stop signal during a test ends it and returns the signal (0 otherwise): the run's
    /// checkpoints are complete, and `--resume auto` runs the tests again.
    func testAfterTraining() throws -> ([TestResult], stopSignal: Int32) {
        guard let testData else { return ([], 0) }
        var results: [TestResult] = []
        for which in TestCheckpoint.allCases where options.testAfter.contains(which) {
            let (step, epoch) = which == .last ? (state.step, state.loggedEpoch) : try loadBestWeights()
            let result: EvalResult
            do {
                result = try Evaluator(model: model, comm: comm, numClasses: modelConfig.numClasses, seed: seed,
                                       averaging: ClipAveraging(config: config), stopSignal: options.stopSignal).run(testData)
            } catch let stopped as Evaluator.Stopped {
                if comm.rank == 0 {
                    log.message("test of the \(which.rawValue) checkpoint stopped by signal \(stopped.signal); training is complete, "
                                + "and --resume auto runs the tests again")
                }
                return (results, stopped.signal)
            }
            results.append(TestResult(checkpoint: which, step: step, result: result))
            guard comm.rank == 0 else { continue }
            let views = (try? ClipPipelineConfig(config: config, split: .test)).map { $0.viewsText(frames: modelConfig.numFrames) } ?? "?"
            let annotation = config.string("data.test").isEmpty ? "data.val" : "data.test"
            log.message(String(format: "test of the %@ checkpoint (step %d; %@, views %@): top1 %.4f  top5 %.4f  mean class %.4f  (%d videos, %d skipped)",
                               which.rawValue, step, annotation, views, result.top1, result.top5, result.meanClassAccuracy,
                               result.videos, result.skipped))
            log.record(["mode": "test", "checkpoint": which.rawValue, "step": step, "epoch": epoch, "views": views,
                        "average_clips": config.string("eval.average_clips"), "top1": result.top1,
                        "top5": result.top5, "mean_class_accuracy": result.meanClassAccuracy, "videos": result.videos,
                        "skipped": result.skipped])
        }
        return (results, 0)
    }

    /// best.safetensors' tunable weights on every rank; returns the step and epoch (as logged, from 1) it was written at.
    /// Rank 0 reads the file, so the other ranks need not see the work dir, and the values reach
    /// them as a sum with their zeroed buffers (adding zeros is exact).
    func loadBestWeights() throws -> (step: Int, epoch: Int) {
        var step = 0, epoch = 0, failure = ""
        if comm.rank == 0 {
            do {
                // None after a resume at an earlier step set a later best aside, until a validation beats the resumed one's.
                guard FileManager.default.fileExists(atPath: checkpoints.best.path) else {
                    throw TrainingError.checkpoint(path: checkpoints.best.path, reason: String(format:
                        "none in this run: no validation since it resumed beat the best top-1 it resumed with (%.4f), whose checkpoint is gone", state.bestTop1))
                }
                let file = try checkpoints.validate(checkpoints.best, model: model)
                for p in model.store.tunableParameters { try file.readFloats(named: p.name, into: p.data, count: p.count) }
                step = Int(file.metadata["step"] ?? "") ?? 0
                epoch = TrainingState(epoch: Int(file.metadata["epoch"] ?? "") ?? 0,
                                      stepInEpoch: Int(file.metadata["step_in_epoch"] ?? "") ?? 0).loggedEpoch
            } catch { failure = Launch.describe(error) }
        }
        let agreed = comm.allreduce([failure.isEmpty ? 0 : 1, Double(step), Double(epoch)], op: .sum, label: "test-best")
        guard agreed[0] == 0 else {
            throw AgreedStop(status: ExitStatus.failure, message: comm.rank == 0 ? "--test-best: \(failure)" : nil)
        }
        if comm.size > 1 {
            let values = model.store.tunableValues
            if comm.rank != 0 { values.data.update(repeating: 0, count: model.store.tunableCount) }
            comm.allreduceSum(values.data, count: model.store.tunableCount, label: "test-best-weights")
            // A rank testing other weights would print wrong figures, not an error.
            try RankAgreement.require(comm, [("the tunable weights of \(checkpoints.best.path)", model.weightsFingerprint(tunable: true) ?? "")],
                                      doing: "test")
        }
        return (Int(agreed[1]), Int(agreed[2]))
    }
}
