import AIMTensor
import Foundation
import XCTest

/// Files are written through a temporary file renamed over the target: a target that is not a
/// regular file must be refused, not replaced (as root, an export to /dev/full turned the device
/// into a file and reported success). A FIFO stands in for a device here.
final class FileOutputTests: XCTestCase {
    func testTargetsThatAreNoRegularFileAreRefusedNotReplaced() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-fileoutput-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("pipe").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        func isFIFO(_ p: String) -> Bool { var st = stat(); return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO }
        XCTAssertThrowsError(try FileOutput.write("text", to: fifo)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        var w = SafetensorsWriter()
        w.add("x", floats: [1, 2], shape: [2])
        XCTAssertThrowsError(try w.save(to: fifo)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertTrue(isFIFO(fifo), "the FIFO was replaced")
        XCTAssertThrowsError(try FileOutput.write("text", to: dir.path)) { XCTAssertTrue("\($0)".contains("a directory"), "\($0)") }
        // A regular file is replaced as before.
        let file = dir.appendingPathComponent("f.txt").path
        try FileOutput.write("one", to: file)
        try FileOutput.write("two", to: file)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "two")
    }
}
