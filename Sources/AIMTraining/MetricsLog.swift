import Foundation

/// `metrics.jsonl` (one JSON object per logged step and per evaluation) and the progress line.
/// Only the coordinator writes.
public final class MetricsLog {
    private let handle: FileHandle?
    private let isTerminal: Bool
    private var lineOpen = false

    public init(path: URL?) throws {
        if let path {
            if !FileManager.default.fileExists(atPath: path.path) {
                _ = FileManager.default.createFile(atPath: path.path, contents: nil)
            }
            handle = try FileHandle(forWritingTo: path)
            handle?.seekToEndOfFile()
        } else { handle = nil }
        isTerminal = isatty(STDERR_FILENO) != 0
    }

    public func record(_ fields: [String: Any]) {
        guard let handle else { return }
        guard let data = try? JSONSerialization.data(withJSONObject: fields.mapValues(jsonSafe), options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }

    /// One progress line: redrawn in place on a terminal, a plain line in a log file.
    public func progress(_ text: String) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
            lineOpen = true
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    /// A message on its own line (ends an open progress line first).
    public func message(_ text: String) {
        if lineOpen { FileHandle.standardError.write(Data("\n".utf8)); lineOpen = false }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private func jsonSafe(_ v: Any) -> Any {
        if let d = v as? Double, !d.isFinite { return String(d) }
        if let f = v as? Float, !f.isFinite { return String(f) }
        return v
    }

    deinit { try? handle?.close() }
}

/// "1h02m03s" style durations for the ETA.
func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm%02ds", t / 3600, t % 3600 / 60, t % 60)
        : t >= 60 ? String(format: "%dm%02ds", t / 60, t % 60) : "\(t)s"
}
