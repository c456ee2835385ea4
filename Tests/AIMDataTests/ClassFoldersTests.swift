import AIMData
import Foundation
import XCTest

/// `aim-data list`: videos one folder per class become an mmaction2 video list and a label map.
final class ClassFoldersTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("class-folders-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        addTeardownBlock { [root] in try? FileManager.default.removeItem(at: root!) }
    }

    /// Empty files: only names and extensions matter here.
    func touch(_ rel: String) throws {
        let url = root.appendingPathComponent(rel)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: Data()))
    }

    func testClassesSortedByNameVideosSortedWithinThem() throws {
        for f in ["walk/b.mp4", "walk/a.MKV", "run/x.webm", "run/sub/y.avi", "jump/z.mp4",
                  "jump/notes.txt", "run/.hidden.mp4", "README.md"] { try touch(f) }
        let scan = try ClassFolders.scan(root: root.path, labelMap: nil)
        XCTAssertEqual(scan.classes, ["jump", "run", "walk"])
        // Only ROOT/<class>/<video>, as mmaction2's build_file_list.py --level 2; deeper files are counted.
        XCTAssertEqual(scan.entries.map(\.path), ["jump/z.mp4", "run/x.webm", "walk/a.MKV", "walk/b.mp4"])
        XCTAssertEqual(scan.entries.map(\.label), [0, 1, 2, 2])
        XCTAssertEqual(scan.deeper, ["run/sub/y.avi"])
        XCTAssertEqual(Set(scan.ignored), ["README.md", "jump/notes.txt"])
        XCTAssertEqual(scan.classesText, "jump\nrun\nwalk\n")
        // The list reads back as mmaction2's VideoDataset reads it.
        let samples = try parseVideoList(Data(scan.listText.utf8), file: "list", root: root.path)
        XCTAssertEqual(samples.map(\.label), [0, 1, 2, 2])
        XCTAssertEqual(samples.first?.path, root.appendingPathComponent("jump/z.mp4").path)
    }

    /// A validation folder labelled by the training label map: its order, whatever folders exist.
    func testAnExistingLabelMapGivesTheLabels() throws {
        for f in ["walk/v1.mp4", "jump/v2.mp4"] { try touch(f) }
        let map = LabelMap(names: ["walk", "run", "jump"], path: "classes.txt")
        let scan = try ClassFolders.scan(root: root.path, labelMap: map)
        XCTAssertEqual(scan.entries.map(\.path), ["jump/v2.mp4", "walk/v1.mp4"])
        XCTAssertEqual(scan.entries.map(\.label), [2, 0])
        XCTAssertEqual(scan.classesWithoutVideos, ["run"])

        try touch("swim/v3.mp4")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: map)) {
            XCTAssertTrue("\($0)".contains("classes.txt") && "\($0)".contains("`swim`"), "\($0)")
        }
    }

    func testWhatCannotBeListedIsRefused() throws {
        XCTAssertThrowsError(try ClassFolders.scan(root: root.appendingPathComponent("missing").path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("no such folder"), "\($0)")
        }
        try touch("loose.mp4")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("no class folders"), "\($0)")
        }
        try touch("walk/notes.txt")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("no video files") && !"\($0)".contains("deeper"), "\($0)")
        }
        // Videos one folder too deep: the reason names them.
        try touch("walk/2020/v.mp4")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("no video files") && "\($0)".contains("1 file(s) deeper, e.g. walk/2020/v.mp4"), "\($0)")
        }
        // A list line is split at whitespace: such a path could not be read back.
        try touch("air drumming/v.mp4")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("`air drumming/v.mp4`") && "\($0)".contains("whitespace"), "\($0)")
        }
    }

    /// A class folder that is a link (datasets assembled from other disks) is listed as os.walk
    /// with followlinks lists it; links back up to the folder or above it do not loop.
    func testLinkedClassFoldersAreFollowedWithoutLooping() throws {
        let fm = FileManager.default
        let elsewhere = root.deletingLastPathComponent().appendingPathComponent(root.lastPathComponent + "-elsewhere")
        try fm.createDirectory(at: elsewhere.appendingPathComponent("sub"), withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: elsewhere) }
        for f in ["x.mp4", "sub/y.mp4"] { XCTAssertTrue(fm.createFile(atPath: elsewhere.appendingPathComponent(f).path, contents: Data())) }
        try touch("run/a.mp4")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("linked").path, withDestinationPath: elsewhere.path)
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("run/again").path, withDestinationPath: "..")
        try fm.createSymbolicLink(atPath: elsewhere.appendingPathComponent("sub/loop").path, withDestinationPath: "..")
        let scan = try ClassFolders.scan(root: root.path, labelMap: nil)
        XCTAssertEqual(scan.classes, ["linked", "run"])
        XCTAssertEqual(scan.entries.map(\.path), ["linked/x.mp4", "run/a.mp4"])
        XCTAssertEqual(scan.deeper, ["linked/sub/y.mp4"])
        XCTAssertEqual(scan.classesWithoutVideos, [])

        // A class folder that is ROOT itself would make ROOT's files one class's videos.
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("all").path, withDestinationPath: ".")
        XCTAssertThrowsError(try ClassFolders.scan(root: root.path, labelMap: nil)) {
            XCTAssertTrue("\($0)".contains("class folder `all` is a link to") && "\($0)".contains("remove the link"), "\($0)")
        }
    }
}
