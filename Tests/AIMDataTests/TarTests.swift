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

    /// A 512-byte header built field by field from the POSIX/GNU layout (name 0, mode 100, size
    /// 124 in octal, type flag 156, magic 257; checksum 148: the sum of all bytes with that field
    /// as spaces, six octal digits, NUL, space), independent of our writer.
    func rawHeader(name: String, size: Int, type: UInt8, magic: String?) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: Tar.block)
        func put(_ s: String, _ at: Int) { for (i, b) in s.utf8.enumerated() { h[at + i] = b } }
        put(name, 0); put("0000644", 100); put("0000000", 108); put("0000000", 116)
        put(String(size, radix: 8).leftPadded(11), 124); put("00000000000", 136)
        h[156] = type
        if let magic { put(magic, 257) }
        for i in 148..<156 { h[i] = 0x20 }
        put(String(h.reduce(0) { $0 + Int($1) }, radix: 8).leftPadded(6), 148)
        h[154] = 0
        return h
    }

    /// GNU tar's own archives, as `tar -cf x.tar -C dir .` writes them: a long name in a
    /// `././@LongLink` (type L) entry that names only the member after it, names that start with
    /// `./`, and an old v7 header whose type flag is NUL for a regular file.
    func testReadsGNUTarLongLinksDotSlashNamesAndV7Files() throws {
        let long = "dir_" + String(repeating: "n", count: 120) + "/x.mp4"
        func data(_ s: String) -> [UInt8] { Array(s.utf8) + [UInt8](repeating: 0, count: Tar.padding(Int64(s.utf8.count))) }
        var b: [UInt8] = []   // each part's offset in the archive on the right
        b += rawHeader(name: "././@LongLink", size: long.utf8.count + 1, type: UInt8(ascii: "L"), magic: "ustar  ")  // 0
        b += data(long + "\u{0}")                                                                             // 512
        b += rawHeader(name: String(long.prefix(100)), size: 3, type: UInt8(ascii: "0"), magic: "ustar  ")  // 1024
        b += data("gnu")                                                                                      // 1536
        b += rawHeader(name: "b.cls", size: 1, type: UInt8(ascii: "0"), magic: "ustar  ")                   // 2048
        b += data("7")                                                                                        // 2560
        b += rawHeader(name: "./c.mp4", size: 6, type: UInt8(ascii: "0"), magic: "ustar  ")                 // 3072
        b += data("second")                                                                                   // 3584
        b += rawHeader(name: "old.txt", size: 2, type: 0, magic: nil)                                         // 4096
        b += data("v7")                                                                                       // 4608
        b += [UInt8](repeating: 0, count: 2 * Tar.block)
        let path = scratchDir("tar-gnu") + "/gnu.tar"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(b)))
        XCTAssertEqual(try Tar.members(ofArchive: path), [
            TarMember(name: long, offset: 1536, size: 3),
            TarMember(name: "b.cls", offset: 2560, size: 1),
            TarMember(name: "c.mp4", offset: 3584, size: 6),
            TarMember(name: "old.txt", offset: 4608, size: 2),
        ])
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

    /// Only the first and last member are checked against their tar headers, so the order of the
    /// index is what catches a middle member that points into its neighbour or entries that go
    /// backwards: the decoder would be handed another member's bytes.
    func testIndexWithMembersOverlappingOrOutOfOrderIsRefused() throws {
        let dir = scratchDir("tar-order")
        let w = try TarWriter(path: dir + "/s.tar")
        for n in ["a.mp4", "b.mp4", "c.mp4"] { try w.add(name: n, data: [UInt8](repeating: 1, count: 1000)) }
        try w.finish()
        let idx = try ShardIndex.build(shard: dir + "/s.tar")
        XCTAssertNil(idx.mismatch(shard: dir + "/s.tar"))
        var overlapping = idx
        overlapping.members[1].offset = idx.members[0].offset + 512   // inside a.mp4
        XCTAssertEqual(overlapping.mismatch(shard: dir + "/s.tar"),
                       "member b.mp4 at \(idx.members[0].offset + 512)+1000 lies outside the archive or out of order")
        var backwards = idx
        backwards.members.swapAt(0, 1)
        XCTAssertEqual(backwards.mismatch(shard: dir + "/s.tar"),
                       "member a.mp4 at \(idx.members[0].offset)+1000 lies outside the archive or out of order")
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

private extension String {
    /// `self` with leading zeros up to `width` characters.
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
