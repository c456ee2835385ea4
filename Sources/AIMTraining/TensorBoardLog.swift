import AIMTensor
import Foundation

/// The run's TensorBoard scalars, `WORK_DIR/tensorboard/events.out.tfevents.<seconds>.<host>`,
/// written by rank 0 beside each `metrics.jsonl` record: tags `train/<key>` and `val/<key>` with
/// the record's own key names. Each record is one `write` of whole TFRecords, so a crash loses at
/// most the interval being logged.
///
/// Resuming: TensorBoard reads every event file of the folder, so events of steps after the step a
/// run continues from (written by a run that died after its last checkpoint) would show twice and
/// out of order. Opening therefore rewrites each older file that holds such steps (or a damaged
/// tail) keeping only steps ≤ that step, atomically (a temporary file renamed over it; the
/// temporary name has no "tfevents" in it, so TensorBoard never reads a half-written copy). A run
/// started from step 0 in a used work dir replaces the old run's events, as it does its checkpoints.
public final class TensorBoardLog {
    public static let directoryName = "tensorboard"

    /// The numeric keys of a metrics record turned into scalars, by record mode.
    public static let scalarKeys: [String: [String]] = [
        "train": ["loss", "top1", "lr", "clips_per_s", "time", "data_time"],
        "val": ["top1", "top5", "mean_class_accuracy"],
    ]

    public let directory: URL
    public let file: URL
    private let output: AppendFile
    private let message: (String) -> Void
    /// Records lost to failed writes since the last one that went through.
    private var lost = LostRecords()
    public var failedRecords: Int { lost.count }

    /// Opens the event file for a run that continues after `step` (0 for a fresh run). Throws
    /// when the folder or file cannot be made, or an old file cannot be rewritten: the run then
    /// writes no events rather than duplicated ones.
    public init(workDir: URL, continuingAfter step: Int, now: Date = Date(), message: @escaping (String) -> Void) throws {
        directory = workDir.appendingPathComponent(Self.directoryName)
        self.message = message
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: directory.path, reason: "cannot create the folder: \(FileOutput.whyFolderCannotBeMade(directory.path, error))")
        }
        Self.removeLeftoverTemporaries(in: directory)
        for old in TensorBoardEventFile.files(in: directory) { try Self.keepSteps(upTo: step, in: old, message: message) }

        file = directory.appendingPathComponent(TensorBoardEventFile.name(unixSeconds: Int(now.timeIntervalSince1970), hostname: Self.hostname()))
        // A resume within the same second finds its own name taken by a file just trimmed to
        // steps ≤ `step`: appending to it keeps the order.
        let exists = FileManager.default.fileExists(atPath: file.path)
        output = try AppendFile(path: file.path)
        if !exists {
            try output.append(TFRecord.frame(TensorBoardEvent(wallTime: now.timeIntervalSince1970,
                                                              fileVersion: TensorBoardEvent.fileVersion2).encoded()))
        }
    }

    /// Appends the scalars of one `metrics.jsonl` record (`mode` train or val). A failed write
    /// (full disk) is reported once per run of failures and again when records go through; the
    /// run goes on without them, as with metrics.jsonl.
    public func record(_ fields: [String: Any], now: Date = Date()) {
        guard let event = Self.event(for: fields, wallTime: now.timeIntervalSince1970) else { return }
        lost.append(to: file.path, what: "TensorBoard event", tag: "tensorboard", message: message) {
            try output.append(TFRecord.frame(event.encoded()))
        }
    }

    /// The event of a metrics record: its step, and one scalar per known numeric key.
    public static func event(for fields: [String: Any], wallTime: Double) -> TensorBoardEvent? {
        guard let mode = fields["mode"] as? String, let keys = scalarKeys[mode], let step = fields["step"] as? Int else { return nil }
        let scalars = keys.compactMap { key -> TensorBoardScalar? in
            guard let v = number(fields[key]) else { return nil }
            return TensorBoardScalar("\(mode)/\(key)", Float(v))
        }
        return scalars.isEmpty ? nil : TensorBoardEvent(wallTime: wallTime, step: Int64(step), scalars: scalars)
    }

    static func number(_ v: Any?) -> Double? {
        switch v {
        case let d as Double: return d
        case let f as Float: return Double(f)
        case let i as Int: return Double(i)
        default: return nil
        }
    }

    /// Leaves `url` with only the events of steps ≤ `step` (and its file_version header); a file
    /// left with no scalar event is removed. Untouched when nothing has to go.
    static func keepSteps(upTo step: Int, in url: URL, message: (String) -> Void) throws {
        let (events, damage) = try TensorBoardEventFile.readPrefix(url)
        let kept = events.filter { $0.fileVersion != nil || $0.step <= Int64(step) }
        guard kept.count < events.count || damage != nil else { return }
        let dropped = events.count - kept.count
        let why = (dropped > 0 ? "\(dropped) event(s) after step \(step)" : "")
            + (damage.map { (dropped > 0 ? " and " : "") + "a damaged tail (\($0.reason))" } ?? "")
        if !kept.contains(where: { !$0.scalars.isEmpty }) {
            guard unlink(url.path) == 0 else { throw FileWriteError(path: url.path, reason: "cannot remove: " + String(cString: strerror(errno))) }
            message("tensorboard: removed \(url.lastPathComponent): \(why), nothing before")
            return
        }
        // FileOutput.write renames its own temporary into `tmp`; `tmp` is renamed over the file.
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".rewrite-\(getpid())")
        try FileOutput.write(TensorBoardEventFile.encode(kept), to: tmp.path)
        guard rename(tmp.path, url.path) == 0 else {
            let e = errno
            unlink(tmp.path)
            throw FileWriteError(path: url.path, errno: e)
        }
        message("tensorboard: \(url.lastPathComponent): removed \(why) (the run continues from step \(step))")
    }

    /// Temporaries of a rewrite killed midway (one run per work dir, so none is in use).
    static func removeLeftoverTemporaries(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for n in names where n.hasPrefix(".rewrite-") { unlink(directory.appendingPathComponent(n).path) }
    }

    /// This machine's name, as TensorFlow puts it in event file names.
    static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let name = String(cString: buf).filter { $0 != "/" }
        return name.isEmpty ? "localhost" : name
    }
}
