import AIMConfig
import AIMData
import Foundation
import XCTest

/// Label maps (`data.classes`): the mmaction2 text format, SSv2's labels.json, and the shipped
/// class lists of the paper's datasets.
final class LabelMapTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func write(_ text: String, _ name: String) throws -> String {
        let path = scratchDir("labelmap") + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testTextMapLineIIsLabelI() throws {
        let path = try write("\u{FEFF}abseiling\r\nair drumming  \r\nzumba\n\n", "k.txt")
        let map = try LabelMap.load(path: path)
        XCTAssertEqual(map.names, ["abseiling", "air drumming", "zumba"])
        XCTAssertEqual(map.name(1), "air drumming")
        XCTAssertEqual(map.name(7), "7", "a label past the map prints as its number")
        XCTAssertNoThrow(try map.check(numClasses: 3))
        XCTAssertThrowsError(try map.check(numClasses: 4)) { e in
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("names 3 classes") && "\(e)".contains("model.num_classes is 4"), "\(e)")
        }
        XCTAssertThrowsError(try map.check(numClasses: 2))
        let none: LabelMap? = nil
        XCTAssertEqual(none.name(3), "3")
    }

    func testBlankLineInsideAMapIsRefusedWithItsLine() throws {
        let path = try write("a\nb\n\nc\n", "gap.txt")
        XCTAssertThrowsError(try LabelMap.load(path: path)) { e in XCTAssertTrue("\(e)".contains("\(path):3"), "\(e)") }
        XCTAssertThrowsError(try LabelMap.load(path: try write("\n\n", "empty.txt")))
        XCTAssertThrowsError(try LabelMap.load(path: "/nonexistent/labels.txt")) { e in XCTAssertTrue("\(e)".contains("/nonexistent/labels.txt")) }
    }

    func testSSv2LabelsJSON() throws {
        let path = try write(#"{"Pushing something from left to right": "1", "Approaching something with your camera": "0", "Tearing something": "2"}"#, "labels.json")
        XCTAssertEqual(try LabelMap.load(path: path).names,
                       ["Approaching something with your camera", "Pushing something from left to right", "Tearing something"])
        let gap = try write(#"{"a": "0", "b": "2"}"#, "gap.json")
        XCTAssertThrowsError(try LabelMap.load(path: gap)) { e in XCTAssertTrue("\(e)".contains("no class has index 1"), "\(e)") }
        let twice = try write(#"{"a": "0", "b": "0"}"#, "twice.json")
        XCTAssertThrowsError(try LabelMap.load(path: twice)) { e in XCTAssertTrue("\(e)".contains("index 0"), "\(e)") }
    }

    /// Two lines naming the same class (also when only surrounding spaces differ) are refused
    /// naming both lines: the two labels would print alike, one of them wrongly.
    func testDuplicateNamesInATextMapAreRefusedNamingBothLines() throws {
        let path = try write("abseiling\nbowling\r\n bowling \t\nzumba\n", "dup.txt")
        XCTAssertThrowsError(try LabelMap.load(path: path)) { e in
            XCTAssertEqual("\(e)", "\(path):3: class name `bowling` is on line 2 too (each class needs its own name)")
        }
        let exact = try write("a\nb\nc\na\n", "dup2.txt")
        XCTAssertThrowsError(try LabelMap.load(path: exact)) { e in
            XCTAssertEqual("\(e)", "\(exact):4: class name `a` is on line 1 too (each class needs its own name)")
        }
    }

    /// JSON keeps one of two equal keys without a word; the file's text is read for them, and
    /// names equal up to surrounding spaces are refused as in the text form.
    func testDuplicateNamesInAJSONMapAreRefused() throws {
        let twice = try write("{\"a\": \"0\",\n \"b\": \"1\",\n \"a\": \"0\"}", "dupname.json")
        XCTAssertThrowsError(try LabelMap.load(path: twice)) { e in
            XCTAssertEqual("\(e)", "\(twice):3: class name `a` is on line 1 too (each class needs its own name)")
        }
        let escaped = try write(#"{"a": "0", "\u0061": "1"}"#, "dupescaped.json")
        XCTAssertThrowsError(try LabelMap.load(path: escaped)) { e in XCTAssertTrue("\(e)".contains("class name `a` is on line 1 too"), "\(e)") }
        let spaced = try write("{\"a b\": \"0\",\n\"c\": \"1\",\n\" a b \": \"2\"}", "dupspaced.json")
        XCTAssertThrowsError(try LabelMap.load(path: spaced)) { e in
            XCTAssertEqual("\(e)", "\(spaced):3: class name `a b` is on line 1 too (each class needs its own name)")
        }
        // Values that hold objects, lists and brackets in strings do not confuse the key scan.
        let nested = try write(#"{"x{": "0", "y\"}": "1", "z": "2"}"#, "nested.json")
        XCTAssertEqual(try LabelMap.load(path: nested).names, ["x{", "y\"}", "z"])
    }

    /// A NUL or other control character in a class name is refused with its line (it would be
    /// written raw into CSV and text output).
    func testControlCharactersInMapsAreRefused() throws {
        let text = try write("a\nb\u{0}c\nd\n", "nul.txt")
        XCTAssertThrowsError(try LabelMap.load(path: text)) { e in
            XCTAssertEqual("\(e)", "\(text):2: control character U+0000 (NUL) at column 2 (only tab may appear in a line)")
        }
        let esc = try write("a\n\u{1B}[31mred\n", "esc.txt")
        XCTAssertThrowsError(try LabelMap.load(path: esc)) { e in XCTAssertTrue("\(e)".hasPrefix("\(esc):2: control character U+001B"), "\(e)") }
        let json = try write("{\"a\": \"0\",\n \"b\\u0000c\": \"1\"}", "nul.json")
        XCTAssertThrowsError(try LabelMap.load(path: json)) { e in
            XCTAssertEqual("\(e)", "\(json):2: a class name holds control character U+0000 (NUL)")
        }
    }

    /// `true` is not index 1 (JSONSerialization gives an NSNumber for both).
    func testBooleanIndicesInAJSONMapAreRefused() throws {
        let path = try write("{\"a\": false,\n \"b\": true}", "bool.json")
        XCTAssertThrowsError(try LabelMap.load(path: path)) { e in
            XCTAssertEqual("\(e)", "\(path):1: class `a`: index is a boolean (false), not an integer")
        }
        XCTAssertEqual(try LabelMap.load(path: try write(#"{"a": 1, "b": "0"}"#, "num.json")).names, ["b", "a"])
    }

    /// Without data.classes, a Kinetics class list names the classes; it may be longer than the
    /// model's classes (a subset trained), never shorter. data.classes must fit exactly.
    func testKineticsClassListStandsInForTheMap() throws {
        let list = try write("abseiling\nbowling\ncooking\n", "classes.txt")
        var c = Config()
        try c.set("model.num_classes", .int(2))
        try c.set("data.format", .string("kinetics_csv"))
        try c.set("data.class_list", .string(list))
        let map = try XCTUnwrap(try LabelMap.fromConfig(c))
        XCTAssertEqual(map.name(1), "bowling")
        XCTAssertNoThrow(try map.check(numClasses: 2))
        XCTAssertThrowsError(try map.check(numClasses: 4))
        XCTAssertNil(try LabelMap.fromConfig(c, orClassList: false))
        try c.set("data.classes", .string(list))
        XCTAssertThrowsError(try XCTUnwrap(try LabelMap.fromConfig(c)).check(numClasses: 2), "an explicit map must name exactly the model's classes")
    }

    func testLabelsOutsideTheMapNameTheirLine() throws {
        let map = LabelMap(names: ["a", "b"], path: "m.txt")
        let samples = [VideoSample(path: "x.mp4", label: 1, line: 1), VideoSample(path: "y.mp4", label: 2, line: 2)]
        XCTAssertThrowsError(try map.checkLabels(samples, file: "list.txt")) { e in
            XCTAssertTrue("\(e)".hasPrefix("list.txt:2:") && "\(e)".contains("m.txt"), "\(e)")
        }
    }

    /// Every config that names a label map names one with exactly model.num_classes names, and the
    /// four shipped maps are the paper's datasets' class counts.
    func testShippedMapsFitTheirConfigs() throws {
        let configs = Self.root.appendingPathComponent("configs").path
        let files = (FileManager.default.enumerator(atPath: configs)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".yaml") && !$0.hasPrefix("_base_") }
        var checked: [String: Int] = [:]
        for f in files {
            let c = try Config.load(path: configs + "/" + f)
            let rel = c.string("data.classes")
            guard !rel.isEmpty else { continue }
            let map = try LabelMap.load(path: Self.root.appendingPathComponent(rel).path)
            XCTAssertNoThrow(try map.check(numClasses: c.int("model.num_classes")), f)
            checked[rel] = map.names.count
        }
        XCTAssertEqual(checked, ["configs/labels/kinetics400.txt": 400, "configs/labels/kinetics700.txt": 700,
                                 "configs/labels/sthv2.txt": 174, "configs/labels/diving48.txt": 48])
        let k400 = try LabelMap.load(path: Self.root.appendingPathComponent("configs/labels/kinetics400.txt").path)
        XCTAssertEqual(k400.names, k400.names.sorted(), "mmaction2's Kinetics lists number classes in sorted name order")
        XCTAssertEqual(Set(k400.names).count, 400)
    }
}
