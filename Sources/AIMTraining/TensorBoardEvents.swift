import AIMTensor
import Foundation

// TensorBoard event files, written and read without TensorFlow: a TFRecord file of `Event`
// protocol buffers (tensorflow/core/util/event.proto), encoded by hand for the few fields we use.
//
// TFRecord framing, per record:
//   uint64 length (little-endian) · uint32 masked CRC-32C of those 8 bytes ·
//   payload (length bytes) · uint32 masked CRC-32C of the payload
// Event:   wall_time = 1 (double) · step = 2 (int64) · file_version = 3 (string) · summary = 5
// Summary: value = 1 (repeated Value);  Value: tag = 1 (string) · simple_value = 2 (float)

/// One scalar of an event: `train/loss` = 1.23.
public struct TensorBoardScalar: Equatable, Sendable {
    public var tag: String
    public var value: Float
    public init(_ tag: String, _ value: Float) { self.tag = tag; self.value = value }
}

/// The fields of an `Event` this project writes and reads (others are skipped when reading).
public struct TensorBoardEvent: Equatable, Sendable {
    public var wallTime: Double
    public var step: Int64
    /// Set only in a file's first event ("brain.Event:2").
    public var fileVersion: String?
    public var scalars: [TensorBoardScalar]

    public static let fileVersion2 = "brain.Event:2"

    public init(wallTime: Double, step: Int64 = 0, fileVersion: String? = nil, scalars: [TensorBoardScalar] = []) {
        self.wallTime = wallTime; self.step = step; self.fileVersion = fileVersion; self.scalars = scalars
    }

    /// The protobuf encoding (proto3: a zero step is left out, as TensorFlow's writer does).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        Protobuf.appendKey(1, .fixed64, to: &out)
        Protobuf.appendLittleEndian(wallTime.bitPattern, to: &out)
        if step != 0 {
            Protobuf.appendKey(2, .varint, to: &out)
            Protobuf.appendVarint(UInt64(bitPattern: step), to: &out)
        }
        if let fileVersion { Protobuf.appendBytes(3, Array(fileVersion.utf8), to: &out) }
        if !scalars.isEmpty {
            var summary: [UInt8] = []
            for s in scalars {
                var value: [UInt8] = []
                Protobuf.appendBytes(1, Array(s.tag.utf8), to: &value)
                Protobuf.appendKey(2, .fixed32, to: &value)
                Protobuf.appendLittleEndian(s.value.bitPattern, to: &value)
                Protobuf.appendBytes(1, value, to: &summary)
            }
            Protobuf.appendBytes(5, summary, to: &out)
        }
        return out
    }

    /// Decodes an `Event`; fields other than ours (graphs, images, session logs) are skipped, and
    /// summary values that are not simple scalars are left out.
    public init(decoding payload: [UInt8]) throws {
        self.init(wallTime: 0)
        var r = Protobuf.Reader(payload)
        while let (field, wire) = try r.nextKey() {
            switch (field, wire) {
            case (1, .fixed64): wallTime = Double(bitPattern: try r.fixed64())
            case (2, .varint): step = Int64(bitPattern: try r.varint())
            case (3, .lengthDelimited): fileVersion = String(decoding: try r.bytes(), as: UTF8.self)
            case (5, .lengthDelimited): scalars += try Self.decodeSummary(try r.bytes())
            default: try r.skip(wire)
            }
        }
    }

    static func decodeSummary(_ bytes: [UInt8]) throws -> [TensorBoardScalar] {
        var out: [TensorBoardScalar] = []
        var r = Protobuf.Reader(bytes)
        while let (field, wire) = try r.nextKey() {
            guard field == 1, wire == .lengthDelimited else { try r.skip(wire); continue }
            var v = Protobuf.Reader(try r.bytes())
            var tag = "", value: Float?
            while let (f, w) = try v.nextKey() {
                switch (f, w) {
                case (1, .lengthDelimited): tag = String(decoding: try v.bytes(), as: UTF8.self)
                case (2, .fixed32): value = Float(bitPattern: try v.fixed32())
                default: try v.skip(w)
                }
            }
            if let value { out.append(TensorBoardScalar(tag, value)) }
        }
        return out
    }
}

/// A damaged or unreadable event file: the file, the byte offset of the bad record and why.
public struct TensorBoardEventError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let offset: Int
    public let reason: String
    public var description: String { "\(path): byte \(offset): \(reason)" }
}

/// TFRecord framing: records in, records out, with both CRCs checked.
public enum TFRecord {
    /// One framed record.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        Protobuf.appendLittleEndian(UInt64(payload.count), to: &out)
        Protobuf.appendLittleEndian(CRC32C.mask(CRC32C.checksum(out)), to: &out)
        out += payload
        Protobuf.appendLittleEndian(CRC32C.mask(CRC32C.checksum(payload)), to: &out)
        return out
    }

    /// The records of `bytes` up to the first damaged one, with their offsets, and what is wrong
    /// there (nil when the whole file reads). A writer killed mid-record leaves a damaged tail.
    public static func records(in bytes: [UInt8], path: String) -> (records: [(offset: Int, payload: [UInt8])], damage: TensorBoardEventError?) {
        var out: [(offset: Int, payload: [UInt8])] = []
        var at = 0
        func damage(_ why: String) -> TensorBoardEventError { TensorBoardEventError(path: path, offset: at, reason: why) }
        while at < bytes.count {
            guard bytes.count - at >= 12 else {
                return (out, damage("truncated record header (\(bytes.count - at) of 12 bytes)"))
            }
            let length = readLE(bytes, at, UInt64.self), storedLengthCRC = readLE(bytes, at + 8, UInt32.self)
            let lengthCRC = CRC32C.mask(CRC32C.checksum(bytes[at..<(at + 8)]))
            guard storedLengthCRC == lengthCRC else {
                return (out, damage(String(format: "length CRC mismatch (stored 0x%08x, computed 0x%08x)", storedLengthCRC, lengthCRC)))
            }
            guard length <= UInt64(bytes.count - at - 12), bytes.count - at - 12 - Int(length) >= 4 else {
                return (out, damage("truncated record: \(length) payload bytes + 4 CRC bytes announced, \(bytes.count - at - 12) left"))
            }
            let start = at + 12, end = start + Int(length)
            let payload = Array(bytes[start..<end])
            let storedCRC = readLE(bytes, end, UInt32.self), crc = CRC32C.mask(CRC32C.checksum(payload))
            guard storedCRC == crc else {
                return (out, damage(String(format: "payload CRC mismatch (stored 0x%08x, computed 0x%08x)", storedCRC, crc)))
            }
            out.append((at, payload))
            at = end + 4
        }
        return (out, nil)
    }

    static func readLE<T: FixedWidthInteger>(_ bytes: [UInt8], _ at: Int, _: T.Type) -> T {
        var v: T = 0
        for i in 0..<(T.bitWidth / 8) { v |= T(bytes[at + i]) << (8 * i) }
        return v
    }
}

/// Reading whole event files.
public enum TensorBoardEventFile {
    /// TensorBoard reads every file whose name contains "tfevents"; ours are
    /// `events.out.tfevents.<unix seconds>.<hostname>`, as TensorFlow names them.
    public static let prefix = "events.out.tfevents."

    public static func name(unixSeconds: Int, hostname: String) -> String { "\(prefix)\(unixSeconds).\(hostname)" }

    /// The event files of a directory in the order TensorBoard reads them (by name).
    public static func files(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix(prefix) }.sorted().map { directory.appendingPathComponent($0) }
    }

    /// Every event of a file; any damage (a CRC mismatch, a truncated record, a payload that is
    /// not an Event) is an error naming the file and the byte offset.
    public static func read(_ url: URL) throws -> [TensorBoardEvent] {
        let (events, damage) = try readPrefix(url)
        if let damage { throw damage }
        return events
    }

    /// The events up to the first damaged record, and the damage if any.
    public static func readPrefix(_ url: URL) throws -> (events: [TensorBoardEvent], damage: TensorBoardEventError?) {
        let bytes = [UInt8](try Data(contentsOf: url))
        let (records, damage) = TFRecord.records(in: bytes, path: url.path)
        var events: [TensorBoardEvent] = []
        for (offset, payload) in records {
            do { events.append(try TensorBoardEvent(decoding: payload)) } catch {
                return (events, TensorBoardEventError(path: url.path, offset: offset, reason: "record is not an Event: \(error)"))
            }
        }
        return (events, damage)
    }

    /// The bytes of a file holding `events`, framed.
    public static func encode(_ events: [TensorBoardEvent]) -> [UInt8] { events.flatMap { TFRecord.frame($0.encoded()) } }
}

/// The protobuf wire format, as far as events need it.
enum Protobuf {
    enum Wire: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func appendKey(_ field: UInt64, _ wire: Wire, to out: inout [UInt8]) { appendVarint(field << 3 | wire.rawValue, to: &out) }

    static func appendBytes(_ field: UInt64, _ bytes: [UInt8], to out: inout [UInt8]) {
        appendKey(field, .lengthDelimited, to: &out)
        appendVarint(UInt64(bytes.count), to: &out)
        out += bytes
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        for i in 0..<(T.bitWidth / 8) { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }

    struct Reader {
        let data: [UInt8]
        var at = 0
        init(_ bytes: [UInt8]) { self.data = bytes }

        /// The next field number and wire type, nil at the end.
        mutating func nextKey() throws -> (UInt64, Wire)? {
            guard at < data.count else { return nil }
            let key = try varint()
            guard let wire = Wire(rawValue: key & 7) else { throw DecodeError(description: "unsupported wire type \(key & 7) at byte \(at)") }
            return (key >> 3, wire)
        }

        mutating func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard at < data.count, shift < 64 else { throw DecodeError(description: "bad varint at byte \(at)") }
                let b = data[at]; at += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }

        mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let n = T.bitWidth / 8
            guard data.count - at >= n else { throw DecodeError(description: "truncated \(n)-byte field at byte \(at)") }
            defer { at += n }
            return TFRecord.readLE(data, at, T.self)
        }
        mutating func fixed64() throws -> UInt64 { try fixed(UInt64.self) }
        mutating func fixed32() throws -> UInt32 { try fixed(UInt32.self) }

        mutating func bytes() throws -> [UInt8] {
            let n = try varint()
            guard n <= UInt64(data.count - at) else { throw DecodeError(description: "length \(n) at byte \(at) runs past the end") }
            defer { at += Int(n) }
            return Array(data[at..<(at + Int(n))])
        }

        mutating func skip(_ wire: Wire) throws {
            switch wire {
            case .varint: _ = try varint()
            case .fixed64: _ = try fixed64()
            case .fixed32: _ = try fixed32()
            case .lengthDelimited: _ = try bytes()
            }
        }
    }
}
