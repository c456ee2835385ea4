import AIMData
import Foundation
import XCTest

final class AnnotationTests: XCTestCase {
    static let dir = scratchDir("ann")
    override class func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) -> String {
        let p = Self.dir + "/" + name
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func testVideoList() throws {
        let f = write("list.txt", "a/x.mp4 3\n\nb/y.avi 0\n")
        let s = try loadAnnotations(format: .videoList, file: f, root: "/data")
        XCTAssertEqual(s, [VideoSample(path: "/data/a/x.mp4", label: 3), VideoSample(path: "/data/b/y.avi", label: 0)])
        let bad = write("bad.txt", "a.mp4 1\nb.mp4\nc.mp4 2\n")
        XCTAssertThrowsError(try loadAnnotations(format: .videoList, file: bad, root: "")) { e in
            XCTAssertEqual((e as? AnnotationError)?.line, 2); XCTAssertEqual((e as? AnnotationError)?.file, bad)
        }
        let bad2 = write("bad2.txt", "a.mp4 one\n")
        XCTAssertThrowsError(try loadAnnotations(format: .videoList, file: bad2, root: "")) { e in
            XCTAssertEqual((e as? AnnotationError)?.line, 1)
        }
    }

    func testKineticsCSV() throws {
        let f = write("k.csv", """
            label,youtube_id,time_start,time_end,split
            "passing American football (in game)",abc,5,15,train
            abseiling,xyz_1,0,10,train

            zumba,q,123,133,train
            """)
        let s = try loadAnnotations(format: .kineticsCSV, file: f, root: "/k")
        XCTAssertEqual(s.map(\.path), ["/k/abc_000005_000015.mp4", "/k/xyz_1_000000_000010.mp4", "/k/q_000123_000133.mp4"])
        XCTAssertEqual(s.map(\.label), [1, 0, 2])  // sorted class names
        let cl = write("classes.txt", "zumba\npassing American football (in game)\nabseiling\n")
        XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: f, root: "/k", classList: cl).map(\.label), [1, 2, 0])
        let bad = write("kb.csv", "label,youtube_id,time_start,time_end,split\nzumba,q,x,133,train\n")
        XCTAssertThrowsError(try loadAnnotations(format: .kineticsCSV, file: bad, root: "")) { e in
            XCTAssertEqual((e as? AnnotationError)?.line, 2)
        }
    }

    /// Kinetics downloads keep videos either flat under the root or in one folder per class
    /// (`root/<label>/<id>_<start>_<end>.mp4`); the folder of the first entry's label decides,
    /// and then every path goes through its own label's folder.
    func testKineticsCSVFolderPerClassLayout() throws {
        let root = Self.dir + "/k-by-class"
        for c in ["abseiling", "zumba"] {
            try FileManager.default.createDirectory(atPath: root + "/" + c, withIntermediateDirectories: true)
        }
        let f = write("k-by-class.csv", """
            label,youtube_id,time_start,time_end,split
            abseiling,xyz_1,0,10,train
            zumba,q,123,133,train
            """)
        let s = try loadAnnotations(format: .kineticsCSV, file: f, root: root)
        XCTAssertEqual(s.map(\.path), [root + "/abseiling/xyz_1_000000_000010.mp4", root + "/zumba/q_000123_000133.mp4"])
        XCTAssertEqual(s.map(\.label), [0, 1])
        // No such folder: flat under the root.
        XCTAssertEqual(try loadAnnotations(format: .kineticsCSV, file: f, root: Self.dir + "/k-flat").map(\.path),
                       [Self.dir + "/k-flat/xyz_1_000000_000010.mp4", Self.dir + "/k-flat/q_000123_000133.mp4"])
    }

    /// CSV quoting as RFC 4180 (and Python's csv module) has it: inside quotes a doubled quote is
    /// one quote character and a comma is text, so the class name keeps both.
    func testKineticsCSVDoubledQuotesInsideQuotedFields() throws {
        let f = write("k-quotes.csv", """
            label,youtube_id,time_start,time_end,split
            "say ""hi"", wave",abc,5,15,train
            "plain",def,1,2,train
            """)
        let s = try loadAnnotations(format: .kineticsCSV, file: f, root: "")
        XCTAssertEqual(s.map(\.className), ["say \"hi\", wave", "plain"])
        XCTAssertEqual(s.map(\.path), ["abc_000005_000015.mp4", "def_000001_000002.mp4"])
        XCTAssertEqual(s.map(\.label), [1, 0])  // sorted: "plain" < "say ..."
    }

    func testSSv2AndDiving48() throws {
        _ = write("labels.json", #"{"Holding something next to something": "0", "Pushing something from left to right": "1"}"#)
        let f = write("something-something-v2-train.json", #"""
            [{"id": "78687", "label": "holding potato next to vicks", "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks"]},
             {"id": 42, "template": "Pushing [something] from left to right"}]
            """#)
        let s = try loadAnnotations(format: .ssv2JSON, file: f, root: "/s")
        XCTAssertEqual(s, [VideoSample(path: "/s/78687.webm", label: 0), VideoSample(path: "/s/42.webm", label: 1)])
        let bad = write("ssbad.json", #"[{"id": "1", "template": "Holding [something]"}]"#)
        XCTAssertThrowsError(try loadAnnotations(format: .ssv2JSON, file: bad, root: "", classList: Self.dir + "/labels.json")) { e in
            XCTAssertEqual((e as? AnnotationError)?.line, 1)
        }
        let d = write("div.json", #"[{"vid_name": "-mmq0PT-u8k_00155", "label": 33, "start_frame": 0, "end_frame": 83}]"#)
        XCTAssertEqual(try loadAnnotations(format: .diving48JSON, file: d, root: "/d"), [VideoSample(path: "/d/-mmq0PT-u8k_00155.mp4", label: 33)])
        let dbad = write("divbad.json", #"[{"vid_name": "a", "label": 1}, {"label": 2}]"#)
        XCTAssertThrowsError(try loadAnnotations(format: .diving48JSON, file: dbad, root: "")) { e in
            XCTAssertEqual((e as? AnnotationError)?.line, 2)
        }
    }
}
