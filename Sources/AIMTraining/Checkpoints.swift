import AIMModel
import AIMTensor
import Foundation

/// Where a run is: enough to resume it exactly.
public struct TrainingState: Equatable, Sendable {
    public var step: Int          // optimizer steps done
    public var epoch: Int         // current epoch (0-based)
    public var stepInEpoch: Int   // optimizer steps done within `epoch`
    public var bestTop1: Double   // best validation top-1 so far (-1 = none)
    /// The step whose checkpoint became `best` (-1 = none, or a checkpoint older than the key):
    /// a resume at an earlier step finds this run's own best again by it.
    public var bestStep: Int
    /// A stop signal cut short the validation of this step: it runs first when the run resumes.
    public var evalPending: Bool
    public init(step: Int = 0, epoch: Int = 0, stepInEpoch: Int = 0, bestTop1: Double = -1, bestStep: Int = -1, evalPending: Bool = false) {
        self.step = step; self.epoch = epoch; self.stepInEpoch = stepInEpoch; self.bestTop1 = bestTop1; self.bestStep = bestStep
        self.evalPending = evalPending
    }

    /// The epoch this state's last step belongs to, counted from 1 as mmaction2's logs count
    /// (`Epoch [1][20/3750]`): the first epoch's steps log 1, not the 0 epochs completed.
    public var loggedEpoch: Int { stepInEpoch == 0 ? epoch : epoch + 1 }
}

/// The rank-0 coordinator's checkpoints: one safetensors file per checkpoint with the tunable
/// weights under the official keys, the AdamW moments (`optimizer.exp_avg.<key>`,
/// `optimizer.exp_avg_sq.<key>`), and in its metadata the position and the config.
/// Layout: `checkpoints/step_<N:08>.safetensors`, `latest.safetensors`, `best.safetensors`
/// (hard links, so pruning an old step file never breaks them).
public final class CheckpointStore {
    public static let format = "aim-swift-checkpoint-1"
    public let workDir: URL
    public let keepLast: Int
    public var log: (String) -> Void = { Console.error($0) }

    public init(workDir: URL, keepLast: Int) {
        self.workDir = workDir; self.keepLast = keepLast
    }

    public var directory: URL { workDir.appendingPathComponent("checkpoints") }
    public func path(step: Int) -> URL { directory.appendingPathComponent(String(format: "step_%08d.safetensors", step)) }
    public var latest: URL { workDir.appendingPathComponent("latest.safetensors") }
    public var best: URL { workDir.appendingPathComponent("best.safetensors") }

    /// Writes a checkpoint atomically (temp file, fsync, rename), updates `latest`, and `best`
    /// when `isBest`, then prunes old step files to `keepLast`. Returns the file and its size.
    @discardableResult
    public func save(model: Recognizer, optimizer: AdamWOptimizer, state: TrainingState, config: String,
                     worldSize: Int, isBest: Bool, extraMetadata: [String: String] = [:]) throws -> (URL, Int) {
        do {
            return try write(model: model, optimizer: optimizer, state: state, config: config, worldSize: worldSize,
                             isBest: isBest, extraMetadata: extraMetadata)
        } catch let e as SafetensorsError {
            // The writer names the file and the system's reason; the room left says what to do.
            let free = FileSpace.freeBytes(near: directory.path).map { " (\(FileSpace.describe($0)) free on that filesystem)" } ?? ""
            throw TrainingError.checkpoint(path: e.path, reason: e.message + free)
        }
    }

    /// Bytes of one checkpoint of `model`: weights and two moments, plus a header of names and the config.
    public static func estimatedBytes(model: Recognizer, config: String) -> Int {
        let names = model.store.tunableParameters.reduce(0) { $0 + 3 * ($1.name.count + 100) }
        return 12 * model.store.tunableCount + names + config.utf8.count + 4096
    }

    private func write(model: Recognizer, optimizer: AdamWOptimizer, state: TrainingState, config: String,
                       worldSize: Int, isBest: Bool, extraMetadata: [String: String]) throws -> (URL, Int) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var w = SafetensorsWriter(metadata: extraMetadata.merging([
            "format": Self.format, "step": String(state.step), "epoch": String(state.epoch),
            "step_in_epoch": String(state.stepInEpoch), "best_top1": String(state.bestTop1),
            "best_step": String(state.bestStep),
            "eval_pending": state.evalPending ? "1" : "0",
            "optimizer_step": String(optimizer.step), "world_size": String(worldSize), "config": config,
        ]) { _, ours in ours })
        model.addWeights(to: &w, tunableOnly: true)
        for p in model.store.tunableParameters {
            w.add("optimizer.exp_avg." + p.name, tensor: Tensor(viewing: optimizer.m, offset: p.offset, shape: p.shape))
            w.add("optimizer.exp_avg_sq." + p.name, tensor: Tensor(viewing: optimizer.v, offset: p.offset, shape: p.shape))
        }
        w.metadata["checksum"] = Self.checksum(model: model) { name, p in
            let base = name.hasPrefix("optimizer.exp_avg_sq.") ? optimizer.v.data + p.offset
                : name.hasPrefix("optimizer.exp_avg.") ? optimizer.m.data + p.offset : p.data
            return UnsafeRawBufferPointer(start: base, count: p.count * 4)
        }
        let file = path(step: state.step)
        try w.save(to: file.path)
        try link(file, as: latest)
        if isBest { try link(file, as: best) }
        prune()
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        return (file, size)
    }

    /// Points `best` at the step file of `step` again (after a later best was set aside).
    func restoreBest(step: Int) throws {
        try link(path(step: step), as: best)
    }

    /// Points `name` at `file` atomically: a hard link under a temporary name renamed over it.
    private func link(_ file: URL, as name: URL) throws {
        let tmp = name.deletingLastPathComponent().appendingPathComponent(".\(name.lastPathComponent).tmp-\(getpid())")
        unlink(tmp.path)
        if Foundation.link(file.path, tmp.path) != 0 {
            // No hard links on this filesystem: fall back to a copy (still renamed into place).
            try FileManager.default.copyItem(at: file, to: tmp)
        }
        guard rename(tmp.path, name.path) == 0 else {
            throw TrainingError.checkpoint(path: name.path, reason: String(cString: strerror(errno)))
        }
    }

    /// Step files, newest first.
    public func stepFiles() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("step_") && $0.hasSuffix(".safetensors") }.sorted(by: >)
            .map { directory.appendingPathComponent($0) }
    }

    private func prune() {
        // Temporary files of writers killed mid-write (any pid but ours; one writer per work dir).
        for dir in [directory, workDir] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            for n in names where n.contains(".safetensors.tmp-") && !n.hasSuffix(".tmp-\(getpid())") {
                try? FileManager.default.removeItem(at: dir.appendingPathComponent(n))
            }
        }
        guard keepLast > 0 else { return }
        for old in stepFiles().dropFirst(keepLast) { try? FileManager.default.removeItem(at: old) }
    }

    /// Checks that `file` is one of ours and holds every tunable parameter and moment.
    public func validate(_ file: URL, model: Recognizer) throws -> SafetensorsFile {
        let f = try SafetensorsFile(path: file.path)
        guard f.metadata["format"] == Self.format else {
            throw TrainingError.checkpoint(path: file.path, reason: "not an aim-swift checkpoint (metadata format is \(f.metadata["format"] ?? "missing"))")
        }
        for key in ["step", "epoch", "step_in_epoch", "optimizer_step", "config"] where f.metadata[key] == nil {
            throw TrainingError.checkpoint(path: file.path, reason: "metadata has no '\(key)'")
        }
        // The metadata is outside the checksum: a count that is not one would restart AdamW's bias
        // correction at a step it never had, and one near Int.max would overflow (a trap) at the next step.
        for key in ["step", "epoch", "step_in_epoch", "optimizer_step"] where !(0...Int(Int32.max)).contains(Int(f.metadata[key]!) ?? -1) {
            throw TrainingError.checkpoint(path: file.path,
                                           reason: "metadata '\(key)' is \"\(f.metadata[key]!)\", not a count (a whole number from 0 to \(Int32.max))")
        }
        // Optional ones, outside the checksum too: a best top-1 that is not a fraction (or -1, none
        // yet) would decide which checkpoint becomes `best`; world_size is compared on resume.
        if let b = f.metadata["best_top1"], !(Double(b).map { $0 == -1 || (0...1).contains($0) } ?? false) {
            throw TrainingError.checkpoint(path: file.path, reason: "metadata 'best_top1' is \"\(b)\", not a top-1 from 0 to 1 (or -1)")
        }
        if let b = f.metadata["best_step"], !(Int(b).map { $0 >= -1 } ?? false) {
            throw TrainingError.checkpoint(path: file.path, reason: "metadata 'best_step' is \"\(b)\", not a step (or -1)")
        }
        if let w = f.metadata["world_size"], !(Int(w).map { $0 >= 1 } ?? false) {
            throw TrainingError.checkpoint(path: file.path, reason: "metadata 'world_size' is \"\(w)\", not a rank count")
        }
        for p in model.store.tunableParameters {
            for k in [p.name, "optimizer.exp_avg." + p.name, "optimizer.exp_avg_sq." + p.name] {
                guard f.contains(k) else { throw TrainingError.checkpoint(path: file.path, reason: "missing tensor \(k)") }
                let shape = try f.shape(of: k), dtype = try f.dtype(of: k)
                guard shape.reduce(1, *) == p.count, dtype == .f32 else {
                    throw TrainingError.checkpoint(path: file.path, reason: "\(k) is \(shape) of \(dtype.rawValue), the model needs \(p.shape) of F32")
                }
            }
        }
        try Self.verifyChecksum(f, model: model)
        // A file without a checksum (older, or written by hand) could hold an inf or NaN: resumed,
        // the run died a step later without naming the file, and --resume auto chose it again.
        for p in model.store.tunableParameters {
            for k in [p.name, "optimizer.exp_avg." + p.name, "optimizer.exp_avg_sq." + p.name] {
                let secondMoment = k.hasPrefix("optimizer.exp_avg_sq.")
                let bad = try f.withRawBytes(named: k) { raw -> Bool in
                    var exponent: UInt32 = 0, negative: UInt32 = 0
                    guard let base = raw.baseAddress else { return false }
                    for i in 0..<(raw.count / 4) {
                        let word = base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                        exponent = max(exponent, word & 0x7F80_0000)
                        // A second moment below zero: its square root in AdamW is NaN.
                        if secondMoment { negative |= (word >> 31) & (word & 0x7FFF_FFFF == 0 ? 0 : 1) }
                    }
                    return exponent == 0x7F80_0000 || negative != 0
                }
                if bad {
                    throw TrainingError.checkpoint(path: file.path, reason: "\(k) holds an inf or NaN\(secondMoment ? " or a negative value" : "") (a run from it would fail at its first step)")
                }
            }
        }
        return f
    }

    /// Damage inside the data (the header still parses) shows only in the checksum, recorded over
    /// the tunable weights and moments of the model that wrote the file: checked when the file has
    /// one and holds exactly this model's tunable tensors (evaluation may build a model whose
    /// tunable set differs, e.g. `model.tune: head`; its sum would differ without damage).
    static func verifyChecksum(_ f: SafetensorsFile, model: Recognizer) throws {
        guard let expected = f.metadata["checksum"] else { return }
        let tunable = model.store.tunableParameters.map(\.name)
        let keys = Set(tunable.flatMap { [$0, "optimizer.exp_avg." + $0, "optimizer.exp_avg_sq." + $0] })
        guard keys.allSatisfy(f.contains), f.names.filter({ !$0.hasPrefix("optimizer.") }).count == tunable.count else { return }
        let actual = Self.checksum(model: model) { name, _ in
            (try? f.withRawBytes(named: name) { $0 }) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        }
        guard actual == expected else {
            throw TrainingError.checkpoint(path: f.path, reason: "data checksum \(actual) does not match the recorded \(expected) (corrupt file)")
        }
    }

    /// FNV-1a (64-bit, over 4-byte words) of every tunable weight and moment, in the model's
    /// parameter order; `bytes` gives a tensor's bytes by its key.
    static func checksum(model: Recognizer, bytes: (String, Parameter) -> UnsafeRawBufferPointer) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for p in model.store.tunableParameters {
            for k in [p.name, "optimizer.exp_avg." + p.name, "optimizer.exp_avg_sq." + p.name] {
                let b = bytes(k, p)
                h = (h ^ UInt64(b.count)) &* 0x100_0000_01b3
                guard let base = b.baseAddress else { continue }
                let words = b.count / 4
                for i in 0..<words { h = (h ^ UInt64(base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) &* 0x100_0000_01b3 }
                for i in (4 * words)..<b.count { h = (h ^ UInt64(base.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3 }
            }
        }
        return "fnv1a64:" + String(h, radix: 16)
    }

    /// Loads weights, moments and position from `file`.
    public func restore(_ file: URL, model: Recognizer, optimizer: AdamWOptimizer) throws -> (TrainingState, config: String) {
        let f = try validate(file, model: model)
        for p in model.store.tunableParameters {
            try f.readFloats(named: p.name, into: p.data, count: p.count)
            try f.readFloats(named: "optimizer.exp_avg." + p.name, into: optimizer.m.data + p.offset, count: p.count)
            try f.readFloats(named: "optimizer.exp_avg_sq." + p.name, into: optimizer.v.data + p.offset, count: p.count)
        }
        let md = f.metadata
        optimizer.restore(step: Int(md["optimizer_step"]!) ?? 0)
        let state = TrainingState(step: Int(md["step"]!) ?? 0, epoch: Int(md["epoch"]!) ?? 0,
                                  stepInEpoch: Int(md["step_in_epoch"]!) ?? 0, bestTop1: Double(md["best_top1"] ?? "-1") ?? -1,
                                  bestStep: Int(md["best_step"] ?? "-1") ?? -1,
                                  evalPending: md["eval_pending"] == "1")
        return (state, md["config"]!)
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case checkpoint(path: String, reason: String)
    case config(String)
    case nonFinite(step: Int, loss: Float)
    case nonFiniteState(step: Int, tensor: String)
    case data(String)
    /// The work dir cannot hold the run's checkpoints (exit status 74).
    case storage(String)

    public var isStorage: Bool { if case .storage = self { return true } else { return false } }

    public var description: String {
        switch self {
        case let .checkpoint(path, reason): return "\(path): \(reason)"
        case let .config(msg): return msg
        case let .nonFinite(step, loss): return "loss became \(loss) at step \(step); stopping (the last good checkpoint is kept)"
        case let .nonFiniteState(step, tensor):
            return "\(tensor) became non-finite in the update of step \(step); stopping (the last good checkpoint is kept)"
        case let .data(msg): return msg
        case let .storage(msg): return msg
        }
    }
}
