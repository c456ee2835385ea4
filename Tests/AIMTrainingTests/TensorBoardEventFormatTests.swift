import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// The TensorBoard event format on its own: the Event encoding against TensorBoard's protobuf
/// classes, the reader's CRC and framing checks, and how `TensorBoardLog` trims a work dir's
/// events when a run continues from an earlier step.
final class TensorBoardEventFormatTests: XCTestCase {
    lazy var dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("tb-format-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }()

    func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// Expected bytes printed by tensorboard 2.21's `event_pb2.Event(...).SerializeToString()`
    /// for the same fields.
    func testEncodingMatchesTensorBoardsProtobuf() throws {
        let scalars = TensorBoardEvent(wallTime: 1.5, step: 300, scalars: [TensorBoardScalar("train/loss", 0.25), TensorBoardScalar("val/top1", -2)])
        let scalarsBytes = bytes(hex: "09000000000000f83f10ac022a240a110a0a747261696e2f6c6f7373150000803e0a0f0a0876616c2f746f703115000000c0")
        XCTAssertEqual(scalars.encoded(), scalarsBytes)
        XCTAssertEqual(try TensorBoardEvent(decoding: scalarsBytes), scalars)

        let header = TensorBoardEvent(wallTime: 1_700_000_000.25, fileVersion: "brain.Event:2")
        let headerBytes = bytes(hex: "0900001040fc54d9411a0d627261696e2e4576656e743a32")
        XCTAssertEqual(header.encoded(), headerBytes)
        XCTAssertEqual(try TensorBoardEvent(decoding: headerBytes), header)
    }

    /// Fields we do not write (a graph, a session log, an image value) are skipped, not errors.
    func testDecodingSkipsOtherFields() throws {
        let e = TensorBoardEvent(wallTime: 2, step: 7, scalars: [TensorBoardScalar("a", 1)])
        // field 4 (graph_def) bytes "xyz"; field 7 as a varint; field 9 as fixed32
        let extra: [UInt8] = [0x22, 3, 0x78, 0x79, 0x7A, 0x38, 0x96, 0x01, 0x4D, 1, 2, 3, 4]
        // a summary value with a tag and an image (field 4), no simple_value: not a scalar
        let imageValue: [UInt8] = [0x2A, 9, 0x0A, 7, 0x0A, 1, 0x62, 0x22, 2, 0x01, 0x02]
        let decoded = try TensorBoardEvent(decoding: extra + e.encoded() + imageValue)
        XCTAssertEqual(decoded, e)
        XCTAssertThrowsError(try TensorBoardEvent(decoding: [0x0A, 5, 1]), "a length past the end")
        XCTAssertThrowsError(try TensorBoardEvent(decoding: [0x0B]), "wire type 3 (groups) is not ours")
    }

    func write(_ events: [TensorBoardEvent], _ name: String = "events.out.tfevents.1.test") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try FileOutput.write(TensorBoardEventFile.encode(events), to: url.path)
        return url
    }

    func threeEvents() -> [TensorBoardEvent] {
        [TensorBoardEvent(wallTime: 1, fileVersion: TensorBoardEvent.fileVersion2),
         TensorBoardEvent(wallTime: 2, step: 1, scalars: [TensorBoardScalar("train/loss", 1.5)]),
         TensorBoardEvent(wallTime: 3, step: 2, scalars: [TensorBoardScalar("train/loss", 1.25), TensorBoardScalar("train/lr", 3e-4)])]
    }

    /// Damage anywhere (either CRC, a truncated record, a payload that is not an Event) is
    /// refused with the file and the byte offset of the bad record; the records before it read.
    func testReaderRejectsCorruptedRecords() throws {
        let events = threeEvents()
        let url = try write(events)
        XCTAssertEqual(try TensorBoardEventFile.read(url), events)
        let good = [UInt8](try Data(contentsOf: url))
        let second = TFRecord.frame(events[0].encoded()).count, third = second + TFRecord.frame(events[1].encoded()).count

        func expectDamage(_ bytes: [UInt8], at offset: Int, _ reason: String, before: Int, _ what: String) throws {
            let bad = dir.appendingPathComponent("bad")
            try FileOutput.write(bytes, to: bad.path)
            XCTAssertThrowsError(try TensorBoardEventFile.read(bad), what) { error in
                let e = error as? TensorBoardEventError
                XCTAssertEqual(e?.offset, offset, what)
                XCTAssertEqual(e?.path, bad.path, what)
                XCTAssertTrue(e?.reason.contains(reason) == true, "\(what): \(error)")
            }
            let (prefix, damage) = try TensorBoardEventFile.readPrefix(bad)
            XCTAssertEqual(prefix, Array(events.prefix(before)), what)
            XCTAssertNotNil(damage, what)
        }
        var b = good; b[second + 12 + 3] ^= 0x01
        try expectDamage(b, at: second, "payload CRC mismatch", before: 1, "a flipped payload bit")
        b = good; b[second] ^= 0x40
        try expectDamage(b, at: second, "length CRC mismatch", before: 1, "a flipped length bit")
        b = good; b[second + 9] ^= 0xFF
        try expectDamage(b, at: second, "length CRC mismatch", before: 1, "a damaged length CRC")
        b = good; b[good.count - 1] ^= 0x80
        try expectDamage(b, at: third, "payload CRC mismatch", before: 2, "a damaged payload CRC")
        try expectDamage(Array(good.dropLast(3)), at: third, "truncated record", before: 2, "a cut last record")
        try expectDamage(good + [1, 2, 3], at: good.count, "truncated record header", before: 3, "a few stray bytes")
        try expectDamage(good + TFRecord.frame([0xFF, 0xFF]), at: good.count, "not an Event", before: 3, "a payload that is no Event")
    }

    // MARK: - Continuing a run

    func allEvents() throws -> [(file: String, event: TensorBoardEvent)] {
        try TensorBoardEventFile.files(in: dir.appendingPathComponent("tensorboard")).flatMap { url in
            try TensorBoardEventFile.read(url).map { (url.lastPathComponent, $0) }
        }
    }

    func steps(_ tag: String) throws -> [Int64] {
        try allEvents().filter { $0.event.scalars.contains { $0.tag == tag } }.map(\.event.step)
    }

    func log(after step: Int, at seconds: Double, _ messages: inout [String]) throws -> TensorBoardLog {
        var heard: [String] = []
        let l = try TensorBoardLog(workDir: dir, continuingAfter: step, now: Date(timeIntervalSince1970: seconds)) { heard.append($0) }
        messages = heard
        return l
    }

    func train(_ l: TensorBoardLog, _ steps: ClosedRange<Int>, loss: Double) {
        for s in steps {
            l.record(["mode": "train", "step": s, "loss": loss + Double(s), "lr": 1e-3, "clips_per_s": 10.0, "time": 0.5, "data_time": 0.1, "epoch": 0])
            if s % 3 == 0 { l.record(["mode": "val", "step": s, "top1": 0.5, "top5": 1.0, "mean_class_accuracy": 0.5, "videos": 8]) }
        }
    }

    /// A run that continues from step 4 removes the later steps an earlier run wrote (a new
    /// file, the old one rewritten); one continuing within the same second appends to the file of
    /// that name; one starting from 0 replaces everything.
    func testContinuingTrimsLaterStepsAndKeepsOrder() throws {
        var messages: [String] = []
        do { let a = try log(after: 0, at: 1000, &messages); train(a, 1...6, loss: 0) }
        XCTAssertEqual(try steps("train/loss"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try steps("val/top1"), [3, 6])

        do {
            let b = try log(after: 4, at: 2000, &messages)
            XCTAssertEqual(messages.count, 1, "\(messages)")
            XCTAssertTrue(messages.first?.contains("removed 3 event(s) after step 4") == true, "\(messages)")
            train(b, 5...8, loss: 100)
        }
        var all = try allEvents()
        XCTAssertEqual(Set(all.map(\.file)), ["events.out.tfevents.1000.\(hostName())", "events.out.tfevents.2000.\(hostName())"])
        XCTAssertEqual(all.filter { $0.event.fileVersion == "brain.Event:2" }.count, 2, "one header per file")
        XCTAssertEqual(try steps("train/loss"), [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try steps("val/top1"), [3, 6])
        let losses = all.compactMap { e in e.event.scalars.first { $0.tag == "train/loss" }.map { (e.event.step, $0.value) } }
        XCTAssertEqual(losses.map(\.1), [1, 2, 3, 4, 105, 106, 107, 108], "steps 5 and 6 are the second run's")

        // The same second as the last file: its name is taken, so the trimmed file is appended to.
        do { let c = try log(after: 6, at: 2000, &messages); train(c, 7...9, loss: 200) }
        all = try allEvents()
        XCTAssertEqual(Set(all.map(\.file)).count, 2)
        XCTAssertEqual(all.filter { $0.event.fileVersion != nil }.count, 2, "no second header in an appended file")
        XCTAssertEqual(try steps("train/loss"), [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(try steps("val/top1"), [3, 6, 9])

        // A fresh start (step 0) in the same work dir: the old run's events all go.
        do {
            let d = try log(after: 0, at: 3000, &messages)
            XCTAssertEqual(messages.filter { $0.contains("removed") }.count, 2, "\(messages)")
            train(d, 1...2, loss: 300)
        }
        all = try allEvents()
        XCTAssertEqual(Set(all.map(\.file)), ["events.out.tfevents.3000.\(hostName())"])
        XCTAssertEqual(try steps("train/loss"), [1, 2])
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tensorboard").path)
        XCTAssertFalse(names.contains { $0.hasPrefix(".rewrite-") }, "no temporary left: \(names)")
    }

    /// A writer killed mid-record leaves a damaged tail: the next run cuts it off.
    func testDamagedTailIsCutWhenTheRunContinues() throws {
        var messages: [String] = []
        let file: URL
        do { let a = try log(after: 0, at: 1000, &messages); train(a, 1...3, loss: 0); file = a.file }
        let tail = TFRecord.frame(TensorBoardEvent(wallTime: 1, step: 4, scalars: [TensorBoardScalar("train/loss", 9)]).encoded())
        let append = try AppendFile(path: file.path)
        try append.append(Array(tail.prefix(tail.count - 5)))
        XCTAssertThrowsError(try TensorBoardEventFile.read(file))

        do {
            _ = try log(after: 3, at: 2000, &messages)
            XCTAssertTrue(messages.contains { $0.contains("damaged tail") }, "\(messages)")
        }
        XCTAssertEqual(try TensorBoardEventFile.read(file).map(\.step), [0, 1, 2, 3, 3], "header, steps 1-3 and the val event at 3")
    }

    /// Records that are not train or val, or carry none of the scalar keys, write nothing.
    func testEventOfARecord() throws {
        let e = try XCTUnwrap(TensorBoardLog.event(for: ["mode": "train", "step": 12, "loss": 0.5, "lr": 2e-3, "epoch": 1,
                                                          "clips_per_s": 40, "time": 0.2, "data_time": 0.01, "skipped": 0], wallTime: 5))
        XCTAssertEqual(e.step, 12)
        XCTAssertEqual(e.scalars, [TensorBoardScalar("train/loss", 0.5), TensorBoardScalar("train/lr", 2e-3), TensorBoardScalar("train/clips_per_s", 40),
                                   TensorBoardScalar("train/time", 0.2), TensorBoardScalar("train/data_time", 0.01)])
        XCTAssertNil(TensorBoardLog.event(for: ["mode": "other", "step": 1, "loss": 1.0], wallTime: 0))
        XCTAssertNil(TensorBoardLog.event(for: ["mode": "val", "step": 1, "videos": 3], wallTime: 0))
        XCTAssertNil(TensorBoardLog.event(for: ["mode": "val", "top1": 0.5], wallTime: 0), "no step")
    }

    func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        _ = gethostname(&buf, 255)
        return String(cString: buf)
    }
}
