import AIMConfig
import AIMData
import Foundation
import XCTest

/// Annotation files written elsewhere (Windows line ends, byte-order marks) read like the LF
/// originals, and labels the model cannot output are refused at load time with file and line.
final class AnnotationRobustnessTests: XCTestCase {
    static let dir = scratchDir("annrobust")
    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// LF, CRLF, CRLF after a byte-order mark, LF after one, lone CR: every text reader takes them alike.
    static let variants: [(tag: String, ending: String, bom: Bool)] =
        [("lf", "\n", false), ("crlf", "\r\n", false), ("bomcrlf", "\r\n", true), ("bomlf", "\n", true), ("cr", "\r", false)]

    /// Writes `text` with its LFs turned into `ending`, after a UTF-8 byte-order mark when `bom`.
    func write(_ name: String, _ text: String, ending: String = "\n", bom: Bool = false) -> String {
        let p = Self.dir + "/" + name
        var d = bom ? Data([0xEF, 0xBB, 0xBF]) : Data()
        d.append(Data(text.replacingOccurrences(of: "\n", with: ending).utf8))
        XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: d), "cannot write \(p)")
        return p
    }

    /// The AnnotationError `body` throws (a failure when it throws something else or nothing).
    func annotationError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> AnnotationError? {
        do { _ = try body() } catch let e as AnnotationError { return e } catch {
            XCTFail("expected an AnnotationError, got \(error)", file: file, line: line)
            return nil
        }
        XCTFail("expected an AnnotationError, got none", file: file, line: line)
        return nil
    }

    func config(format: String, train: String, root: String = "/r", numClasses: Int, classList: String = "") throws -> Config {
        var cfg = Config()
        try cfg.set("model.num_classes", .int(numClasses))
        try cfg.set("data.format", .string(format))
        try cfg.set("data.train", .string(train))
        try cfg.set("data.root", .string(root))
        try cfg.set("data.class_list", .string(classList))
        return cfg
    }

    // MARK: line endings and byte-order marks

    func testVideoListLineEndingsAndBOM() throws {
        let text = "a/x.mp4 3\n\nb/y.avi 0\n  c.mp4\t5  \n"
        for v in Self.variants {
            let f = write("list-\(v.tag).txt", text, ending: v.ending, bom: v.bom)
            let s = try loadAnnotations(format: .videoList, file: f, root: "/data")
            XCTAssertEqual(s.map(\.path), ["/data/a/x.mp4", "/data/b/y.avi", "/data/c.mp4"], v.tag)
            XCTAssertEqual(s.map(\.label), [3, 0, 5], v.tag)
            XCTAssertEqual(s.map(\.line), [1, 3, 4], v.tag)
        }
        // No line break at the end, and an empty file.
        XCTAssertEqual(try loadAnnotations(format: .videoList, file: write("noeol.txt", "a.mp4 1\r\nb.mp4 2"), root: ""),
                       [VideoSample(path: "a.mp4", label: 1), VideoSample(path: "b.mp4", label: 2)])
        XCTAssertEqual(try loadAnnotations(format: .videoList, file: write("bomonly.txt", "", bom: true), root: ""), [])
    }

    func testErrorLinesInCRLFFiles() throws {
        let fields = write("bad-fields.txt", "a.mp4 1\n\nb.mp4\nc.mp4 2\n", ending: "\r\n", bom: true)
        let e1 = annotationError { try loadAnnotations(format: .videoList, file: fields, root: "") }
        XCTAssertEqual(e1?.file, fields)
        XCTAssertEqual(e1?.line, 3)
        XCTAssertEqual(e1?.message, "expected `path label`, found 1 fields: b.mp4")

        let label = write("bad-label.txt", "a.mp4 1\nb.mp4 two\n", ending: "\r\n")
        XCTAssertEqual(annotationError { try loadAnnotations(format: .videoList, file: label, root: "") }?.line, 2)

        let csv = write("bad.csv", "label,youtube_id,time_start,time_end,split\nzumba,q,1,11,train\n\nzumba,r,x,133,train\n",
                        ending: "\r\n", bom: true)
        XCTAssertEqual(annotationError { try loadAnnotations(format: .kineticsCSV, file: csv, root: "") }?.line, 4)

        // Bytes that are not UTF-8 are named by their line.
        var d = Data("a.mp4 1\r\n".utf8); d.append(contentsOf: [0x62, 0xFF, 0x2E, 0x6D, 0x70, 0x34, 0x20, 0x32, 0x0D, 0x0A])
        let latin = Self.dir + "/latin.txt"
        XCTAssertTrue(FileManager.default.createFile(atPath: latin, contents: d))
        let e2 = annotationError { try loadAnnotations(format: .videoList, file: latin, root: "") }
        XCTAssertEqual(e2?.line, 2)
        XCTAssertEqual(e2?.message, "not UTF-8 text")
    }

    func testKineticsCSVLineEndingsAndBOM() throws {
        let csv = """
            label,youtube_id,time_start,time_end,split
            "passing American football (in game)",abc,5,15,train
            abseiling,xyz_1,0,10,train

            zumba,q,123,133,train

            """
        let classes = "zumba\npassing American football (in game)\n\nabseiling\n"
        for v in Self.variants {
            let f = write("k-\(v.tag).csv", csv, ending: v.ending, bom: v.bom)
            let s = try loadAnnotations(format: .kineticsCSV, file: f, root: "/k")
            XCTAssertEqual(s.map(\.path), ["/k/abc_000005_000015.mp4", "/k/xyz_1_000000_000010.mp4", "/k/q_000123_000133.mp4"], v.tag)
            XCTAssertEqual(s.map(\.label), [1, 0, 2], v.tag)  // sorted class names
            XCTAssertEqual(s.map(\.line), [2, 3, 5], v.tag)
            XCTAssertEqual(s.map(\.className), ["passing American football (in game)", "abseiling", "zumba"], v.tag)

            // The class list in every variant too (against the CSV in the same one).
            let cl = write("classes-\(v.tag).txt", classes, ending: v.ending, bom: v.bom)
            XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: f, root: "/k", classList: cl).map(\.label), [1, 2, 0], v.tag)
        }
    }

    func testSSv2LineEndingsAndBOM() throws {
        let annotation = #"""
            [{"id": "78687", "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks"]},
             {"id": 42, "template": "Pushing [something] from left to right"}]

            """#
        let labelsJSON = #"{"Holding something next to something": "0",\#n "Pushing something from left to right": "1"}"#
        let labelsText = "Holding something next to something\nPushing something from left to right\n"
        let expected = [VideoSample(path: "/s/78687.webm", label: 0), VideoSample(path: "/s/42.webm", label: 1)]
        for v in Self.variants {
            let f = write("ssv2-\(v.tag).json", annotation, ending: v.ending, bom: v.bom)
            let lj = write("labels-\(v.tag).json", labelsJSON, ending: v.ending, bom: v.bom)
            let lt = write("labels-\(v.tag).txt", labelsText, ending: v.ending, bom: v.bom)
            let fromJSON = try loadAnnotations(format: .ssv2JSON, file: f, root: "/s", classList: lj)
            XCTAssertEqual(fromJSON, expected, v.tag)
            XCTAssertEqual(fromJSON.map(\.line), [1, 2], v.tag)
            XCTAssertEqual(fromJSON.map(\.className), ["Holding something next to something", "Pushing something from left to right"], v.tag)
            XCTAssertEqual(try loadAnnotations(format: .ssv2JSON, file: f, root: "/s", classList: lt), expected, v.tag)
        }
    }

    func testDiving48BOM() throws {
        let text = #"[{"vid_name": "-mmq0PT-u8k_00155", "label": 33},\#n {"vid_name": "b", "label": "7"}]"#
        for v in Self.variants {
            let f = write("div-\(v.tag).json", text, ending: v.ending, bom: v.bom)
            let s = try loadAnnotations(format: .diving48JSON, file: f, root: "/d")
            XCTAssertEqual(s, [VideoSample(path: "/d/-mmq0PT-u8k_00155.mp4", label: 33), VideoSample(path: "/d/b.mp4", label: 7)], v.tag)
            XCTAssertEqual(s.map(\.line), [1, 2], v.tag)
        }
    }

    // MARK: labels against the model's classes

    func testCheckLabels() throws {
        let f = write("six.txt", "a.mp4 5\nb.mp4 9\nc.mp4 12\n", ending: "\r\n")
        let s = try loadAnnotations(format: .videoList, file: f, root: "")
        XCTAssertNoThrow(try checkLabels(s, file: f, numClasses: 13))
        let e = annotationError { try checkLabels(s, file: f, numClasses: 6) }
        XCTAssertEqual(e?.file, f)
        XCTAssertEqual(e?.line, 2)  // the first bad one
        XCTAssertEqual(e?.message, "label 9 is outside 0..<6 (model.num_classes = 6)")
        XCTAssertEqual(e?.description, "\(f):2: label 9 is outside 0..<6 (model.num_classes = 6)")
        // Samples built in code have no line; a negative label is out of range too.
        let coded = annotationError { try checkLabels([VideoSample(path: "x", label: -1)], file: "<code>", numClasses: 6) }
        XCTAssertEqual(coded?.line, nil)
        XCTAssertEqual(coded?.message, "label -1 is outside 0..<6 (model.num_classes = 6)")
        XCTAssertNoThrow(try checkLabels([], file: f, numClasses: 1))
    }

    func testAnnotationSamplesRefusesLabelsOutsideNumClasses() throws {
        let f = write("train.txt", "a.mp4 0\nb.mp4 5\n\nc.mp4 6\n", ending: "\r\n", bom: true)
        let e = annotationError { try annotationSamples(config: try self.config(format: "list", train: f, numClasses: 6), split: .train) }
        XCTAssertEqual(e?.file, f)
        XCTAssertEqual(e?.line, 4)
        XCTAssertEqual(e?.message, "label 6 is outside 0..<6 (model.num_classes = 6)")
        let ok = try annotationSamples(config: try config(format: "list", train: f, numClasses: 7), split: .train)
        XCTAssertEqual(ok, [VideoSample(path: "/r/a.mp4", label: 0), VideoSample(path: "/r/b.mp4", label: 5), VideoSample(path: "/r/c.mp4", label: 6)])
    }

    func testKineticsClassListLongerThanModelIsFineWhileUsedLabelsFit() throws {
        let classes = write("k-classes.txt", "abseiling\nbowling\ncooking\ndancing\nzumba\n", ending: "\r\n", bom: true)
        let used = write("k-used.csv", "label,youtube_id,time_start,time_end,split\nbowling,a,0,10,val\nabseiling,b,0,10,val\n")
        let s = try annotationSamples(config: try config(format: "kinetics_csv", train: used, numClasses: 2, classList: classes), split: .train)
        XCTAssertEqual(s.map(\.label), [1, 0])

        let beyond = write("k-beyond.csv", "label,youtube_id,time_start,time_end,split\nbowling,a,0,10,val\nzumba,b,0,10,val\n")
        let e = annotationError {
            try annotationSamples(config: try self.config(format: "kinetics_csv", train: beyond, numClasses: 2, classList: classes), split: .train)
        }
        XCTAssertEqual(e?.file, beyond)
        XCTAssertEqual(e?.line, 3)
        XCTAssertEqual(e?.message, "label 4 (`zumba`) is outside 0..<2 (model.num_classes = 2)")
    }

    func testSSv2LabelOutsideNumClassesNamesTheTemplate() throws {
        let labels = write("ss-labels.json", #"{"Holding something": "0", "Dropping something": "173", "Poking something": "180"}"#, bom: true)
        let f = write("ss-train.json", #"[{"id": "1", "template": "Holding [something]"}, {"id": "2", "template": "Dropping [something]"}, {"id": "3", "template": "Poking [something]"}]"#)
        let e = annotationError {
            try annotationSamples(config: try self.config(format: "ssv2_json", train: f, numClasses: 174, classList: labels), split: .train)
        }
        XCTAssertEqual(e?.file, f)
        XCTAssertEqual(e?.line, 3)
        XCTAssertEqual(e?.message, "label 180 (`Poking something`) is outside 0..<174 (model.num_classes = 174)")
    }

    func testDiving48Label99With48ClassesRefused() throws {
        let f = write("div48.json", #"[{"vid_name": "a", "label": 47}, {"vid_name": "b", "label": 99}]"#, bom: true)
        let e = annotationError { try annotationSamples(config: try self.config(format: "diving48_json", train: f, numClasses: 48), split: .train) }
        XCTAssertEqual(e?.file, f)
        XCTAssertEqual(e?.line, 2)
        XCTAssertEqual(e?.message, "label 99 is outside 0..<48 (model.num_classes = 48)")
    }

    // MARK: Kinetics times

    /// A Kinetics row's times become the file name (`<id>_<start:06d>_<end:06d>.mp4`): only plain
    /// decimal seconds in range are taken; hex, inf, nan, huge or negative times and a start
    /// after the end are refused with the file and line, never a trap or a made-up name.
    func testKineticsTimesMustBeDecimalSecondsInRange() throws {
        let header = "label,youtube_id,time_start,time_end,split\nzumba,a,0,10,train\n"
        let refused: [(start: String, end: String, message: String)] = [
            ("1e19", "10", "time_start `1e19` is out of range (at most 999999999 seconds)"),
            ("0", "1e19", "time_end `1e19` is out of range (at most 999999999 seconds)"),
            ("1e300", "1e301", "time_start `1e300` is out of range (at most 999999999 seconds)"),
            ("0", "1e400", "time_end `1e400` is out of range (at most 999999999 seconds)"),
            ("0", "inf", "time_end `inf` is not a decimal number of seconds"),
            ("infinity", "10", "time_start `infinity` is not a decimal number of seconds"),
            ("-inf", "10", "time_start `-inf` is not a decimal number of seconds"),
            ("nan", "10", "time_start `nan` is not a decimal number of seconds"),
            ("0x10", "0x20", "time_start `0x10` is not a decimal number of seconds"),
            ("5", "0x1p4", "time_end `0x1p4` is not a decimal number of seconds"),
            ("", "10", "time_start `` is not a decimal number of seconds"),
            ("+5", "15", "time_start `+5` is not a decimal number of seconds"),
            ("1_0", "15", "time_start `1_0` is not a decimal number of seconds"),
            ("-5", "5", "time_start `-5` is negative"),
            ("0", "-0.5", "time_end `-0.5` is negative"),
            ("20", "10", "time_start `20` is after time_end `10`"),
            ("10.5", "10.25", "time_start `10.5` is after time_end `10.25`"),
        ]
        for c in refused {
            let f = write("times.csv", header + "zumba,b,\(c.start),\(c.end),train\n", ending: "\r\n")
            let e = annotationError { try loadAnnotations(format: .kineticsCSV, file: f, root: "") }
            XCTAssertEqual(e?.file, f, "\(c)")
            XCTAssertEqual(e?.line, 3, "\(c)")
            XCTAssertEqual(e?.message, c.message, "\(c)")
        }
        // Decimal forms Python's float() reads are fine; the name takes the whole seconds.
        let ok = write("times-ok.csv", header + "zumba,b,5.0,15.9,train\nzumba,c,.5,1e1,train\nzumba,d,7.,7,train\nzumba,e,999999999,999999999,train\n")
        XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: ok, root: "").map(\.path),
                       ["a_000000_000010.mp4", "b_000005_000015.mp4", "c_000000_000010.mp4", "d_000007_000007.mp4",
                        "e_999999999_999999999.mp4"])
    }

    // MARK: control characters

    /// The message for a control character at a 1-based column.
    func control(_ code: String, at column: Int) -> String {
        "control character \(code) at column \(column) (only tab may appear in a line)"
    }

    /// A NUL or other control character (all but tab) in any text annotation, class list or SSv2
    /// text labels is refused with its line: it would end up in a path or a printed class name.
    func testControlCharactersRefusedInTextFormats() throws {
        let list = write("nul-list.txt", "videos/b.mp4 0\nvideos/a.mp4\u{0} 1\n", ending: "\r\n", bom: true)
        let e1 = annotationError { try loadAnnotations(format: .videoList, file: list, root: "/r") }
        XCTAssertEqual(e1?.file, list)
        XCTAssertEqual(e1?.line, 2)
        XCTAssertEqual(e1?.message, control("U+0000 (NUL)", at: 13))
        XCTAssertEqual(e1?.description, "\(list):2: " + control("U+0000 (NUL)", at: 13))
        for (tag, ch, code) in [("esc", "\u{1B}", "U+001B"), ("vt", "\u{0B}", "U+000B"), ("ff", "\u{0C}", "U+000C"),
                                ("del", "\u{7F}", "U+007F"), ("nel", "\u{85}", "U+0085"), ("bs", "\u{08}", "U+0008")] {
            let f = write("ctl-\(tag).txt", "a.mp4 1\n\nb\(ch).mp4 2\n")
            let e = annotationError { try loadAnnotations(format: .videoList, file: f, root: "") }
            XCTAssertEqual(e?.line, 3, tag)
            XCTAssertEqual(e?.message, control(code, at: 2), tag)
        }
        // Tab still separates path and label.
        XCTAssertEqual(try loadAnnotations(format: .videoList, file: write("tab.txt", "a.mp4\t1\n"), root: "").map(\.label), [1])

        let csv = write("nul.csv", "label,youtube_id,time_start,time_end,split\nzumba,q,1,11,train\nzumba,r\u{0}x,1,11,train\n")
        let e2 = annotationError { try loadAnnotations(format: .kineticsCSV, file: csv, root: "") }
        XCTAssertEqual(e2?.line, 3)
        XCTAssertEqual(e2?.message, control("U+0000 (NUL)", at: 8))

        let good = write("good.csv", "label,youtube_id,time_start,time_end,split\nzumba,q,1,11,train\n")
        let classes = write("nul-classes.txt", "abseiling\nzum\u{0}ba\nzumba\n")
        let e3 = annotationError { try loadAnnotations(format: .kineticsCSV, file: good, root: "", classList: classes) }
        XCTAssertEqual(e3?.file, classes)
        XCTAssertEqual(e3?.line, 2)
        XCTAssertEqual(e3?.message, control("U+0000 (NUL)", at: 4))

        let ssv2 = write("ctl-ssv2.json", #"[{"id": "1", "template": "Holding [something]"}]"#)
        let labels = write("ctl-labels.txt", "Holding something\nPushing\u{0} something\n")
        let e4 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: labels) }
        XCTAssertEqual(e4?.file, labels)
        XCTAssertEqual(e4?.line, 2)
        XCTAssertEqual(e4?.message, control("U+0000 (NUL)", at: 8))
    }

    /// In the JSON formats a control character comes as an escape (`\u0000`) inside a string:
    /// refused with the entry, where it would become part of a path or a class name.
    func testControlCharactersRefusedInJSONStrings() throws {
        let labels = write("j-labels.json", #"{"Holding something": "0", "Pushing something": "1"}"#)
        let ssv2 = write("nul-id.json", #"[{"id": "1", "template": "Holding [something]"}, {"id": "2\u0000", "template": "Pushing [something]"}]"#)
        let e1 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: labels) }
        XCTAssertEqual(e1?.file, ssv2)
        XCTAssertEqual(e1?.line, 2)
        XCTAssertEqual(e1?.message, "entry 2: `id` holds control character U+0000 (NUL)")

        let div = write("nul-div.json", #"[{"vid_name": "a", "label": 1}, {"vid_name": "b\u001bc", "label": 2}]"#)
        let e2 = annotationError { try loadAnnotations(format: .diving48JSON, file: div, root: "") }
        XCTAssertEqual(e2?.file, div)
        XCTAssertEqual(e2?.line, 2)
        XCTAssertEqual(e2?.message, "entry 2: `vid_name` holds control character U+001B")

        let badLabels = write("nul-labels.json", "{\"Holding something\": \"0\",\n \"Pushing\\u0000 something\": \"1\"}")
        let e3 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: badLabels) }
        XCTAssertEqual(e3?.file, badLabels)
        XCTAssertEqual(e3?.line, 2)
        XCTAssertEqual(e3?.message, "a class name holds control character U+0000 (NUL)")
    }

    // MARK: duplicate class names

    /// A class named twice in a Kinetics class list or in SSv2 labels (text or JSON, also when
    /// only surrounding spaces differ) is refused naming both lines: one of the two indices
    /// could never be a label.
    func testDuplicateClassNamesRefusedNamingBothLines() throws {
        let csv = write("dup.csv", "label,youtube_id,time_start,time_end,split\nzumba,q,1,11,train\n")
        let classes = write("dup-classes.txt", "abseiling\nzumba\n\n  abseiling \n", ending: "\r\n")
        let e1 = annotationError { try loadAnnotations(format: .kineticsCSV, file: csv, root: "", classList: classes) }
        XCTAssertEqual(e1?.file, classes)
        XCTAssertEqual(e1?.line, 4)
        XCTAssertEqual(e1?.message, "class name `abseiling` is on line 1 too (each class needs its own name)")

        let ssv2 = write("dup-ssv2.json", #"[{"id": "1", "template": "Holding [something]"}]"#)
        let text = write("dup-labels.txt", "Holding something\nPushing something\nHolding something\n")
        let e2 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: text) }
        XCTAssertEqual(e2?.file, text)
        XCTAssertEqual(e2?.line, 3)
        XCTAssertEqual(e2?.message, "class name `Holding something` is on line 1 too (each class needs its own name)")

        // JSON keeps one of two equal keys silently; they are found in the text.
        let json = write("dup-labels.json", "{\"Holding something\": \"0\",\n \"Pushing something\": \"1\",\n \"Holding something\": \"0\"}")
        let e3 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: json) }
        XCTAssertEqual(e3?.file, json)
        XCTAssertEqual(e3?.line, 3)
        XCTAssertEqual(e3?.message, "class name `Holding something` is on line 1 too (each class needs its own name)")
        let spaced = write("dup-spaced.json", "{\"Holding something\": \"0\", \" Holding something\": \"1\"}")
        let e4 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: spaced) }
        XCTAssertEqual(e4?.line, 1)
        XCTAssertEqual(e4?.message, "class name `Holding something` is on line 1 too (each class needs its own name)")
    }

    /// The line a JSON label file's error names is the line of the text, whatever ends its lines:
    /// a CRLF is one line break (counted twice, line 3 of a Windows file was called line 5).
    func testJSONLabelErrorsNameTheLineInEveryLineEnding() throws {
        let ssv2 = write("lines-ssv2.json", #"[{"id": "1", "template": "Holding [something]"}]"#)
        let json = "{\"Holding something\": \"0\",\n \"Pushing something\": \"1\",\n \"Holding something\": \"2\"}\n"
        for v in Self.variants {
            let labels = write("dup-lines-\(v.tag).json", json, ending: v.ending, bom: v.bom)
            let e = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: labels) }
            XCTAssertEqual(e?.file, labels, v.tag)
            XCTAssertEqual(e?.line, 3, v.tag)
            XCTAssertEqual(e?.message, "class name `Holding something` is on line 1 too (each class needs its own name)", v.tag)
        }
    }

    // MARK: JSON booleans

    /// `true` is not the number 1: a boolean where an id or a label is expected is refused with
    /// the file and entry (JSONSerialization gives an NSNumber for both).
    func testJSONBooleansAreNotNumbers() throws {
        let labels = write("b-labels.json", #"{"Holding something": "0", "Pushing something": "1"}"#)
        let ssv2 = write("bool-id.json", #"[{"id": 5, "template": "Holding [something]"}, {"id": true, "template": "Pushing [something]"}]"#)
        let e1 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ssv2, root: "", classList: labels) }
        XCTAssertEqual(e1?.file, ssv2)
        XCTAssertEqual(e1?.line, 2)
        XCTAssertEqual(e1?.message, "entry 2: `id` is a boolean (true), not a video id")

        let boolLabels = write("bool-labels.json", "{\"Holding something\": \"0\",\n \"Pushing something\": true}")
        let ok = write("ok-ssv2.json", #"[{"id": 5, "template": "Holding [something]"}]"#)
        let e2 = annotationError { try loadAnnotations(format: .ssv2JSON, file: ok, root: "", classList: boolLabels) }
        XCTAssertEqual(e2?.file, boolLabels)
        XCTAssertEqual(e2?.line, 2)
        XCTAssertEqual(e2?.message, "class `Pushing something`: index is a boolean (true), not an integer")

        let div = write("bool-div.json", #"[{"vid_name": "a", "label": 0}, {"vid_name": "b", "label": true}]"#)
        let e3 = annotationError { try loadAnnotations(format: .diving48JSON, file: div, root: "") }
        XCTAssertEqual(e3?.file, div)
        XCTAssertEqual(e3?.line, 2)
        XCTAssertEqual(e3?.message, "entry 2 (b): `label` is a boolean (true), not an integer")
        let divFalse = write("bool-div0.json", #"[{"vid_name": "a", "label": false}]"#)
        XCTAssertEqual(annotationError { try loadAnnotations(format: .diving48JSON, file: divFalse, root: "") }?.message,
                       "entry 1 (a): `label` is a boolean (false), not an integer")

        // Numbers that are not whole are no ids either; whole numbers and strings still are.
        let frac = write("frac-id.json", #"[{"id": 1.5, "template": "Holding [something]"}]"#)
        XCTAssertEqual(annotationError { try loadAnnotations(format: .ssv2JSON, file: frac, root: "", classList: labels) }?.message,
                       "entry 1: `id` 1.5 is not a whole number")
        XCTAssertEqual(try loadAnnotations(format: .ssv2JSON, file: ok, root: "/s", classList: labels), [VideoSample(path: "/s/5.webm", label: 0)])
        // An empty id or video name would name the root folder's `.webm` / `.mp4`.
        let emptyID = write("empty-id.json", #"[{"id": "", "template": "Holding [something]"}]"#)
        XCTAssertEqual(annotationError { try loadAnnotations(format: .ssv2JSON, file: emptyID, root: "", classList: labels) }?.message,
                       "entry 1: `id` is empty")
        let emptyName = write("empty-name.json", #"[{"vid_name": "", "label": 3}]"#)
        XCTAssertEqual(annotationError { try loadAnnotations(format: .diving48JSON, file: emptyName, root: "") }?.message,
                       "entry 1: `vid_name` is empty")
    }

    // MARK: no videos

    func testEmptyAnnotationIsAnError() throws {
        let blank = write("blank.txt", "\n\n  \n", ending: "\r\n", bom: true)
        do {
            _ = try annotationSamples(config: try config(format: "list", train: blank, numClasses: 6), split: .train)
            XCTFail("an annotation without videos was accepted")
        } catch let e as DataConfigError {
            XCTAssertEqual(e.key, "data.train")
            XCTAssertEqual(e.message, "\(blank) lists no videos")
        }
        // The test split falls back to data.val, and the error names the key that was set.
        var cfg = try config(format: "list", train: blank, numClasses: 6)
        try cfg.set("data.val", .string(blank))
        XCTAssertThrowsError(try annotationSamples(config: cfg, split: .test)) { e in
            XCTAssertEqual((e as? DataConfigError)?.key, "data.val")
        }
        let header = write("header-only.csv", "label,youtube_id,time_start,time_end,split\n", ending: "\r\n")
        XCTAssertThrowsError(try annotationSamples(config: try config(format: "kinetics_csv", train: header, numClasses: 6), split: .train)) { e in
            XCTAssertEqual((e as? DataConfigError)?.message, "\(header) lists no videos")
        }
    }
}
