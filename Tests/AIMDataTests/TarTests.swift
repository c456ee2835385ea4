import AIMData
import AIMTensor
import Foundation
import XCTest

/// Tests/Fixtures/tar, written by tools/make_tar_fixtures.py with Python's tarfile.
func tarFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tar/\(name)").path
}

func fileBytes(_ path: String) -> [UInt8] { [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()) }

final class TarTests: XCTestCase {
    func testSHA256KnownVectors() throws {
        // FIPS 180-4 examples.
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streamed in uneven pieces = in one piece.
        let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var s = SHA256()
        s.update(data[0..<3]); s.update(data[3..<130]); s.update(data[130...])
        XCTAssertEqual(s.finalize().map { String(format: "%02x", $0) }.joined(), SHA256.hex(data))
    }

    func testWriteThenIndexRoundTripsEveryKindOfName() throws {
        let dir = scratchDir("tar-roundtrip")
        let names = ["a.cls", String(repeating: "long", count: 30) + ".mp4", "dir/sub/x.json", "ünïcode.txt", "empty.bin",
                     String(repeating: "p", count: 100)]
        let datas: [[UInt8]] = names.indices.map { i in i == 4 ? [] : (0..<(i * 700 + 3)).map { UInt8(truncatingIfNeeded: $0 &+ i) } }
        func write(_ path: String) throws -> TarWriter {
            let w = try TarWriter(path: path)
            for (n, d) in zip(names, datas) { try w.add(name: n, data: d) }
            try w.finish()
            return w
        }
        let w = try write(dir + "/a.tar")
        let bytes = fileBytes(dir + "/a.tar")
        XCTAssertEqual(bytes.count % Tar.record, 0)
        XCTAssertEqual(Int64(bytes.count), w.bytesWritten)
        XCTAssertEqual(w.sha256Hex, SHA256.hex(bytes))
        let members = try Tar.members(ofArchive: dir + "/a.tar")
        XCTAssertEqual(members, w.members)
        XCTAssertEqual(members.map(\.name), names)
        for (m, d) in zip(members, datas) { XCTAssertEqual(Array(bytes[Int(m.offset)..<Int(m.offset + m.size)]), d, m.name) }
        // Same input, same bytes.
        _ = try write(dir + "/b.tar")
        XCTAssertEqual(fileBytes(dir + "/b.tar"), bytes)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a.tar.tmp-\(getpid())"))
    }

    /// Our writer and Python's tarfile (PAX format, mtime 0, mode 0644) give the same bytes for
    /// the same members, long names included.
    func testWriterMatchesPythonTarfileByteForByte() throws {
        let py = tarFixture("webdataset_layout.tar")
        let pyBytes = fileBytes(py)
        XCTAssertGreaterThan(pyBytes.count, 0, "fixture \(py) missing")
        let members = try Tar.members(ofArchive: py)
        XCTAssertEqual(members.count, 6)
        XCTAssertEqual(members[3].name.count, 124)  // 120-character key + ".cls": a pax path record
        let out = scratchDir("tar-python") + "/ours.tar"
        let w = try TarWriter(path: out)
        for m in members { try w.add(name: m.name, data: Array(pyBytes[Int(m.offset)..<Int(m.offset + m.size)])) }
        try w.finish()
        let ours = fileBytes(out)
        XCTAssertEqual(ours.count, pyBytes.count)
        let firstDiff = zip(ours, pyBytes).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
        XCTAssertNil(firstDiff, "first differing byte: \(firstDiff ?? -1)")
    }

    func testReadsGNULongNamesAndUstarPrefixes() throws {
        let long = "dir_" + String(repeating: "n", count: 120) + "/x.txt"
        for (file, content) in [("gnu_longname.tar", "gnu"), ("ustar_prefix.tar", "ustar")] {
            let path = tarFixture(file)
            let m = try Tar.members(ofArchive: path)
            XCTAssertEqual(m.map(\.name), [long], file)
            let b = fileBytes(path)
            XCTAssertEqual(String(decoding: b[Int(m[0].offset)..<Int(m[0].offset + m[0].size)], as: UTF8.self), content, file)
        }
    }

    func testTruncatedAndForeignFilesAreNamedErrors() throws {
        let dir = scratchDir("tar-bad")
        let w = try TarWriter(path: dir + "/ok.tar")
        try w.add(name: "a.mp4", data: [UInt8](repeating: 7, count: 3000))
        try w.add(name: "b.mp4", data: [UInt8](repeating: 8, count: 3000))
        try w.finish()
        let b = fileBytes(dir + "/ok.tar")
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/cut.tar", contents: Data(b.prefix(4000))))
        XCTAssertThrowsError(try Tar.members(ofArchive: dir + "/cut.tar")) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/text.tar", contents: Data(String(repeating: "not a tar ", count: 100).utf8)))
        XCTAssertThrowsError(try Tar.members(ofArchive: dir + "/text.tar")) { e in
            XCTAssertTrue("\(e)".contains("no valid tar header at byte 0"), "\(e)")
        }
        XCTAssertThrowsError(try Tar.members(ofArchive: dir + "/none.tar")) { e in
            XCTAssertTrue("\(e)".contains("none.tar"), "\(e)")
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/z.tar", contents: Data([0x1f, 0x8b, 8, 0, 0, 0, 0, 0])))
        XCTAssertThrowsError(try ShardIndex.build(shard: dir + "/z.tar")) { e in
            XCTAssertTrue("\(e)".contains("gzip-compressed"), "\(e)")
        }
    }

    func testIndexTextRoundTripsAndDetectsAShardItDoesNotDescribe() throws {
        let dir = scratchDir("tar-index")
        let w = try TarWriter(path: dir + "/s.tar")
        try w.add(name: "x y.mp4", data: [UInt8](repeating: 1, count: 1500))
        try w.add(name: "z.cls", data: Array("4".utf8))
        try w.finish()
        let idx = try ShardIndex.build(shard: dir + "/s.tar")
        XCTAssertEqual(try ShardIndex.parse(idx.text(), file: "t"), idx)
        XCTAssertNil(idx.mismatch(shard: dir + "/s.tar"))
        var shifted = idx
        shifted.members[0].offset += 512
        XCTAssertNotNil(shifted.mismatch(shard: dir + "/s.tar"))
        var resized = idx
        resized.members[1].size = 2
        XCTAssertNotNil(resized.mismatch(shard: dir + "/s.tar"))
        // An index next to a shard that changed since is refused, naming both.
        try FileOutput.write(idx.text(), to: dir + "/s.idx")
        let a = try AppendFile(path: dir + "/s.tar")
        try a.append([UInt8](repeating: 0, count: Tar.record))
        XCTAssertThrowsError(try ShardIndex.load(shard: dir + "/s.tar", cacheDir: nil)) { e in
            XCTAssertTrue("\(e)".contains("index does not match its shard"), "\(e)")
        }
        XCTAssertThrowsError(try ShardIndex.parse("something else\n", file: "f.idx"))
    }

    func testBraceExpansionAsWebDatasetWritesIt() throws {
        XCTAssertEqual(try ShardDataset.expandBraces("d/train-{000000..000002}.tar"),
                       ["d/train-000000.tar", "d/train-000001.tar", "d/train-000002.tar"])
        XCTAssertEqual(try ShardDataset.expandBraces("s-{8..11}.tar"), ["s-8.tar", "s-9.tar", "s-10.tar", "s-11.tar"])
        XCTAssertEqual(try ShardDataset.expandBraces("{a,b}-{0..1}.tar"), ["a-0.tar", "a-1.tar", "b-0.tar", "b-1.tar"])
        XCTAssertEqual(try ShardDataset.expandBraces("plain.tar"), ["plain.tar"])
        XCTAssertThrowsError(try ShardDataset.expandBraces("x-{3..1}.tar"))
        XCTAssertThrowsError(try ShardDataset.expandBraces("x-{0..2.tar"))
    }
}
