import AIMReport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `aim-report curves`: four well-formed SVG charts with one line per run; records of steps a
/// resumed run computed again replace the earlier ones; a missing, empty or corrupt
/// metrics.jsonl is one error naming the file (and the line).
final class CurvesTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    lazy var dir: URL = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("curves-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }()

    /// A work dir whose metrics.jsonl holds `lines` (records as aim-train writes them).
    func workDir(_ name: String, _ lines: [String]) throws -> URL {
        let wd = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: wd, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).write(to: wd.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        return wd
    }

    func trainLine(_ step: Int, loss: Double) -> String {
        "{\"bytes_allreduced\":4,\"clips_per_s\":\(100 + step),\"data_time\":0.01,\"epoch\":0,\"loss\":\(loss),\"lr\":\(0.001 * Double(step)),\"mode\":\"train\",\"skipped\":0,\"step\":\(step),\"time\":0.1}"
    }

    func valLine(_ step: Int, top1: Double) -> String {
        "{\"epoch\":0,\"mean_class_accuracy\":\(top1),\"mode\":\"val\",\"skipped\":0,\"step\":\(step),\"top1\":\(top1),\"top5\":1,\"videos\":8}"
    }

    /// A run of `steps` with a val record every 5 steps.
    func run(_ steps: ClosedRange<Int>, loss: Double) -> [String] {
        steps.flatMap { s in [trainLine(s, loss: loss - 0.01 * Double(s))] + (s % 5 == 0 ? [valLine(s, top1: 0.05 * Double(s))] : []) }
    }

    /// Elements by name, read with Foundation's XML parser (which fails on malformed XML).
    final class Counter: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var titles: [String] = []
        var inTitle = false
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            counts[name, default: 0] += 1
            inTitle = name == "title"
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { if inTitle { titles.append(string) } }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { inTitle = false }
    }

    func parse(_ url: URL) throws -> Counter {
        let parser = try XCTUnwrap(XMLParser(contentsOf: url))
        let counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "\(url.lastPathComponent) is not well-formed XML: \(String(describing: parser.parserError))")
        return counter
    }

    func testChartsAreWellFormedWithOneLinePerRun() throws {
        let a = try workDir("tiny_aim", run(1...20, loss: 1.4))
        // Stopped after step 12, its checkpoint of step 10 resumed: steps 11-12 are logged twice.
        let b = try workDir("tiny_space_only", run(1...12, loss: 1.5) + run(11...20, loss: 1.3))
        let out = dir.appendingPathComponent("curves")
        var notes: [String] = []
        let files = try Curves.write(workDirs: [a, b], to: out) { notes.append($0) }
        XCTAssertEqual(files.map(\.lastPathComponent), ["loss.svg", "lr.svg", "throughput.svg", "val_top1.svg"])
        XCTAssertEqual(notes, [])
        for f in files {
            let c = try parse(f)
            XCTAssertEqual(c.counts["svg"], 1, f.lastPathComponent)
            XCTAssertEqual(c.counts["polyline"], 2, "\(f.lastPathComponent): one line per run")
            XCTAssertEqual(Set(c.titles.filter { $0.hasPrefix("tiny") }), ["tiny_aim", "tiny_space_only"], f.lastPathComponent)
            let text = try String(contentsOf: f, encoding: .utf8)
            XCTAssertTrue(text.contains(">tiny_aim</text>") && text.contains(">tiny_space_only</text>"), "\(f.lastPathComponent): the legend names both work dirs")
        }
        // 20 train points per run; 4 val points (steps 5, 10, 15, 20).
        XCTAssertEqual(try parse(out.appendingPathComponent("loss.svg")).counts["circle"], 40)
        XCTAssertEqual(try parse(out.appendingPathComponent("val_top1.svg")).counts["circle"], 8)
    }

    /// Steps a resumed run computed again replace the earlier records, so every step appears
    /// once and in order; a run started over from step 1 replaces the whole earlier run.
    func testLaterRecordsOfAStepReplaceEarlierOnes() throws {
        let wd = try workDir("resumed", run(1...12, loss: 1.5) + run(11...20, loss: 1.3))
        let records = try Curves.read(workDir: wd)
        let train = records.filter { $0.mode == "train" }
        XCTAssertEqual(train.map(\.step), Array(1...20))
        XCTAssertEqual(train.first { $0.step == 11 }?.values["loss"] ?? 0, 1.3 - 0.11, accuracy: 1e-12, "the resumed run's record")
        XCTAssertEqual(train.first { $0.step == 10 }?.values["loss"] ?? 0, 1.5 - 0.10, accuracy: 1e-12)
        XCTAssertEqual(records.filter { $0.mode == "val" }.map(\.step), [5, 10, 15, 20])

        let restarted = try workDir("restarted", run(1...8, loss: 1.5) + run(1...3, loss: 9))
        XCTAssertEqual(try Curves.read(workDir: restarted).map(\.step), [1, 2, 3])
        XCTAssertEqual(try Curves.read(workDir: restarted).first?.values["loss"] ?? 0, 9 - 0.01, accuracy: 1e-12)
    }

    func testBadMetricsFilesAreNamedWithTheLine() throws {
        func expectError(_ wd: URL, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try Curves.write(workDirs: [wd], to: dir.appendingPathComponent("out")), file: file, line: line) { error in
                let text = "\(error)"
                for p in parts { XCTAssertTrue(text.contains(p), "\(text) should contain \(p)", file: file, line: line) }
            }
        }
        let missing = dir.appendingPathComponent("missing")
        expectError(missing, [missing.appendingPathComponent("metrics.jsonl").path, "no such file"])
        let empty = try workDir("empty", [])
        expectError(empty, [empty.path + "/metrics.jsonl", "empty"])
        let blank = try workDir("blank", ["", "  "])
        expectError(blank, ["blank/metrics.jsonl", "empty"])
        let cut = try workDir("cut", [trainLine(1, loss: 1), trainLine(2, loss: 1), "{\"mode\":\"train\",\"step\":3,\"lo"])
        expectError(cut, [cut.path + "/metrics.jsonl:3:", "not a JSON object"])
        // Without its newline the cut line is one a killed run was writing (aim-train drops it on
        // resume): the curve so far is drawn.
        let killed = dir.appendingPathComponent("killed")
        try FileManager.default.createDirectory(at: killed, withIntermediateDirectories: true)
        try (trainLine(1, loss: 1) + "\n" + trainLine(2, loss: 1) + "\n{\"mode\":\"train\",\"st").write(
            to: killed.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Curves.read(workDir: killed).map(\.step), [1, 2])
        let noStep = try workDir("nostep", [trainLine(1, loss: 1), "{\"mode\":\"train\",\"loss\":1}"])
        expectError(noStep, ["nostep/metrics.jsonl:2:", "\"step\""])
        let noMode = try workDir("nomode", ["[1,2]"])
        expectError(noMode, ["nomode/metrics.jsonl:1:", "not a JSON object"])
        // Text or null where a charted number belongs was dropped without a word, and another mode
        // drew nothing with exit 0; the strings aim-train writes for non-finite values stay fine.
        let text = try workDir("text", [trainLine(1, loss: 1), "{\"mode\":\"train\",\"step\":2,\"loss\":\"oops\",\"lr\":0.1}"])
        expectError(text, ["text/metrics.jsonl:2:", "\"loss\" is \"oops\", not a number"])
        let null = try workDir("null", ["{\"mode\":\"train\",\"step\":1,\"loss\":null}"])
        expectError(null, ["null/metrics.jsonl:1:", "\"loss\" is null"])
        let mode = try workDir("mode", ["{\"mode\":\"nonsense\",\"step\":1,\"loss\":1}"])
        expectError(mode, ["mode/metrics.jsonl:1:", "mode \"nonsense\""])
        let nonFinite = try workDir("nonfinite", [trainLine(1, loss: 1), "{\"mode\":\"train\",\"step\":2,\"loss\":\"nan\",\"lr\":\"inf\"}"])
        XCTAssertEqual(try Curves.read(workDir: nonFinite).map(\.step), [1, 2])
        let bigStep = try workDir("bigstep", ["{\"mode\":\"train\",\"step\":9223372036854775807,\"loss\":1}"])
        XCTAssertEqual(try Curves.read(workDir: bigStep).map(\.step), [Int.max])
        let folder = dir.appendingPathComponent("folder")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("metrics.jsonl"), withIntermediateDirectories: true)
        expectError(folder, ["folder/metrics.jsonl", "a folder"])
        // A good run beside a bad one: the bad one stops the command, nothing is half-written.
        let good = try workDir("good", run(1...5, loss: 1))
        XCTAssertThrowsError(try Curves.write(workDirs: [good, cut], to: dir.appendingPathComponent("out2")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out2").path))
    }

    /// A run without val records still gets its lines in the other charts; the val chart says so.
    func testARunWithoutValidationIsNoted() throws {
        let a = try workDir("with_val", run(1...10, loss: 1))
        let b = try workDir("no_val", (1...10).map { trainLine($0, loss: 1) })
        var notes: [String] = []
        let files = try Curves.write(workDirs: [a, b], to: dir.appendingPathComponent("out")) { notes.append($0) }
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes.first?.contains("val_top1.svg") == true && notes.first?.contains("no_val") == true, "\(notes)")
        let val = try parse(files[3])
        XCTAssertEqual(val.counts["polyline"], 1)
        XCTAssertTrue(try String(contentsOf: files[3], encoding: .utf8).contains("no_val (no data)"))
        XCTAssertEqual(try parse(files[0]).counts["polyline"], 2)
    }

    /// The command line: written files on stdout, a bad work dir as one line with status 1.
    func testCommandLine() throws {
        let exe = [Bundle(for: CurvesTests.self).bundleURL.deletingLastPathComponent().appendingPathComponent("aim-report"),
                   Self.root.appendingPathComponent("bin/aim-report")].first { FileManager.default.isExecutableFile(atPath: $0.path) }
        let tool = try XCTUnwrap(exe, "aim-report is not built; run swift build -c release first")
        func launch(_ args: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = tool
            p.arguments = args
            let pipe = Pipe()
            p.standardOutput = pipe; p.standardError = pipe
            try p.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let a = try workDir("a", run(1...6, loss: 1)), out = dir.appendingPathComponent("cli")
        var (status, text) = try launch(["curves", a.path, "--out", out.path])
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("wrote ") }.count, 4, text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("throughput.svg").path))
        (status, text) = try launch(["curves", a.path, dir.appendingPathComponent("nothing").path, "--out", out.path])
        XCTAssertEqual(status, 1, text)
        XCTAssertTrue(text.contains("aim-report: error: ") && text.contains("nothing/metrics.jsonl: no such file"), text)
    }

    /// A run resumed from a checkpoint one step before a validation logs that step's train record
    /// again: the train record is replaced, and the validation of that step (same weights: the
    /// resume is exact) stays until the resumed run writes its own.
    func testARepeatedTrainRecordKeepsTheValidationOfItsStep() throws {
        let wd = try workDir("resumed-at-val", run(1...10, loss: 1.5) + [trainLine(10, loss: 7), trainLine(11, loss: 7)])
        let records = try Curves.read(workDir: wd)
        XCTAssertEqual(records.filter { $0.mode == "val" }.map(\.step), [5, 10])
        XCTAssertEqual(records.filter { $0.mode == "train" }.map(\.step), Array(1...11))
        XCTAssertEqual(records.first { $0.mode == "train" && $0.step == 10 }?.values["loss"], 7)
    }
}

extension CurvesTests {
    /// The y axis's tick labels, bottom to top.
    func yTicks(_ svg: URL) throws -> [String] {
        let text = try String(contentsOf: svg, encoding: .utf8)
        let regex = try NSRegularExpression(pattern: #"text-anchor="end">([^<]*)</text>"#)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range(at: 1), in: text)!]) }
    }

    /// Every tick names its own value: a loss near 0.01 under two decimals read 0.00 0.00 0.01
    /// 0.01, and 12.5 % read 12 %. Top-1 spans 0–100 %, so a run stuck at 25 % is not drawn at the top.
    func testTickLabelsNameTheirValues() throws {
        let lines = (1...10).flatMap { s in
            [trainLine(s, loss: 0.0012 * Double(11 - s)), valLine(s, top1: s > 5 ? 0.125 : 0)]
        }
        let out = dir.appendingPathComponent("ticks")
        _ = try Curves.write(workDirs: [try workDir("small", lines)], to: out) { _ in }
        XCTAssertEqual(try yTicks(out.appendingPathComponent("loss.svg")), ["0.00", "0.01", "0.02"])
        XCTAssertEqual(try yTicks(out.appendingPathComponent("val_top1.svg")), ["0%", "20%", "40%", "60%", "80%", "100%"])
    }
}

extension CurvesTests {
    /// mmaction2's log.json names, for its analyze_logs.py: epoch from 1 and iter within it,
    /// loss_cls, top1_acc, top5_acc, memory; a validation carries the lr of its step.
    func testMMActionLogNamesTheFieldsAsMMAction2() throws {
        let lines = [
            "{\"mode\":\"train\",\"step\":4,\"epoch\":1,\"iter\":4,\"loss\":1.5,\"top1\":0.5,\"lr\":0.002,\"time\":0.1,\"data_time\":0.01,\"memory_mb\":900}",
            "{\"mode\":\"val\",\"step\":4,\"epoch\":1,\"iter\":4,\"top1\":0.25,\"top5\":1,\"mean_class_accuracy\":0.2}",
            "{\"mode\":\"train\",\"step\":5,\"epoch\":2,\"iter\":1,\"loss\":1.4,\"lr\":0.001,\"time\":0.1,\"data_time\":0.01,\"memory_mb\":901}",
        ]
        let records = try Curves.read(workDir: try workDir("mmlog", lines))
        var notes: [String] = []
        var out = MMActionLog.lines(records, run: "work_dirs/mmlog") { notes.append($0) }.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(notes, [])
        XCTAssertNil(out.removeFirst()["epoch"], "the first line is the run's info, as mmcv's")
        XCTAssertEqual(out.count, 3)
        XCTAssertEqual(out[0]["loss_cls"] as? Double, 1.5); XCTAssertEqual(out[0]["memory"] as? Double, 900)
        XCTAssertEqual(out[0]["top1_acc"] as? Double, 0.5)
        XCTAssertEqual(out[0]["epoch"] as? Int, 1); XCTAssertEqual(out[0]["iter"] as? Int, 4)
        XCTAssertEqual(out[1]["mode"] as? String, "val"); XCTAssertEqual(out[1]["top1_acc"] as? Double, 0.25)
        XCTAssertEqual(out[1]["top5_acc"] as? Double, 1); XCTAssertEqual(out[1]["lr"] as? Double, 0.002)
        XCTAssertEqual(out[2]["epoch"] as? Int, 2); XCTAssertEqual(out[2]["iter"] as? Int, 1)
    }
}
