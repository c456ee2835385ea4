import Foundation

/// A copy of what this process writes to standard error, in a file: aim-train's
/// `<work dir>/<start time>.log`, kept beside the checkpoints as mmaction2 keeps its log. What is
/// written before the file is known (the CPU and GEMM lines come before the work dir) is held and
/// written first; progress lines redrawn in place on a terminal become one line each. A failed
/// write ends the copy with one message; the run goes on (the console still has everything).
public enum RunLog {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var holding = false
    nonisolated(unsafe) private static var held: [UInt8] = []
    nonisolated(unsafe) private static var file: AppendFile?
    nonisolated(unsafe) private static var atLineStart = true
    /// Held text beyond this is dropped (a run that never reaches its work dir).
    static let holdLimit = 1 << 20

    /// Keeps what standard error gets from now on, until `attach` or `stop`.
    public static func hold() {
        lock.lock(); defer { lock.unlock() }
        holding = true
    }

    /// Starts the file with `header` lines and what was held; later output is appended as it comes.
    public static func attach(path: String, header: [String]) throws {
        let f = try AppendFile(path: path)
        lock.lock(); defer { lock.unlock() }
        try f.append(Array((header.map { $0 + "\n" }.joined()).utf8) + held)
        held = []; holding = false; file = f
    }

    /// Ends the copy (the file, or what was held), closing an open progress line.
    public static func stop() {
        lock.lock(); defer { lock.unlock() }
        if let file, !atLineStart { try? file.append([UInt8(ascii: "\n")]) }
        file = nil; holding = false; held = []; atLineStart = true
    }

    /// Called by `Console` with each piece of text it writes to standard error.
    static func copy(_ text: String) {
        lock.lock()
        guard holding || file != nil else { lock.unlock(); return }
        let bytes = plain(text)
        var failure: Error?
        if let file {
            do { try file.append(bytes) } catch { failure = error; self.file = nil }
        } else if held.count + bytes.count <= holdLimit {
            held += bytes
        }
        lock.unlock()
        if let failure { Console.error("warning: the run log is not written from here on: \(failure)") }
    }

    /// A terminal redraw ("\r", erase line, text) as text on a line of its own.
    private static func plain(_ text: String) -> [UInt8] {
        var bytes = Array(text.utf8)
        let redraw: [UInt8] = [0x0D, 0x1B, 0x5B, 0x4B]   // "\r\u{1B}[K"
        if bytes.starts(with: redraw) {
            bytes.removeFirst(redraw.count)
            if !atLineStart { bytes.insert(UInt8(ascii: "\n"), at: 0) }
        }
        if let last = bytes.last { atLineStart = last == UInt8(ascii: "\n") }
        return bytes
    }
}
