import AIMTensor
import Foundation

/// One regular file inside a tar archive: its name and where its bytes are (`offset` is the
/// first data byte, after its header blocks).
public struct TarMember: Equatable, Sendable {
    public var name: String
    public var offset: Int64
    public var size: Int64
    public init(name: String, offset: Int64, size: Int64) { self.name = name; self.offset = offset; self.size = size }
}

/// A tar archive that cannot be read or written, naming the file and the byte offset.
public struct TarError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// POSIX tar as Python's `tarfile` writes it (its default `PAX_FORMAT`): 512-byte ustar headers,
/// a pax extended header (`././@PaxHeader`, type `x`) before a member whose name does not fit
/// the 100-byte field or is not ASCII, data padded to 512 bytes, two zero blocks at the end and
/// the archive padded to a whole 10240-byte record.
public enum Tar {
    public static let block = 512
    public static let record = 10240
    /// Largest size the 11-digit octal field holds; larger sizes go in a pax `size` record.
    static let maxOctalSize: Int64 = 0o77777777777

    // MARK: writing

    /// The header blocks of one regular file (pax header first when needed). Everything that
    /// varies between machines (mtime, owner, permissions) is fixed, so the same input gives
    /// the same bytes.
    public static func headerBlocks(name: String, size: Int64) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        var pax: [(String, String)] = []
        if nameBytes.count > 100 || nameBytes.contains(where: { $0 >= 0x80 }) { pax.append(("path", name)) }
        if size > maxOctalSize { pax.append(("size", String(size))) }
        var out: [UInt8] = []
        if !pax.isEmpty {
            let body = paxRecords(pax)
            // Python's tarfile writes its pax header with mode 0 (and the other fields zero).
            out += ustarHeader(name: Array("././@PaxHeader".utf8), size: Int64(body.count), type: UInt8(ascii: "x"), mode: 0)
            out += body + [UInt8](repeating: 0, count: padding(Int64(body.count)))
        }
        // Python's tarfile keeps the first 100 bytes of the name, non-ASCII characters as "?", in
        // the ustar field (the pax record has the real name).
        let ascii = name.unicodeScalars.flatMap { $0.isASCII ? Array(String($0).utf8) : [UInt8(ascii: "?")] }
        out += ustarHeader(name: Array(ascii.prefix(100)), size: size > maxOctalSize ? 0 : size, type: UInt8(ascii: "0"))
        return out
    }

    /// Zero bytes that round `size` up to a whole block.
    public static func padding(_ size: Int64) -> Int { Int((Int64(block) - size % Int64(block)) % Int64(block)) }

    /// `"%d path=value\n"`, where the leading length counts the whole record including itself.
    static func paxRecords(_ records: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in records {
            let rest = " \(k)=\(v)\n".utf8.count
            var n = rest + 1
            while String(n).utf8.count + rest != n { n = String(n).utf8.count + rest }
            out += Array("\(n) \(k)=\(v)\n".utf8)
        }
        return out
    }

    static func ustarHeader(name: [UInt8], size: Int64, type: UInt8, mode: Int64 = 0o644) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ bytes: [UInt8], at: Int) { for (i, b) in bytes.enumerated() { h[at + i] = b } }
        func octal(_ v: Int64, width: Int) -> [UInt8] {  // width-1 digits and a NUL
            let s = String(v, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - s.count)) + s).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(mode, width: 8), at: 100)
        put(octal(0, width: 8), at: 108)       // uid
        put(octal(0, width: 8), at: 116)       // gid
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)      // mtime: fixed, for identical bytes on every run
        h[156] = type
        put(Array("ustar\u{0}00".utf8), at: 257)
        // devmajor/devminor stay NUL for regular files, as Python's tarfile leaves them.
        put(Array(repeating: UInt8(ascii: " "), count: 8), at: 148)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(octal(Int64(sum), width: 7) + [UInt8(ascii: " ")], at: 148)
        return h
    }

    // MARK: reading

    static func parseOctal(_ b: ArraySlice<UInt8>) -> Int64? {
        // GNU base-256: the high bit of the first byte set, big-endian binary after it.
        if let f = b.first, f & 0x80 != 0 {
            var v: Int64 = Int64(f & 0x7f)
            for x in b.dropFirst() { v = (v << 8) | Int64(x) }
            return v
        }
        var v: Int64 = 0, seen = false
        for x in b {
            if x == 0 || x == UInt8(ascii: " ") { if seen { break } else { continue } }
            guard x >= UInt8(ascii: "0") && x <= UInt8(ascii: "7") else { return nil }
            v = v * 8 + Int64(x - UInt8(ascii: "0")); seen = true
        }
        return v
    }

    static func cString(_ b: ArraySlice<UInt8>) -> [UInt8] { Array(b.prefix(while: { $0 != 0 })) }

    /// True when the block's checksum field matches its bytes (unsigned sum, as POSIX says, or
    /// the signed sum some old writers used).
    static func checksumOK(_ h: [UInt8]) -> Bool {
        guard let stored = parseOctal(h[148..<156]) else { return false }
        var unsigned = 0, signed = 0
        for (i, b) in h.enumerated() {
            let x = (148..<156).contains(i) ? UInt8(ascii: " ") : b
            unsigned += Int(x); signed += Int(Int8(bitPattern: x))
        }
        return stored == Int64(unsigned) || stored == Int64(signed)
    }

    /// The size field of a header block when it is a valid header (checksum right), else nil.
    public static func headerSize(_ h: [UInt8]) -> Int64? {
        guard h.count == block, checksumOK(h) else { return nil }
        return parseOctal(h[124..<136])
    }

    /// Every regular file of the archive at `path`, in archive order, by reading only the
    /// headers (data blocks are skipped with seeks). Understands ustar (with the name prefix
    /// field), pax extended headers (`path`, `size`; global headers ignored), GNU long names
    /// (`././@LongLink`, type `L`) and old v7 headers. Throws `TarError` for a header that is
    /// not one, or an archive cut off inside a member.
    public static func members(ofArchive path: String) throws -> [TarMember] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw TarError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TarError(path: path, message: "cannot stat") }
        let fileSize = Int64(st.st_size)
        var out: [TarMember] = []
        var pos: Int64 = 0
        var longName: String? = nil
        var paxPath: String? = nil, paxSize: Int64? = nil
        var header = [UInt8](repeating: 0, count: block)
        func readExactly(_ n: Int, at offset: Int64) throws -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: n)
            let got = try preadAll(fd, &buf, offset: offset, path: path)
            if got < n { throw TarError(path: path, message: "truncated: the archive ends at byte \(offset + Int64(got)) inside a member that needs \(n) bytes from \(offset)") }
            return buf
        }
        while true {
            let got = try preadAll(fd, &header, offset: pos, path: path)
            if got == 0 {
                // Every tar writer (GNU tar, Python's tarfile, webdataset) ends with zero blocks: a
                // file that ends right after a member is a copy cut short at a member's boundary,
                // whose later samples would be left out without a word (a pattern without indexes).
                if pos == 0 { break }
                throw TarError(path: path, message: "truncated: the archive ends at byte \(pos), right after a member, without the zero blocks "
                    + "every tar ends with (a copy cut short? later samples would be missing)")
            }
            if got < block { throw TarError(path: path, message: "truncated: \(got) bytes of a 512-byte header at byte \(pos)") }
            if header.allSatisfy({ $0 == 0 }) { break }  // end of archive
            guard checksumOK(header), let fieldSize = parseOctal(header[124..<136]) else {
                throw TarError(path: path, message: "no valid tar header at byte \(pos) (bad checksum): not a tar file, or the index/offsets are off")
            }
            let type = header[156]
            let size = paxSize ?? fieldSize
            let dataStart = pos + Int64(block)
            if dataStart + size > fileSize {
                throw TarError(path: path, message: "truncated: member at byte \(pos) needs \(size) bytes, the file ends \(fileSize - dataStart) bytes after its header")
            }
            switch type {
            case UInt8(ascii: "x"):
                let body = try readExactly(Int(size), at: dataStart)
                for (k, v) in try parsePax(body, path: path, at: pos) {
                    if k == "path" { paxPath = v }
                    if k == "size" {
                        guard let s = Int64(v), s >= 0 else { throw TarError(path: path, message: "pax size `\(v)` at byte \(pos)") }
                        paxSize = s
                    }
                }
            case UInt8(ascii: "g"):
                break  // global pax header: nothing in it changes names or sizes we use
            case UInt8(ascii: "L"):
                let body = try readExactly(Int(size), at: dataStart)
                longName = String(decoding: cString(body[...]), as: UTF8.self)
            case UInt8(ascii: "K"):
                break  // GNU long link name: links are not members we read
            default:
                let isFile = type == UInt8(ascii: "0") || type == 0 || type == UInt8(ascii: "7")
                if isFile {
                    var name: String
                    if let p = paxPath { name = p } else if let l = longName { name = l } else {
                        let base = cString(header[0..<100])
                        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
                        let prefix = isUstar ? cString(header[345..<500]) : []
                        name = String(decoding: prefix.isEmpty ? base : prefix + [UInt8(ascii: "/")] + base, as: UTF8.self)
                    }
                    if name.hasPrefix("./") { name.removeFirst(2) }
                    out.append(TarMember(name: name, offset: dataStart, size: size))
                }
                paxPath = nil; paxSize = nil; longName = nil
            }
            pos = dataStart + size + Int64(padding(size))
        }
        return out
    }

    static func parsePax(_ body: [UInt8], path: String, at: Int64) throws -> [(String, String)] {
        var out: [(String, String)] = []
        var i = 0
        while i < body.count && body[i] != 0 {
            var j = i
            while j < body.count && body[j] != UInt8(ascii: " ") { j += 1 }
            guard j < body.count, let n = Int(String(decoding: body[i..<j], as: UTF8.self)), n > 0, i + n <= body.count else {
                throw TarError(path: path, message: "malformed pax header at byte \(at)")
            }
            let rec = body[(j + 1)..<(i + n - 1)]  // without the trailing newline
            if let eq = rec.firstIndex(of: UInt8(ascii: "=")) {
                out.append((String(decoding: rec[rec.startIndex..<eq], as: UTF8.self),
                            String(decoding: rec[(eq + 1)...], as: UTF8.self)))
            }
            i += n
        }
        return out
    }
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
func preadAll(_ fd: Int32, _ buf: inout [UInt8], offset: Int64, path: String) throws -> Int {
    var done = 0
    let n = buf.count
    try buf.withUnsafeMutableBytes { p in
        while done < n {
            let r = pread(fd, p.baseAddress! + done, n - done, off_t(offset + Int64(done)))
            if r < 0 && errno == EINTR { continue }
            if r < 0 { throw TarError(path: path, message: "read failed at byte \(offset + Int64(done)): \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            done += r
        }
    }
    return done
}

/// Writes a tar archive member by member, straight to its file (members can be large videos).
/// The archive is written under a temporary name and renamed by `finish()`, so a failed or
/// interrupted run never leaves a shard that looks complete.
public final class TarWriter {
    public let path: String
    private let tmp: String
    private var fd: Int32
    public private(set) var bytesWritten: Int64 = 0
    public private(set) var members: [TarMember] = []
    private var finished = false
    private var hash = SHA256()
    /// SHA-256 of the finished archive (after `finish()`).
    public private(set) var sha256Hex = ""

    public init(path: String) throws {
        self.path = path
        try FileOutput.checkReplaceable(path)
        tmp = "\(path).tmp-\(getpid())"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw FileWriteError(path: path, errno: errno) }
    }

    deinit {
        if !finished { close(fd); unlink(tmp) }
    }

    private func write(_ bytes: [UInt8]) throws {
        let (n, failure) = bytes.withUnsafeBytes { FileOutput.writeAll(fd, $0) }
        if let code = failure { throw FileWriteError(path: path, errno: code) }
        hash.update(bytes)
        bytesWritten += Int64(n)
    }

    /// Appends one regular file with `data` as its contents.
    public func add(name: String, data: [UInt8]) throws {
        try write(Tar.headerBlocks(name: name, size: Int64(data.count)))
        members.append(TarMember(name: name, offset: bytesWritten, size: Int64(data.count)))
        try write(data + [UInt8](repeating: 0, count: Tar.padding(Int64(data.count))))
    }

    /// The size `add` would grow the archive by for a member of `size` bytes named `name`.
    public static func entryBytes(name: String, size: Int64) -> Int64 {
        Int64(Tar.headerBlocks(name: name, size: size).count) + size + Int64(Tar.padding(size))
    }

    /// End-of-archive blocks, padding to a whole record, fsync, rename into place.
    public func finish() throws {
        var end = Int64(2 * Tar.block) + bytesWritten
        end = (end + Int64(Tar.record) - 1) / Int64(Tar.record) * Int64(Tar.record)
        try write([UInt8](repeating: 0, count: Int(end - bytesWritten)))
        if fsync(fd) != 0 { throw FileWriteError(path: path, errno: errno) }
        close(fd)
        sha256Hex = hash.finalize().map { String(format: "%02x", $0) }.joined()
        finished = true
        if rename(tmp, path) != 0 { let e = errno; unlink(tmp); throw FileWriteError(path: path, errno: e) }
    }
}
