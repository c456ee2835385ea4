// Writing safetensors files the way the reference library does, and saving them atomically.
//
// Layout matches `safetensors.torch.save_file` byte for byte: tensors ordered by descending
// dtype (Rust `Dtype` order) then by name, compact JSON with `__metadata__` first (keys
// sorted), header padded with spaces to a multiple of 8 bytes so every tensor stays aligned.
//
// `save(to:)` never leaves a half-written file at the target path: it writes
// `<path>.tmp-<pid>` in the same directory, fsyncs it, renames it over the target, then fsyncs
// the directory so the rename itself survives a crash.
import Foundation

public struct SafetensorsWriter {
    /// Where an entry's bytes come from. A `Tensor` is referenced, not copied: its contents
    /// are read when the file is written.
    private enum Payload {
        case bytes([UInt8])
        case tensor(Tensor)
    }

    private struct Item {
        let name: String
        let dtype: SafetensorsDType
        let shape: [Int]
        let payload: Payload
        var byteCount: Int { dtype.size * shape.reduce(1, *) }
    }

    private var items: [String: Item] = [:]
    /// Written as `__metadata__` (string → string).
    public var metadata: [String: String]

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    public var names: [String] { items.keys.sorted() }
    public var isEmpty: Bool { items.isEmpty }

    private mutating func insert(_ item: Item) {
        precondition(!item.name.isEmpty && item.name != "__metadata__",
                     "SafetensorsWriter: invalid tensor name \"\(item.name)\"")
        precondition(items[item.name] == nil, "SafetensorsWriter: tensor \"\(item.name)\" added twice")
        precondition(item.shape.allSatisfy { $0 >= 0 }, "SafetensorsWriter: negative dimension in \(item.shape)")
        items[item.name] = item
    }

    /// Raw little-endian bytes of any dtype; `bytes.count` must equal shape × dtype size.
    public mutating func add(_ name: String, dtype: SafetensorsDType, shape: [Int], bytes: [UInt8]) {
        let item = Item(name: name, dtype: dtype, shape: shape, payload: .bytes(bytes))
        precondition(bytes.count == item.byteCount,
                     "SafetensorsWriter: \"\(name)\" has \(bytes.count) bytes, shape \(shape) of \(dtype.rawValue) needs \(item.byteCount)")
        insert(item)
    }

    /// A Float32 tensor stored as F32 under its own shape (or `shape`, same element count).
    public mutating func add(_ name: String, tensor: Tensor, shape: [Int]? = nil) {
        let s = shape ?? tensor.shape
        precondition(s.reduce(1, *) == tensor.count, "SafetensorsWriter: \"\(name)\" shape \(s) for \(tensor.count) elements")
        insert(Item(name: name, dtype: .f32, shape: s, payload: .tensor(tensor)))
    }

    /// Float32 values stored as F32 (copied now).
    public mutating func add(_ name: String, floats: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == floats.count, "SafetensorsWriter: \"\(name)\" shape \(shape) for \(floats.count) values")
        let bytes = floats.withUnsafeBytes { Array($0) }
        insert(Item(name: name, dtype: .f32, shape: shape, payload: .bytes(bytes)))
    }

    /// Int64 values stored as I64 (copied now); shape defaults to `[values.count]`.
    public mutating func add(_ name: String, int64 values: [Int64], shape: [Int]? = nil) {
        let s = shape ?? [values.count]
        precondition(s.reduce(1, *) == values.count, "SafetensorsWriter: \"\(name)\" shape \(s) for \(values.count) values")
        let bytes = values.withUnsafeBytes { Array($0) }
        insert(Item(name: name, dtype: .i64, shape: s, payload: .bytes(bytes)))
    }

    /// Entries in data order: widest dtype first, then by name, as the Rust writer does.
    private var ordered: [Item] {
        items.values.sorted { a, b in
            a.dtype.rustOrder != b.dtype.rustOrder ? a.dtype.rustOrder > b.dtype.rustOrder : a.name < b.name
        }
    }

    /// The 8-byte length followed by the padded JSON header.
    public func headerBytes() -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func comma() { if !first { json.append(UInt8(ascii: ",")) }; first = false }
        if !metadata.isEmpty {
            comma()
            HeaderJSONWriter.appendString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (i, key) in metadata.keys.sorted().enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                HeaderJSONWriter.appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                HeaderJSONWriter.appendString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for item in ordered {
            comma()
            HeaderJSONWriter.appendString(item.name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            HeaderJSONWriter.appendString(item.dtype.rawValue, to: &json)
            json.append(contentsOf: Array(",\"shape\":[".utf8))
            for (i, d) in item.shape.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                HeaderJSONWriter.appendInt(d, to: &json)
            }
            json.append(contentsOf: Array("],\"data_offsets\":[".utf8))
            HeaderJSONWriter.appendInt(offset, to: &json)
            json.append(UInt8(ascii: ","))
            offset += item.byteCount
            HeaderJSONWriter.appendInt(offset, to: &json)
            json.append(contentsOf: Array("]}".utf8))
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var out = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.replaceSubrange(0..<8, with: $0) }
        out.append(contentsOf: json)
        return out
    }

    /// The whole file in memory (for small files and tests).
    public func serialized() -> [UInt8] {
        var out = headerBytes()
        for item in ordered {
            switch item.payload {
            case .bytes(let b): out.append(contentsOf: b)
            case .tensor(let t):
                out.append(contentsOf: UnsafeRawBufferPointer(start: t.data, count: t.bytes))
            }
        }
        return out
    }

    /// Writes the file atomically: temporary file, fsync, rename over `path`, fsync directory.
    public func save(to path: String) throws {
        func fail(_ what: String) -> SafetensorsError {
            SafetensorsError(path: path, message: "\(what): \(String(cString: strerror(errno)))")
        }
        try FileOutput.checkReplaceable(path)
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw fail("cannot create \(tmp)") }
        var renamed = false
        defer { if !renamed { unlink(tmp) } }
        do {
            defer { close(fd) }
            try writeAll(fd, headerBytes(), fail: fail)
            for item in ordered {
                switch item.payload {
                case .bytes(let b): try writeAll(fd, b, fail: fail)
                case .tensor(let t):
                    try writeAll(fd, UnsafeRawBufferPointer(start: t.data, count: t.bytes), fail: fail)
                }
            }
            if fsync(fd) != 0 { throw fail("fsync of \(tmp) failed") }
        }
        if rename(tmp, path) != 0 { throw fail("cannot rename \(tmp) over the target") }
        renamed = true
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd < 0 { throw fail("cannot open directory \(dir) to fsync it") }
        defer { close(dfd) }
        if fsync(dfd) != 0 { throw fail("fsync of directory \(dir) failed") }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], fail: (String) -> SafetensorsError) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, fail: fail) }
    }

    private func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, fail: (String) -> SafetensorsError) throws {
        guard var p = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let n = write(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write failed")
            }
            p += n
            left -= n
        }
    }
}
