import AIMTensor
import Foundation

/// Where each member of one tar shard is, so a sample is read with one `pread` of its range
/// instead of a scan. Stored as text beside the shard (`train-000000.tar` →
/// `train-000000.idx`):
///
///     aim-tar-index 1
///     archive-size <bytes of the .tar>
///     <data offset> <size> <member name>      (one line per regular file, archive order)
///
/// The name is last so it may hold spaces; names with line breaks are refused.
public struct ShardIndex: Equatable, Sendable {
    public var archiveSize: Int64
    public var members: [TarMember]
    public init(archiveSize: Int64, members: [TarMember]) { self.archiveSize = archiveSize; self.members = members }

    static let magic = "aim-tar-index 1"

    /// The index text; the same members give the same bytes.
    public func text() -> String {
        var s = "\(Self.magic)\narchive-size \(archiveSize)\n"
        for m in members { s += "\(m.offset) \(m.size) \(m.name)\n" }
        return s
    }

    public static func parse(_ text: String, file: String) throws -> ShardIndex {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0] == magic else {
            throw TarError(path: file, message: "not a shard index (first line should be `\(magic)`)")
        }
        guard lines[1].hasPrefix("archive-size "), let size = Int64(lines[1].dropFirst("archive-size ".count)) else {
            throw TarError(path: file, message: "line 2 should be `archive-size <bytes>`")
        }
        var members: [TarMember] = []
        for (i, line) in lines.enumerated().dropFirst(2) where !line.isEmpty {
            let f = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3, let off = Int64(f[0]), let n = Int64(f[1]), off >= 0, n >= 0, !f[2].isEmpty else {
                throw TarError(path: file, message: "line \(i + 1) should be `<offset> <size> <name>`")
            }
            members.append(TarMember(name: String(f[2]), offset: off, size: n))
        }
        return ShardIndex(archiveSize: size, members: members)
    }

    /// The index file beside a shard: `x.tar` → `x.idx`.
    public static func path(forShard shard: String) -> String {
        (shard.hasSuffix(".tar") ? String(shard.dropLast(4)) : shard) + ".idx"
    }

    /// Builds the index of a shard by reading its headers.
    public static func build(shard: String) throws -> ShardIndex {
        try refuseCompressed(shard)
        let members = try Tar.members(ofArchive: shard)
        if let bad = members.first(where: { $0.name.contains("\n") || $0.name.contains("\r") }) {
            throw TarError(path: shard, message: "member name with a line break cannot be indexed: \(bad.name.debugDescription)")
        }
        return ShardIndex(archiveSize: try fileSize(shard), members: members)
    }

    /// Reasons this index does not describe `shard`, nil when it does: the shard's size, the
    /// member ranges inside it, and the tar headers right before the first and last members
    /// (valid checksums, the same sizes). Costs two 512-byte reads.
    public func mismatch(shard: String) -> String? {
        guard let actual = try? ShardIndex.fileSize(shard) else { return "cannot stat the shard" }
        if actual != archiveSize { return "the index is for a \(archiveSize)-byte archive, the shard has \(actual) bytes (truncated, or rewritten since it was indexed)" }
        var last: Int64 = 0
        for m in members {
            if m.offset < last || m.offset < Int64(Tar.block) || m.offset + m.size > archiveSize {
                return "member \(m.name) at \(m.offset)+\(m.size) lies outside the archive or out of order"
            }
            last = m.offset + m.size
        }
        let fd = open(shard, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return "cannot open: \(String(cString: strerror(errno)))" }
        DataFileOpens.add()
        defer { close(fd) }
        for m in [members.first, members.last].compactMap({ $0 }) {
            var h = [UInt8](repeating: 0, count: Tar.block)
            guard (try? preadAll(fd, &h, offset: m.offset - Int64(Tar.block), path: shard)) == Tar.block,
                  let size = Tar.headerSize(h) else {
                return "no tar header before member \(m.name) at byte \(m.offset)"
            }
            if m.size <= Tar.maxOctalSize && size != m.size {
                return "member \(m.name): the index says \(m.size) bytes, its tar header \(size)"
            }
        }
        return nil
    }

    static func fileSize(_ path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TarError(path: path, message: "missing shard: \(String(cString: strerror(errno)))") }
        return Int64(st.st_size)
    }

    /// Shards must be plain tar to be read in place: a gzip/zstd/xz/bzip2 stream has no byte
    /// ranges to seek to.
    static func refuseCompressed(_ shard: String) throws {
        guard let h = FileHandle(forReadingAtPath: shard) else { return }
        defer { try? h.close() }
        let b = [UInt8]((try? h.read(upToCount: 6)) ?? Data())
        let compressed: [(String, [UInt8])] = [("gzip", [0x1f, 0x8b]), ("zstd", [0x28, 0xb5, 0x2f, 0xfd]),
                                                ("xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a]), ("bzip2", [0x42, 0x5a, 0x68])]
        for (name, magic) in compressed where b.starts(with: magic) {
            throw TarError(path: shard, message: "\(name)-compressed: shards are read in place by byte range, so they must be plain .tar (videos do not compress further anyway)")
        }
    }

    /// The index of `shard`: the `.idx` beside it when present (an error when it does not match
    /// the shard), else one cached in `cacheDir` from an earlier open (rebuilt when stale),
    /// else built now by reading the headers and stored beside the shard, or in `cacheDir`
    /// when the shard's folder is not writable. `built` is true when the headers were read,
    /// `kept` when the index built was then stored somewhere for the next open.
    public static func load(shard: String, cacheDir: String?) throws -> (index: ShardIndex, built: Bool, kept: Bool) {
        _ = try fileSize(shard)
        let beside = path(forShard: shard)
        if FileManager.default.fileExists(atPath: beside) {
            guard let text = try? String(contentsOfFile: beside, encoding: .utf8) else {
                throw TarError(path: beside, message: "cannot read the shard index")
            }
            DataFileOpens.add()
            let idx = try parse(text, file: beside)
            if let why = idx.mismatch(shard: shard) {
                throw TarError(path: beside, message: "index does not match its shard \(shard): \(why); delete the .idx to rebuild it from the tar headers")
            }
            return (idx, false, true)
        }
        let cached = cacheDir.map { cachePath(shard: shard, cacheDir: $0) }
        if let c = cached, let text = try? String(contentsOfFile: c, encoding: .utf8),
           let idx = try? parse(text, file: c), idx.mismatch(shard: shard) == nil {
            return (idx, false, true)
        }
        let idx = try build(shard: shard)
        // Beside the shard first (every later reader finds it); the cache when that is read-only.
        if (try? FileOutput.write(idx.text(), to: beside)) != nil { return (idx, true, true) }
        guard let c = cached else { return (idx, true, false) }
        try? FileManager.default.createDirectory(atPath: (c as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return (idx, true, (try? FileOutput.write(idx.text(), to: c)) != nil)
    }

    /// `<cacheDir>/<shard file name>-<hash of its absolute path>.idx`.
    static func cachePath(shard: String, cacheDir: String) -> String {
        let abs = URL(fileURLWithPath: shard).standardizedFileURL.path
        let name = (abs as NSString).lastPathComponent
        return (cacheDir as NSString).appendingPathComponent("\(name)-\(String(fnv1a64(abs.utf8), radix: 16)).idx")
    }
}
