import AIMConfig
import AIMData
import Foundation
import XCTest

/// One class index per name across a run's files: a Kinetics validation CSV that lacks a class
/// keeps the training CSV's numbers (or data.classes'), class folders may carry mmaction2's
/// underscored names, and a label map that would misname an annotation's own classes is refused.
final class ClassOrderTests: XCTestCase {
    static let dir = scratchDir("class-order")
    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) -> String {
        let p = Self.dir + "/" + name
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func csv(_ name: String, _ labels: [String]) -> String {
        write(name, (["label,youtube_id,time_start,time_end,split"] + labels.enumerated().map { "\"\($1)\",id\($0),0,10,x" })
            .joined(separator: "\n") + "\n")
    }

    func config(_ sets: [String: String]) throws -> Config {
        var c = Config()
        try c.set("model.num_classes", .int(4))
        for (k, v) in sets { try c.set(k, .string(v)) }
        return c
    }

    func testAKineticsValidationCSVLackingAClassKeepsTheTrainingNumbers() throws {
        let classes = ["abseiling", "air drumming", "passing American football (in game)", "zumba"]
        let train = csv("k/train.csv", classes), val = csv("k/val.csv", Array(classes.dropFirst()))
        var c = try config(["data.format": "kinetics_csv", "data.train": train, "data.val": val, "data.root": Self.dir + "/k"])
        // Alone, the validation CSV would number its three classes 0, 1, 2.
        XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: val, root: "").map(\.label), [0, 1, 2])
        XCTAssertEqual(try annotationSamples(config: c, split: .val).map(\.label), [1, 2, 3])
        XCTAssertEqual(try annotationSamples(config: c, split: .train).map(\.label), [0, 1, 2, 3])
        // The training CSV's names are the run's class names (recorded in checkpoints, printed by the tools).
        XCTAssertEqual(try LabelMap.fromConfig(c)?.names, classes)

        // With a label map, its order numbers every split.
        let map = write("k/map.txt", classes.reversed().joined(separator: "\n") + "\n")
        try c.set("data.classes", .string(map))
        XCTAssertEqual(try annotationSamples(config: c, split: .val).map(\.label), [2, 1, 0])
        XCTAssertEqual(try annotationSamples(config: c, split: .train).map(\.label), [3, 2, 1, 0])
    }

    /// mmaction2's rename_classnames.sh turns spaces into `_` in class folders; each row finds its own.
    func testKineticsClassFoldersWithUnderscores() throws {
        let root = Self.dir + "/k-folders"
        for folder in ["air_drumming", "zumba"] { try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
        let f = csv("k-folders.csv", ["air drumming", "zumba", "abseiling"])
        XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: f, root: root).map(\.path),
                       [root + "/air_drumming/id0_000000_000010.mp4", root + "/zumba/id1_000000_000010.mp4", root + "/id2_000000_000010.mp4"])
    }

    func testALabelMapThatMisnamesSSv2TemplatesIsRefused() throws {
        _ = write("ss/something-something-v2-labels.json", #"{"Moving something up": "0", "Pushing something": "1"}"#)
        let train = write("ss/train.json", #"[{"id": "1", "template": "Moving [something] up"}, {"id": "2", "template": "Pushing [something]"}]"#)
        var c = try config(["data.format": "ssv2_json", "data.train": train, "data.root": Self.dir + "/ss"])
        try c.set("model.num_classes", .int(2))
        // The dataset's own labels file is found beside the annotation under its shipped name.
        XCTAssertEqual(try annotationSamples(config: c, split: .train).map(\.label), [0, 1])
        XCTAssertEqual(try LabelMap.fromConfig(c)?.names, ["Moving something up", "Pushing something"])
        try c.set("data.classes", .string(write("ss/reordered.txt", "Pushing something\nMoving something up\n")))
        XCTAssertThrowsError(try annotationSamples(config: c, split: .train)) {
            XCTAssertTrue("\($0)".contains("train.json:1") && "\($0)".contains("`Moving something up` has label 0")
                          && "\($0)".contains("reordered.txt"), "\($0)")
        }
        try c.set("data.classes", .string(write("ss/same.txt", "Moving something up\nPushing something\n")))
        XCTAssertEqual(try annotationSamples(config: c, split: .train).map(\.label), [0, 1])
    }

    func testMissingSSv2LabelsNameTheKeyToSet() throws {
        let f = write("ss-none/train.json", #"[{"id": "1", "template": "Moving [something] up"}]"#)
        XCTAssertThrowsError(try loadAnnotations(format: .ssv2JSON, file: f, root: "")) {
            XCTAssertTrue("\($0)".contains("data.class_list") && "\($0)".contains("something-something-v2-labels.json"), "\($0)")
        }
    }
}
