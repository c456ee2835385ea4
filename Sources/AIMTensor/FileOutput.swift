import Foundation

// Writes that report failure instead of trapping. Foundation's non-throwing
// `FileHandle.write(_:)` ends the process with a crash dump on ENOSPC or EPIPE, so nothing in
// the project uses it: the console drops what it cannot write, files throw `FileWriteError`.

/// Standard output and error. A write that fails (closed pipe, full disk behind a redirect) is
/// dropped: losing a log line must never end a run.
public enum Console {
    /// One line to standard error (a newline is added).
    public static func error(_ line: String) { errorRaw(line + "\n") }
    /// Text to standard error as it is (progress lines redrawn with \r); also to the run log.
    public static func errorRaw(_ text: String) {
        writeAll(STDERR_FILENO, text)
        RunLog.copy(text)
    }
    /// One line to standard output.
    public static func out(_ line: String) { writeAll(STDOUT_FILENO, line + "\n") }

    private static func writeAll(_ fd: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { FileOutput.writeAll(fd, $0) }
    }

    /// Ends the process with one line and `status`, for failures of the environment (memory, MPI)
    /// deep in code that cannot throw: a clear message and a status, never a crash dump.
    public static func exitWithError(_ line: String, status: Int32 = 1) -> Never {
        error("error: " + line)
        exit(status)
    }

    /// A closed pipe then fails a write with EPIPE instead of killing the process (`aim-eval … | head`).
    public static func ignoreBrokenPipe() { signal(SIGPIPE, SIG_IGN) }
}

/// A write to a file that failed: the path, the system's reason and the room left there.
public struct FileWriteError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public let freeBytes: Int64?

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
        self.freeBytes = FileSpace.freeBytes(near: path)
    }

    public init(path: String, errno code: Int32) { self.init(path: path, reason: String(cString: strerror(code))) }

    public var description: String {
        "\(path): write failed: \(reason)" + (freeBytes.map { " (\(FileSpace.describe($0)) free on that filesystem)" } ?? "")
    }
}

/// Free space and writability of the filesystem holding a path.
public enum FileSpace {
    /// Bytes an unprivileged writer may still use on the filesystem of `path` (or of its nearest
    /// existing parent), nil when it cannot be read.
    public static func freeBytes(near path: String) -> Int64? {
        var p = path.isEmpty ? "." : path
        while !FileManager.default.fileExists(atPath: p) {
            let parent = (p as NSString).deletingLastPathComponent
            if parent.isEmpty || parent == p { p = "."; break }
            p = parent
        }
        var s = statvfs()
        guard statvfs(p, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// "1.2 GB", "340 MB", "12 KB", "512 B".
    public static func describe(_ bytes: Int64) -> String {
        let b = Double(bytes)
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.0f MB", b / 1e6) }
        if b >= 1e3 { return String(format: "%.0f KB", b / 1e3) }
        return "\(bytes) B"
    }
}

/// Whole files (reports, lists, JSON) written atomically: a temporary file renamed over the
/// target, so a failed write leaves the old file or none, and throws `FileWriteError`.
public enum FileOutput {
    public static func write(_ text: String, to path: String) throws { try write(Array(text.utf8), to: path) }

    public static func write(_ data: Data, to path: String) throws { try write([UInt8](data), to: path) }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try checkReplaceable(path)
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw FileWriteError(path: path, errno: errno) }
        var failure = bytes.withUnsafeBytes { writeAll(fd, $0).failure }
        if failure == nil && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == nil && rename(tmp, path) != 0 { failure = errno }
        if let code = failure {
            unlink(tmp)
            throw FileWriteError(path: path, errno: code)
        }
    }

    /// Refuses a target that exists and is not a regular file: the temporary file renamed over it
    /// would replace a device node (an export to /dev/full, run as root, turned the device into a
    /// file and said it wrote), a FIFO or a socket; a directory fails with a less clear reason.
    public static func checkReplaceable(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG else { return }
        let kind = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file (a device, FIFO or socket)"
        throw FileWriteError(path: path, reason: "\(kind): give the path of a file to write")
    }

    /// Whether `path` exists and is not a folder: an output folder there cannot be made (Foundation
    /// then says only "error 512"), so the tools name it first.
    /// Why `path` could not be made a folder, in the system's words: Foundation's own error reads
    /// "NSCocoaErrorDomain error 512" on Linux. A file in the way is named; otherwise the first
    /// missing folder is made again to learn the errno (and removed if it now succeeds).
    public static func whyFolderCannotBeMade(_ path: String, _ error: Error) -> String {
        var existing = path
        while !existing.isEmpty && existing != "/" && !FileManager.default.fileExists(atPath: existing) {
            existing = (existing as NSString).deletingLastPathComponent
        }
        if isFileNotFolder(existing) { return "\(existing) is a file, not a folder" }
        let rest = String(path.dropFirst(existing.count)).split(separator: "/")
        guard let first = rest.first else { return error.localizedDescription }
        let missing = (existing as NSString).appendingPathComponent(String(first))
        if mkdir(missing, 0o755) == 0 { rmdir(missing); return error.localizedDescription }
        return String(cString: strerror(errno))
    }

    public static func isFileNotFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    /// `write` until every byte is out or the system refuses: the bytes written and the errno
    /// that stopped it (ENOSPC for a write of 0 bytes), nil when all went out.
    public static func writeAll(_ fd: Int32, _ buf: UnsafeRawBufferPointer) -> (written: Int, failure: Int32?) {
        guard let base = buf.baseAddress else { return (0, nil) }
        var done = 0
        while done < buf.count {
            let n = Glibc.write(fd, base + done, buf.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return (done, n < 0 ? errno : ENOSPC) }
            done += n
        }
        return (done, nil)
    }
}

/// A file opened for appending whole records (metrics.jsonl). Each `append` is one `write` loop;
/// a failure throws and leaves the file as it was before that record where the system allows
/// (a partial record is cut back off).
public final class AppendFile {
    public let path: String
    private var fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd < 0 { throw FileWriteError(path: path, reason: "cannot open for appending: " + String(cString: strerror(errno))) }
    }

    public func append(_ bytes: [UInt8]) throws {
        let start = lseek(fd, 0, SEEK_END)
        let (written, failure) = bytes.withUnsafeBytes { FileOutput.writeAll(fd, $0) }
        if let code = failure {
            // A half record would make the next line unreadable JSON: cut it off.
            if start >= 0 && written > 0 { _ = ftruncate(fd, start) }
            throw FileWriteError(path: path, errno: code)
        }
    }

    deinit { close(fd) }
}
