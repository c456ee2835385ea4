import Foundation

/// Where a video's bytes are when it is a member of a tar shard: the archive and the byte range
/// of the member's data.
public struct ArchiveRange: Equatable, Sendable {
    public var archive: String
    public var offset: Int64
    public var size: Int64
    public init(archive: String, offset: Int64, size: Int64) { self.archive = archive; self.offset = offset; self.size = size }
}

/// Files the data layer opened: each video file for a file list, each shard once for shards
/// (`ShardFiles` keeps them open). What `aim-data decode-bench --config` reports per epoch.
public enum DataFileOpens {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var count = 0
    public static var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    static func add() { lock.lock(); count += 1; lock.unlock() }
}

/// One read-only descriptor per shard, opened on first use and kept for the life of the process:
/// readers `pread` their ranges from it (no file position, so threads share it safely), and a
/// shard is opened once per rank instead of once per sample. Past `limit` open shards a reader
/// gets a descriptor of its own, closed with it.
public final class ShardFiles: @unchecked Sendable {
    public static let shared = ShardFiles()
    private let lock = NSLock()
    private var fds: [String: Int32] = [:]
    public let limit = 512

    /// A descriptor for `archive`, and whether the caller must close it.
    func descriptor(_ archive: String) throws -> (fd: Int32, owned: Bool) {
        lock.lock()
        if let fd = fds[archive] { lock.unlock(); return (fd, false) }
        let fd = open(archive, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            lock.unlock()
            throw e == ENOENT ? VideoError.missing(path: archive)
                : VideoError.undecodable(path: archive, reason: "cannot open the shard: \(String(cString: strerror(e)))")
        }
        DataFileOpens.add()
        let keep = fds.count < limit
        if keep { fds[archive] = fd }
        lock.unlock()
        return (fd, !keep)
    }
}
