import AIMTensor
import Foundation

/// `metrics.jsonl` (one JSON object per logged step and per evaluation) and the progress line.
/// Only the coordinator writes.
public final class MetricsLog {
    private var file: AppendFile?
    private let isTerminal: Bool
    private var lineOpen = false
    /// Records lost to failed writes since the last one that went through.
    private var lost = LostRecords()
    public var failedRecords: Int { lost.count }

    public init(path: URL?) throws {
        file = try path.map { try AppendFile(path: $0.path) }
        isTerminal = isatty(STDERR_FILENO) != 0
    }

    /// Appends one record. A failed write (full disk) says so once per run of failures, and
    /// again when records go through: the run goes on without them.
    public func record(_ fields: [String: Any]) {
        guard let file else { return }
        guard let data = try? JSONSerialization.data(withJSONObject: fields.mapValues(jsonSafe), options: [.sortedKeys]) else { return }
        lost.append(to: file.path, what: "metrics record", tag: "metrics", message: message) {
            try file.append([UInt8](data) + [UInt8(ascii: "\n")])
        }
    }

    /// After a resume at `step`: records of later steps (logged by a run that died after its last
    /// checkpoint, and logged again now) go, as the TensorBoard events' do, so the file holds
    /// each step once; so do lines a crash cut short. Rewritten whole and renamed into place.
    /// Returns how many records went.
    @discardableResult
    public func keepRecords(upTo step: Int) throws -> Int {
        guard let path = file?.path, let data = FileManager.default.contents(atPath: path) else { return 0 }
        var kept: [UInt8] = [], dropped = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            if let record, (record["step"] as? Int).map({ $0 <= step }) ?? true {
                kept += line + [UInt8(ascii: "\n")]
            } else {
                dropped += 1
            }
        }
        guard dropped > 0 else { return 0 }
        try FileOutput.write(kept, to: path)
        file = try AppendFile(path: path)
        return dropped
    }

    /// One progress line: redrawn in place on a terminal, a plain line in a log file.
    public func progress(_ text: String) {
        if isTerminal {
            Console.errorRaw("\r\u{1B}[K" + text)
            lineOpen = true
        } else {
            Console.error(text)
        }
    }

    /// A message on its own line (ends an open progress line first).
    public func message(_ text: String) {
        if lineOpen { Console.errorRaw("\n"); lineOpen = false }
        Console.error(text)
    }

    private func jsonSafe(_ v: Any) -> Any {
        if let d = v as? Double, !d.isFinite { return String(d) }
        if let f = v as? Float, !f.isFinite { return String(f) }
        return v
    }
}

/// "1h02m03s" style durations for the ETA.
func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm%02ds", t / 3600, t % 3600 / 60, t % 60)
        : t >= 60 ? String(format: "%dm%02ds", t / 60, t % 60) : "\(t)s"
}
