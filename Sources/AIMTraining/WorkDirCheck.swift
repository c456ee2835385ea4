import AIMConfig
import AIMTensor
import Foundation

/// Checks made before the first step, so a run that cannot keep its work is refused up front
/// instead of failing after hours: the work dir is writable and has room, a batch fits in memory.
enum WorkDirCheck {
    /// Creates the work dir and proves it writable with a probe file.
    /// A new run (no --resume) must not write into the checkpoints of an earlier one: its step
    /// files would sit among the old ones (pruning by step number would delete its own first, and
    /// `--resume auto` would pick the old run's higher steps), and `best` would stay the old run's.
    static func refuseEarlierRun(_ dir: URL) throws {
        let store = CheckpointStore(workDir: dir, keepLast: 0)
        let steps = store.stepFiles()
        let pointers = [store.latest, store.best].filter { FileManager.default.fileExists(atPath: $0.path) }
        guard !steps.isEmpty || !pointers.isEmpty else { return }
        let newest = steps.first.map { "\($0.lastPathComponent) and \(steps.count - 1) more" } ?? pointers.map(\.lastPathComponent).joined(separator: ", ")
        throw TrainingError.config("work dir \(dir.path) holds the checkpoints of an earlier run (\(newest)): continue it with --resume auto, "
            + "or start this run in another --work-dir (or remove \(dir.path)/checkpoints, latest.safetensors and best.safetensors first); "
            + "a new run there would mix its checkpoints with them")
    }

    static func prepare(_ dir: URL) throws {
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            // Foundation says "error 512": name the file in the way, if that is the cause.
            var p = dir.path
            while !p.isEmpty && p != "/" && !FileManager.default.fileExists(atPath: p) { p = (p as NSString).deletingLastPathComponent }
            if FileOutput.isFileNotFolder(p) {
                throw TrainingError.storage("work dir \(dir.path) cannot be created: \(p) is a file, not a folder")
            }
            throw TrainingError.storage("work dir \(dir.path) cannot be created: \(error.localizedDescription)")
        }
        let probe = dir.appendingPathComponent(".aim-write-test-\(getpid())").path
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var failure: Int32? = fd < 0 ? errno : nil
        if fd >= 0 {
            var byte: UInt8 = 0x0A
            if write(fd, &byte, 1) != 1 { failure = errno == 0 ? ENOSPC : errno }
            close(fd)
            unlink(probe)
        }
        if let code = failure {
            throw TrainingError.storage("work dir \(dir.path) is not writable: \(FileWriteError(path: probe, errno: code).description)")
        }
    }

    /// Room for two checkpoints: a new one is written whole before `latest` moves and old ones are pruned.
    static func roomForCheckpoints(_ dir: URL, bytesEach: Int) throws {
        guard let free = FileSpace.freeBytes(near: dir.path) else { return }
        let needed = Int64(2 * bytesEach) + (64 << 10)  // and a little for metrics.jsonl
        if free < needed {
            throw TrainingError.storage("work dir \(dir.path) has \(FileSpace.describe(free)) free; a checkpoint of this model takes "
                + "\(FileSpace.describe(Int64(bytesEach))) and the run needs room for at least two "
                + "(\(FileSpace.describe(needed))). Free some space or choose another --work-dir")
        }
    }

    /// The decoded clips the loader holds at once (prefetched batches, the one in use, one being
    /// loaded) must fit in this rank's share of the machine's memory.
    static func batchFitsInMemory(config c: Config, localBatch: Int, clipFloats: Int) throws {
        let views = max(c.int("data.num_clips"), 1)
        let batchBytes = Double(localBatch) * Double(views) * Double(clipFloats) * 4
        let held = batchBytes * Double(c.int("data.prefetch") + 2)
        let env = ProcessInfo.processInfo.environment
        let localRanks = max(1, Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "") ?? 1)
        let share = Double(ProcessInfo.processInfo.physicalMemory) / Double(localRanks)
        if held > 0.8 * share {
            throw TrainingError.config(String(format: "train.batch_size %d gives %d clips per rank; with data.prefetch %d the loader "
                + "would hold %.1f GB of decoded clips, more than this rank's share of memory (%.1f GB of %.1f GB). Lower "
                + "train.batch_size or data.prefetch, or use more ranks", c.int("train.batch_size"), localBatch,
                c.int("data.prefetch"), held / 1e9, share / 1e9, Double(ProcessInfo.processInfo.physicalMemory) / 1e9))
        }
    }
}
