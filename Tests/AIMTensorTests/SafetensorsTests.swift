import AIMTensor
import Foundation
import XCTest

// Tests/Fixtures/python_written.safetensors was written once by hand with
// /opt/torchenv/bin/python (torch 2.x, safetensors 0.8.0):
//
//   import torch
//   from safetensors.torch import save_file
//   t = {
//       "backbone.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4 - 0.5,
//       "half": torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16),
//       "brain": torch.tensor([[1.0, -3.0], [0.15625, 1e30]], dtype=torch.bfloat16),
//       "double": torch.tensor([0.1, -1e-3], dtype=torch.float64),
//       "label": torch.tensor([3, -1, 9_000_000_000], dtype=torch.int64),
//       "i32": torch.tensor([-7, 7], dtype=torch.int32),
//       "bytes": torch.tensor([0, 255, 17], dtype=torch.uint8),
//       "i8": torch.tensor([-128, 127], dtype=torch.int8),
//       "mask": torch.tensor([True, False, True]),
//       "scalar": torch.tensor(2.5, dtype=torch.float32),
//       "empty": torch.zeros(0, 4, dtype=torch.float32),
//   }
//   save_file(t, "Tests/Fixtures/python_written.safetensors", metadata={"format": "pt", "step": "12"})
final class SafetensorsTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/python_written.safetensors").path

    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "safetensors-tests-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    // MARK: interop with the Python library

    func testReadsFileWrittenByPython() throws {
        let f = try SafetensorsFile(path: Self.fixture)
        // Python lays data out widest dtype first, then by name; names come back in data order.
        XCTAssertEqual(f.names, ["label", "double", "backbone.weight", "empty", "scalar", "i32",
                                 "brain", "half", "i8", "bytes", "mask"])
        XCTAssertEqual(f.metadata, ["format": "pt", "step": "12"])

        let w = try f.tensor(named: "backbone.weight")
        XCTAssertEqual(w.shape, [2, 3])
        XCTAssertEqual(w.array, [-0.5, -0.25, 0, 0.25, 0.5, 0.75])
        XCTAssertEqual(try f.dtype(of: "half"), .f16)
        XCTAssertEqual(try f.tensor(named: "half").array, [1.5, -2.25, 65504])
        XCTAssertEqual(try f.shape(of: "brain"), [2, 2])
        XCTAssertEqual(try f.tensor(named: "brain").array, [1, -3, 0.15625, 1.0002555517425873e30])
        XCTAssertEqual(try f.tensor(named: "double").array, [Float(0.1), Float(-1e-3)])
        XCTAssertEqual(try f.int64Array(named: "label"), [3, -1, 9_000_000_000])
        XCTAssertEqual(try f.int64Array(named: "i32"), [-7, 7])
        XCTAssertEqual(try f.int64Array(named: "i8"), [-128, 127])
        XCTAssertEqual(try f.uint8Array(named: "bytes"), [0, 255, 17])
        XCTAssertEqual(try f.uint8Array(named: "mask"), [1, 0, 1])
        XCTAssertEqual(try f.dtype(of: "mask"), .bool)
        let s = try f.tensor(named: "scalar")
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.array, [2.5])
        XCTAssertEqual(try f.tensor(named: "empty").shape, [0, 4])
    }

    /// Rewriting the Python file's tensors must reproduce its data section byte for byte and
    /// its tensor order, which is what "written like the Python library" means.
    func testWriterReproducesPythonLayout() throws {
        let py = try SafetensorsFile(path: Self.fixture)
        var w = SafetensorsWriter(metadata: py.metadata)
        for name in py.names.reversed() {
            let e = try py.entry(name)
            w.add(name, dtype: e.dtype, shape: e.shape, bytes: try py.rawBytes(named: name))
        }
        let path = dir + "/rewritten.safetensors"
        try w.save(to: path)
        let ours = try SafetensorsFile(path: path)
        XCTAssertEqual(ours.names, py.names)
        for name in py.names {
            XCTAssertEqual(try ours.entry(name), try py.entry(name), name)
        }
        let pyBytes = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        let ourBytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let pyN = Int(pyBytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let ourN = Int(ourBytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        XCTAssertEqual(ourN % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(pyBytes.suffix(from: 8 + pyN), ourBytes.suffix(from: 8 + ourN))
        // Python's header (its metadata order is a hash map's) has the same tensor JSON text.
        let pyHeader = String(decoding: pyBytes[8..<(8 + pyN)], as: UTF8.self)
        let ourHeader = String(decoding: ourBytes[8..<(8 + ourN)], as: UTF8.self)
        let tensorsPart = { (h: String) in String(h[h.range(of: "},\"label\"")!.lowerBound...]).trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(tensorsPart(ourHeader), tensorsPart(pyHeader))
    }

    /// The header is padded with spaces up to the next multiple of 8 bytes, and not at all when
    /// it is one already (the reference's `(8 - n % 8) % 8`): the Python fixture's header needs
    /// padding, so only a header of exactly 56 bytes shows a writer that always adds some.
    func testHeaderIsPaddedToTheNextMultipleOfEightOnly() {
        func header(_ name: String) -> String {
            var w = SafetensorsWriter()
            w.add(name, floats: [1], shape: [1])
            let b = w.headerBytes()
            let n = Int(b.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            XCTAssertEqual(b.count, 8 + n, name)
            return String(decoding: b[8...], as: UTF8.self)
        }
        func json(_ name: String) -> String { "{\"\(name)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}" }
        XCTAssertEqual(json("abc").utf8.count, 56)
        XCTAssertEqual(header("abc"), json("abc"))
        XCTAssertEqual(header("ab"), json("ab") + " ")
        XCTAssertEqual(header("abcd"), json("abcd") + String(repeating: " ", count: 7))
    }

    // MARK: writing

    func testRoundTripAllDtypesAndMetadata() throws {
        var w = SafetensorsWriter(metadata: ["config": "{\"a\": \"b/c\"}\n\tünïcode", "step": "7"])
        let t = Tensor(shape: [2, 2, 3], values: (0..<12).map { Float($0) * 0.37 - 1 })
        w.add("w", tensor: t)
        w.add("flat", floats: [1, 2, 3], shape: [3])
        w.add("labels", int64: [5, -6])
        w.add("h", dtype: .f16, shape: [2], bytes: [Float16(0.5), Float16(-4)].flatMap { v in
            withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
        w.add("b", dtype: .bf16, shape: [1], bytes: [0x80, 0x3F])  // 1.0
        w.add("d", dtype: .f64, shape: [1], bytes: withUnsafeBytes(of: 3.25) { Array($0) })
        w.add("u", dtype: .u8, shape: [2], bytes: [9, 200])
        w.add("odd", dtype: .i8, shape: [1], bytes: [0xFF])
        w.add("ok", dtype: .bool, shape: [1], bytes: [1])
        w.add("i", dtype: .i32, shape: [1], bytes: withUnsafeBytes(of: Int32(-3)) { Array($0) })
        let path = dir + "/rt.safetensors"
        try w.save(to: path)

        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.metadata, w.metadata)
        XCTAssertEqual(Set(f.names), ["w", "flat", "labels", "h", "b", "d", "u", "odd", "ok", "i"])
        XCTAssertEqual(try f.tensor(named: "w").shape, [2, 2, 3])
        XCTAssertEqual(try f.tensor(named: "w").array, t.array)
        XCTAssertEqual(try f.tensor(named: "flat").array, [1, 2, 3])
        XCTAssertEqual(try f.int64Array(named: "labels"), [5, -6])
        XCTAssertEqual(try f.tensor(named: "h").array, [0.5, -4])
        XCTAssertEqual(try f.tensor(named: "b").array, [1])
        XCTAssertEqual(try f.tensor(named: "d").array, [3.25])
        XCTAssertEqual(try f.uint8Array(named: "u"), [9, 200])
        XCTAssertEqual(try f.int64Array(named: "odd"), [-1])
        XCTAssertEqual(try f.int64Array(named: "ok"), [1])
        XCTAssertEqual(try f.int64Array(named: "i"), [-3])
        // serialized() and save() produce the same bytes.
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data(w.serialized()))
    }

    func testReadFloatsIntoExistingStorage() throws {
        var w = SafetensorsWriter()
        w.add("x", floats: [4, 5, 6], shape: [3])
        let path = dir + "/x.safetensors"
        try w.save(to: path)
        let f = try SafetensorsFile(path: path)
        let big = Tensor([5])
        try f.readFloats(named: "x", into: big.data + 1, count: 3)
        XCTAssertEqual(big.array, [0, 4, 5, 6, 0])
        XCTAssertThrowsError(try f.readFloats(named: "x", into: big.data, count: 4)) { e in
            XCTAssertTrue("\(e)".contains("expected 4"), "\(e)")
        }
    }

    func testAtomicSaveReplacesAndLeavesNoTemporary() throws {
        let path = dir + "/ckpt.safetensors"
        var a = SafetensorsWriter(metadata: ["step": "1"])
        a.add("p", floats: [1], shape: [1])
        try a.save(to: path)
        var b = SafetensorsWriter(metadata: ["step": "2"])
        b.add("p", floats: [2], shape: [1])
        try b.save(to: path)
        XCTAssertEqual(try SafetensorsFile(path: path).metadata["step"], "2")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt.safetensors"])
    }

    func testFailedSaveKeepsTargetAndCleansUp() throws {
        // Renaming a file over a non-empty directory fails after the data was written: the
        // target must be untouched and the temporary file removed.
        let target = dir + "/occupied"
        try FileManager.default.createDirectory(atPath: target + "/inner", withIntermediateDirectories: true)
        var w = SafetensorsWriter()
        w.add("p", floats: [1], shape: [1])
        XCTAssertThrowsError(try w.save(to: target)) { e in
            XCTAssertTrue("\(e)".contains(target), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["occupied"])
        XCTAssertThrowsError(try w.save(to: dir + "/missing/dir/x.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("missing/dir/x.safetensors"), "\(e)")
        }
    }

    // MARK: malformed files

    /// Writes `declared` (or the real header length) + header + data, returns the path.
    func raw(_ header: String, data: [UInt8] = [], declared: UInt64? = nil, name: String = "bad.safetensors") -> String {
        var bytes = [UInt8]()
        let h = Array(header.utf8)
        withUnsafeBytes(of: (declared ?? UInt64(h.count)).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: h)
        bytes.append(contentsOf: data)
        let path = dir + "/" + name
        put(bytes, path)
        return path
    }

    /// Plain write, no fsync (Foundation's writers fsync, which costs milliseconds per file).
    func put(_ bytes: [UInt8], _ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot create \(path)")
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func assertRefused(_ path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { e in
            let text = "\(e)"
            XCTAssertTrue(e is SafetensorsError, file: file, line: line)
            XCTAssertTrue(text.contains(path), "message does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "expected \"\(fragment)\" in: \(text)", file: file, line: line)
        }
    }

    func testRefusesMalformedFiles() {
        let entry = { (dtype: String, shape: String, b: Int, e: Int) in
            "{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(b),\(e)]}"
        }
        let eight = [UInt8](repeating: 0, count: 8)

        assertRefused(dir + "/nonexistent.safetensors", "cannot open")
        put([1, 2, 3], dir + "/short")
        assertRefused(dir + "/short", "too short")
        assertRefused(raw("{}", declared: 1000), "runs past the end")
        assertRefused(raw("{}", declared: 200_000_000), "limit")
        assertRefused(raw("{}", declared: UInt64.max), "limit")
        assertRefused(raw("[1,2]"), "does not start with a JSON object")
        assertRefused(raw("{\"a\": "), "invalid JSON")
        assertRefused(raw("{\"a\": {}} x"), "invalid JSON")
        assertRefused(raw("{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"a\":" + entry("F32", "[2]", 0, 8) + "}", data: eight), "duplicate key")
        assertRefused(raw("{\"a\":" + entry("F8_E4M3", "[8]", 0, 8) + "}", data: eight), "unknown dtype \"F8_E4M3\"")
        assertRefused(raw("{\"a\":" + entry("F32", "[2]", 0, 16) + "}", data: eight), "need")
        assertRefused(raw("{\"a\":" + entry("F32", "[4]", 0, 16) + "}", data: eight), "run past")
        assertRefused(raw("{\"a\":" + entry("F32", "[2]", 0, 8) + ",\"b\":" + entry("F32", "[1]", 4, 8) + "}", data: eight + [0, 0, 0, 0]), "overlap")
        assertRefused(raw("{\"a\":" + entry("F32", "[1]", 4, 8) + "}", data: eight), "not contiguous")
        assertRefused(raw("{\"a\":" + entry("F32", "[1]", 0, 4) + "}", data: eight), "unaccounted")
        assertRefused(raw("{\"a\":" + entry("F32", "[1]", 8, 4) + "}", data: eight), "end before they begin")
        assertRefused(raw("{\"a\":" + entry("F32", "[-1]", 0, 0) + "}"), "non-negative")
        assertRefused(raw("{\"a\":" + entry("F32", "[9223372036854775807, 4]", 0, 8) + "}", data: eight), "too large")
        assertRefused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", data: eight), "missing data_offsets")
        assertRefused(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", data: eight), "unexpected field")
        assertRefused(raw("{\"__metadata__\":{\"k\":1}}"), "expected a string")
        assertRefused(raw("{\"a\":" + entry("F32", "[2]", 0, 8) + "}", data: [0, 0, 0]), "run past")
        assertRefused(raw("{\"a\":\"\u{1}\"}"), "invalid JSON")
        assertRefused(raw("{\"a\":" + String(repeating: "[", count: 100_000) + "}"), "deeper")
        assertRefused(raw("{\"a\": \"\\ud800\"}"), "surrogate")
        // PyTorch's formats, the likeliest wrong input, are named with the way to convert them.
        put([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60), dir + "/model.pth")
        assertRefused(dir + "/model.pth", "a PyTorch torch.save (zip) file, not safetensors")
        put([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19] + [UInt8](repeating: 0x2E, count: 60), dir + "/old.pth")
        assertRefused(dir + "/old.pth", "tools/export_pretrained.py")
        // A real safetensors file whose header length (640 = 0x280) begins like a pickle still reads.
        let header = "{\"__metadata__\":{\"k\":\"v\"}}"
        let padded = raw(header + String(repeating: " ", count: 640 - header.utf8.count), name: "pickle-like.safetensors")
        XCTAssertEqual(try SafetensorsFile(path: padded).metadata["k"], "v")
    }

    func testTypedAccessErrorsNameTheTensor() throws {
        let f = try SafetensorsFile(path: Self.fixture)
        XCTAssertThrowsError(try f.tensor(named: "label")) { XCTAssertTrue("\($0)".contains("\"label\" is I64")) }
        XCTAssertThrowsError(try f.int64Array(named: "half")) { XCTAssertTrue("\($0)".contains("\"half\" is F16")) }
        XCTAssertThrowsError(try f.uint8Array(named: "i8")) { XCTAssertTrue("\($0)".contains("not U8")) }
        XCTAssertThrowsError(try f.tensor(named: "nope")) { e in
            XCTAssertTrue("\(e)".contains("no tensor named \"nope\"") && "\(e)".contains(Self.fixture))
        }
    }

    /// Every truncation and many single-byte corruptions of a valid file are either refused
    /// with an error or read consistently: never a crash.
    func testTruncatedAndCorruptedFilesNeverCrash() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        for length in 0..<good.count {
            let path = dir + "/cut\(length)"
            put([UInt8](good.prefix(length)), path)
            XCTAssertThrowsError(try SafetensorsFile(path: path), "truncated to \(length)")
            unlink(path)
        }
        var rng = RandomGenerator(seed: 7)
        for trial in 0..<400 {
            var bytes = [UInt8](good)
            let at = Int(rng.next() % UInt64(min(bytes.count, 600)))
            bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            let path = dir + "/flip\(trial)"
            put(bytes, path)
            defer { unlink(path) }
            if let f = try? SafetensorsFile(path: path) {
                for name in f.names {
                    let e = try f.entry(name)
                    if e.dtype.isFloatingPoint {
                        XCTAssertEqual(try f.tensor(named: name).count, e.count, "trial \(trial)")
                    } else {
                        XCTAssertEqual(try f.rawBytes(named: name).count, e.byteCount, "trial \(trial)")
                    }
                }
            }
        }
    }
}
