// Reading the safetensors format (huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}`, then the data bytes, offsets relative to the end of the header.
//
// The file is memory-mapped read-only and validated completely before any tensor is handed
// out, with the same rules as the Rust reference (header size, JSON, dtype, offsets that cover
// the data contiguously and match shape × dtype size). A malformed file is a thrown error that
// names the file and the problem, never a crash; nothing in a file is ever executed.
import Foundation

#if _endian(big)
#error("safetensors data is little-endian; this reader assumes a little-endian host")
#endif

/// Element types we read and write (the ones PyTorch checkpoints of this project use).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16: return true
        default: return false
        }
    }

    /// Rank in the Rust library's `Dtype` declaration order; its writer lays tensors out by
    /// descending rank, then by name (so the widest types come first and stay aligned).
    var rustOrder: Int {
        switch self {
        case .bool: return 0
        case .u8: return 4
        case .i8: return 5
        case .f16: return 11
        case .bf16: return 12
        case .i32: return 13
        case .f32: return 15
        case .f64: return 17
        case .i64: return 18
        }
    }
}

/// A safetensors problem: which file, and what is wrong with it.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// One tensor's header entry. `begin`/`end` are byte offsets into the data section.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    public let begin: Int
    public let end: Int

    /// Number of elements (1 for a scalar of shape `[]`).
    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { end - begin }
}

/// A validated, memory-mapped safetensors file.
public final class SafetensorsFile: @unchecked Sendable {
    /// The reference implementation refuses headers above 100 MB; so do we.
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Tensor names in the order their data appears in the file.
    public let names: [String]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Header entries by name.
    public let entries: [String: SafetensorsEntry]

    private let mapping: UnsafeMutableRawPointer?
    private let mappedLength: Int
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        func bad(_ message: String) -> SafetensorsError { SafetensorsError(path: path, message: message) }

        // O_NONBLOCK: a FIFO named by mistake would block the open until a writer came; it is
        // refused below as not a regular file (the flag changes nothing for regular files).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw bad("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw bad("cannot stat: \(String(cString: strerror(errno)))") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw bad("not a regular file") }
        let fileSize = Int(st.st_size)
        if fileSize < 8 { throw bad("file is \(fileSize) bytes, too short for the 8-byte header length") }

        guard let base = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw bad("cannot mmap: \(String(cString: strerror(errno)))")
        }
        // From here on the mapping is owned by this object or unmapped on failure.
        var ok = false
        defer { if !ok { munmap(base, fileSize) } }

        // PyTorch's own formats (torch.save: a zip archive, or a bare pickle before 1.6) are the
        // likeliest wrong input: when the header does not read, say so and how to convert.
        let b0 = base.load(as: UInt8.self), b1 = base.load(fromByteOffset: 1, as: UInt8.self)
        let zip = b0 == 0x50 && b1 == 0x4B && base.load(fromByteOffset: 2, as: UInt8.self) == 3
        let torch = zip || (b0 == 0x80 && (2...5).contains(b1))
        func badHeader(_ message: String) -> SafetensorsError {
            guard torch else { return bad(message) }
            return bad("a PyTorch \(zip ? "torch.save (zip)" : "pickle") file, not safetensors: aim-swift never unpickles a file. "
                       + "Convert a pretrained backbone with tools/export_pretrained.py (clip, timm or swin), a trained "
                       + "model with tools/convert_checkpoint.py from-official; both write safetensors")
        }
        let n = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        if n > UInt64(SafetensorsFile.maxHeaderBytes) {
            throw badHeader("header length \(n) bytes is larger than the \(SafetensorsFile.maxHeaderBytes)-byte limit (not a safetensors file?)")
        }
        let headerLength = Int(n)
        if 8 + headerLength > fileSize {
            throw badHeader("header length \(headerLength) bytes runs past the end of the \(fileSize)-byte file (truncated?)")
        }
        if headerLength < 2 || base.load(fromByteOffset: 8, as: UInt8.self) != UInt8(ascii: "{") {
            throw badHeader("header does not start with a JSON object")
        }
        let header: HeaderJSON
        do {
            header = try HeaderJSONParser.parse(UnsafeRawBufferPointer(start: base + 8, count: headerLength))
        } catch let e as HeaderJSONError {
            throw bad("invalid JSON header: \(e.message)")
        }
        guard case .object(let members) = header else { throw bad("header is not a JSON object") }

        let dataLength = fileSize - 8 - headerLength
        var metadata: [String: String] = [:]
        var parsed: [(entry: SafetensorsEntry, position: Int)] = []
        for (position, (name, value)) in members.enumerated() {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw bad("__metadata__ is \(value.kind), expected an object of strings") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw bad("__metadata__[\"\(k)\"] is \(v.kind), expected a string") }
                    metadata[k] = s
                }
                continue
            }
            parsed.append((try SafetensorsFile.parseEntry(name: name, value: value, bad: bad), position))
        }

        // Coverage: sorted by offset, the tensors must tile [0, dataLength) exactly, like the
        // Rust reader requires (no gaps, no overlaps, no trailing bytes).
        parsed.sort { a, b in
            (a.entry.begin, a.entry.end, a.position) < (b.entry.begin, b.entry.end, b.position)
        }
        var cursor = 0
        for (entry, _) in parsed {
            if entry.begin < cursor {
                throw bad("tensor \"\(entry.name)\" data_offsets [\(entry.begin), \(entry.end)] overlap the previous tensor (which ends at \(cursor))")
            }
            if entry.begin > cursor {
                throw bad("tensor \"\(entry.name)\" starts at \(entry.begin) but the previous data ends at \(cursor): data is not contiguous")
            }
            if entry.end > dataLength {
                throw bad("tensor \"\(entry.name)\" data_offsets [\(entry.begin), \(entry.end)] run past the \(dataLength)-byte data section")
            }
            cursor = entry.end
        }
        if cursor != dataLength {
            throw bad("tensors cover \(cursor) bytes but the data section holds \(dataLength): \(dataLength - cursor) bytes unaccounted for")
        }

        self.names = parsed.map { $0.entry.name }
        self.entries = Dictionary(uniqueKeysWithValues: parsed.map { ($0.entry.name, $0.entry) })
        self.metadata = metadata
        self.mapping = base
        self.mappedLength = fileSize
        self.dataStart = 8 + headerLength
        ok = true
    }

    private static func parseEntry(name: String, value: HeaderJSON,
                                   bad: (String) -> SafetensorsError) throws -> SafetensorsEntry {
        guard case .object(let fields) = value else { throw bad("tensor \"\(name)\" is \(value.kind), expected an object") }
        var dtype: SafetensorsDType?
        var shape: [Int]?
        var offsets: [Int]?
        for (key, v) in fields {
            switch key {
            case "dtype":
                guard case .string(let s) = v else { throw bad("tensor \"\(name)\": dtype is \(v.kind), expected a string") }
                guard let d = SafetensorsDType(rawValue: s) else {
                    throw bad("tensor \"\(name)\": unknown dtype \"\(s)\" (supported: \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                dtype = d
            case "shape", "data_offsets":
                guard case .array(let items) = v else { throw bad("tensor \"\(name)\": \(key) is \(v.kind), expected an array of integers") }
                var ints: [Int] = []
                for item in items {
                    guard case .integer(let i) = item, i >= 0 else {
                        throw bad("tensor \"\(name)\": \(key) must hold non-negative integers")
                    }
                    ints.append(Int(i))
                }
                if key == "shape" { shape = ints } else { offsets = ints }
            default:
                throw bad("tensor \"\(name)\": unexpected field \"\(key)\"")
            }
        }
        guard let dtype else { throw bad("tensor \"\(name)\": missing dtype") }
        guard let shape else { throw bad("tensor \"\(name)\": missing shape") }
        guard let offsets else { throw bad("tensor \"\(name)\": missing data_offsets") }
        guard offsets.count == 2 else { throw bad("tensor \"\(name)\": data_offsets must be [begin, end], got \(offsets.count) numbers") }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw bad("tensor \"\(name)\": data_offsets [\(begin), \(end)] end before they begin") }
        var bytes = dtype.size
        for d in shape {
            let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
            if overflow { throw bad("tensor \"\(name)\": shape \(shape) is too large") }
            bytes = p
        }
        guard end - begin == bytes else {
            throw bad("tensor \"\(name)\": data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(bytes)")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    deinit {
        if let mapping { munmap(mapping, mappedLength) }
    }

    // MARK: lookup

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The header entry of `name`, or an error naming the file and the missing tensor.
    public func entry(_ name: String) throws -> SafetensorsEntry {
        guard let e = entries[name] else {
            throw SafetensorsError(path: path, message: "no tensor named \"\(name)\"")
        }
        return e
    }

    public func shape(of name: String) throws -> [Int] { try entry(name).shape }
    public func dtype(of name: String) throws -> SafetensorsDType { try entry(name).dtype }

    /// The raw little-endian bytes of `name`, valid while this object is alive.
    public func withRawBytes<R>(named name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        let start = mapping! + dataStart + e.begin
        return try body(UnsafeRawBufferPointer(start: e.byteCount == 0 ? nil : UnsafeRawPointer(start), count: e.byteCount))
    }

    /// A copy of the raw bytes of `name` (any dtype).
    public func rawBytes(named name: String) throws -> [UInt8] {
        try withRawBytes(named: name) { Array($0) }
    }

    // MARK: typed reads

    /// Converts a floating-point tensor (F32, F16, BF16, F64) into `count` Float32 values at
    /// `destination`; `count` must equal the tensor's element count.
    public func readFloats(named name: String, into destination: UnsafeMutablePointer<Float>, count: Int) throws {
        let e = try entry(name)
        guard e.dtype.isFloatingPoint else {
            throw SafetensorsError(path: path, message: "tensor \"\(name)\" is \(e.dtype.rawValue), not a floating-point type")
        }
        guard count == e.count else {
            throw SafetensorsError(path: path, message: "tensor \"\(name)\" has \(e.count) elements (shape \(e.shape)), expected \(count)")
        }
        try withRawBytes(named: name) { raw in
            guard count > 0, let src = raw.baseAddress else { return }
            switch e.dtype {
            case .f32:
                // memcpy: the data may not be 4-byte aligned in files from other writers.
                UnsafeMutableRawPointer(destination).copyMemory(from: src, byteCount: count * 4)
            case .f64:
                for i in 0..<count { destination[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            case .f16:
                for i in 0..<count {
                    destination[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .bf16:
                for i in 0..<count {
                    let bits = UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16
                    destination[i] = Float(bitPattern: bits)
                }
            default:
                break
            }
        }
    }

    /// A floating-point tensor as a new Float32 `Tensor` of the stored shape.
    public func tensor(named name: String) throws -> Tensor {
        let e = try entry(name)
        guard e.dtype.isFloatingPoint else {
            throw SafetensorsError(path: path, message: "tensor \"\(name)\" is \(e.dtype.rawValue), not a floating-point type")
        }
        let t = Tensor(e.shape)
        try readFloats(named: name, into: t.data, count: t.count)
        return t
    }

    /// An integer tensor (I64, I32, I8, U8 or BOOL) widened to Int64, flattened.
    public func int64Array(named name: String) throws -> [Int64] {
        let e = try entry(name)
        return try withRawBytes(named: name) { raw -> [Int64] in
            let n = e.count
            switch e.dtype {
            case .i64: return (0..<n).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
            case .i32: return (0..<n).map { Int64(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .i8: return (0..<n).map { Int64(Int8(bitPattern: raw[$0])) }
            case .u8, .bool: return (0..<n).map { Int64(raw[$0]) }
            default:
                throw SafetensorsError(path: path, message: "tensor \"\(name)\" is \(e.dtype.rawValue), not an integer type")
            }
        }
    }

    /// A U8 or BOOL tensor's bytes, flattened.
    public func uint8Array(named name: String) throws -> [UInt8] {
        let e = try entry(name)
        guard e.dtype == .u8 || e.dtype == .bool else {
            throw SafetensorsError(path: path, message: "tensor \"\(name)\" is \(e.dtype.rawValue), not U8 or BOOL")
        }
        return try rawBytes(named: name)
    }
}
