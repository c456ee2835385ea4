import AIMConfig
import AIMTensor
import Foundation

/// Checks made before the first step, so a run that cannot keep its work is refused up front
/// instead of failing after hours: the work dir is writable and has room, a batch fits in memory.
enum WorkDirCheck {
    /// Local time as mmaction2 names its logs (`20231201_154500`): run logs and set-aside runs.
    static func runTimeStamp(_ date: Date = Date()) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd_HHmmss"
        return f.string(from: date)
    }

    /// Where `setAsideEarlierRun` moves an earlier run's files, one folder per new run.
    static let earlierRunsFolder = "earlier_runs"

    /// Whether resuming from `choice` (the checkpoint `--resume` settled on; nil or "" for none)
    /// continues the run in `dir`: a file of its own, not one from another folder.
    static func continues(_ dir: URL, from choice: String?) -> Bool {
        guard let choice, !choice.isEmpty else { return false }
        let d = dir.standardizedFileURL.resolvingSymlinksInPath().path
        let folder = URL(fileURLWithPath: choice).standardizedFileURL.resolvingSymlinksInPath().deletingLastPathComponent().path
        return folder == d || folder == d + "/checkpoints"
    }

    /// A run that does not continue the one in its work dir (`continues`) finds that run's files
    /// moved to `earlier_runs/<time>/`, whole, and starts in a clean dir. Why: written among
    /// them, its step files would sit beside the old ones (pruning by step number would delete
    /// its own first, `--resume auto` would pick the old run's higher steps), `best` would stay
    /// the old run's, and metrics.jsonl and the events would join two runs into one curve;
    /// deleting them would lose work. A run that died before its first checkpoint counts too.
    /// Returns the folder, nil when the dir holds no run.
    static func setAsideEarlierRun(_ dir: URL) throws -> URL? {
        let fm = FileManager.default
        // The run's own files; the lock (this run's), shard indexes, earlier runs and the user's
        // other files stay.
        let names = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { name in
            ["checkpoints", "latest.safetensors", "best.safetensors", "metrics.jsonl", TensorBoardLog.directoryName].contains(name)
                || isRunRecord(dir.appendingPathComponent(name))
        }
        guard !names.isEmpty else { return nil }
        let dest = newEarlierRunFolder(in: dir)
        do {
            try fm.createDirectory(at: dest, withIntermediateDirectories: true)
            for name in names { try fm.moveItem(at: dir.appendingPathComponent(name), to: dest.appendingPathComponent(name)) }
        } catch {
            throw TrainingError.storage("work dir \(dir.path) holds an earlier run, which could not be moved to \(dest.path) (\(error.localizedDescription)); "
                + "continue it with --resume auto, or start this run in another --work-dir")
        }
        return dest
    }

    /// Resuming the work dir's run at `step` from a checkpoint of its own (`--resume` naming an
    /// earlier step, say after a divergence) replaces whatever that run wrote after the step: its
    /// later step files, and `latest`/`best` when they are later, move to `earlier_runs/<time>/`.
    /// Why: left in place, `--resume auto` after a stop would pick the abandoned steps (the
    /// highest number wins) and `best` would name weights this run's history never had. Returns
    /// the folder, what moved, and what became of `best` when it moved (pointed again at
    /// `bestStep`, the resumed checkpoint's own best, if that step file is kept; `bestGone` when
    /// it is not, and the run's best then starts over); nil when nothing is later.
    static func setAsideLaterCheckpoints(_ store: CheckpointStore, after step: Int, bestStep: Int, resuming chosen: String)
        throws -> (folder: URL, what: String, best: String?, bestGone: Bool)? {
        let fm = FileManager.default
        // Never the file being resumed, under whatever name (latest and best are hard links to step files).
        func identity(_ path: String) -> [UInt64]? {
            var st = stat()
            return stat(path, &st) == 0 ? [UInt64(st.st_dev), UInt64(st.st_ino)] : nil
        }
        let resumed = identity(chosen)
        func recordedStep(_ url: URL) -> Int? { Int((try? SafetensorsFile(path: url.path))?.metadata["step"] ?? "") }
        let later = store.stepFiles().filter {
            identity($0.path) != resumed && (recordedStep($0) ?? Int($0.deletingPathExtension().lastPathComponent.dropFirst("step_".count)) ?? -1) > step
        }
        // One that cannot be read is left for the checks that name it (a later checkpoint replaces latest).
        let links = [store.latest, store.best].filter { identity($0.path) != resumed && (recordedStep($0) ?? Int.min) > step }
        guard !later.isEmpty || !links.isEmpty else { return nil }
        let dest = newEarlierRunFolder(in: store.workDir)
        do {
            if !later.isEmpty { try fm.createDirectory(at: dest.appendingPathComponent("checkpoints"), withIntermediateDirectories: true) }
            try fm.createDirectory(at: dest, withIntermediateDirectories: true)
            for file in later { try fm.moveItem(at: file, to: dest.appendingPathComponent("checkpoints").appendingPathComponent(file.lastPathComponent)) }
            for file in links { try fm.moveItem(at: file, to: dest.appendingPathComponent(file.lastPathComponent)) }
        } catch {
            throw TrainingError.storage("resuming at step \(step): the checkpoints written after it in \(store.workDir.path) could not be moved to "
                + "\(dest.path) (\(error.localizedDescription)); move them away by hand, or resume in another --work-dir")
        }
        let what = (later.isEmpty ? [] : ["\(later.count) step file\(later.count == 1 ? "" : "s")"])
            + links.map { $0.deletingPathExtension().lastPathComponent }
        var best: String?, bestGone = false
        if links.contains(store.best) {
            if (0...step).contains(bestStep) && fm.fileExists(atPath: store.path(step: bestStep).path) {
                try store.restoreBest(step: bestStep)
                best = "; best is this run's own again (step \(bestStep))"
            } else {
                bestGone = true
                best = (bestStep >= 0 ? "; this run's own best (step \(bestStep)) was pruned by checkpoint.keep_last" : "; the resumed checkpoint does not name its best")
                    + ", so the next validation makes a new best.safetensors"
            }
        }
        return (dest, what.joined(separator: ", "), best, bestGone)
    }

    /// `earlier_runs/<time>/` of `dir`, not yet there (`_2`, `_3` … for runs set aside in one second).
    static func newEarlierRunFolder(in dir: URL) -> URL {
        let stamp = runTimeStamp()
        var dest = dir.appendingPathComponent(earlierRunsFolder).appendingPathComponent(stamp)
        var n = 2
        while FileManager.default.fileExists(atPath: dest.path) { dest = dest.deletingLastPathComponent().appendingPathComponent(stamp + "_\(n)"); n += 1 }
        return dest
    }

    /// A `<config>.yaml` or `<time>.log` a run wrote (`startRunLog`), known by its first line.
    static func isRunRecord(_ file: URL) -> Bool {
        let name = file.lastPathComponent
        guard !name.hasPrefix("."), name.hasSuffix(".yaml") || name.hasSuffix(".log"),
              let handle = try? FileHandle(forReadingFrom: file) else { return false }
        defer { try? handle.close() }
        let start = String(decoding: (try? handle.read(upToCount: 160)) ?? Data(), as: UTF8.self)
        return start.hasPrefix(name.hasSuffix(".yaml") ? "# " + runConfigHeader : runLogHeader)
    }

    /// First lines of the records a run writes into its work dir.
    static let runConfigHeader = "Every key of this run (defaults and --set overrides included), written by aim-train."
    static let runLogHeader = "aim-train run log, "

    /// Creates the work dir and proves it writable with a probe file.
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
