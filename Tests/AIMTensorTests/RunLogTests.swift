import AIMTensor
import Foundation
import XCTest

/// The run log holds what standard error got before its file was known, then appends; progress
/// lines redrawn in place on a terminal ("\r", erase line) become lines of their own.
final class RunLogTests: XCTestCase {
    func testHeldTextThenAppendedWithRedrawsAsLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-runlog-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir); RunLog.stop() }
        let file = dir.appendingPathComponent("run.log").path
        Console.error("before hold: not in the log")
        RunLog.hold()
        Console.error("cpu: held")
        Console.errorRaw("\r\u{1B}[Kstep 1/3")
        try RunLog.attach(path: file, header: ["header"])
        Console.errorRaw("\r\u{1B}[Kstep 2/3")
        Console.errorRaw("\n")
        Console.error("eval at step 2")
        Console.errorRaw("\r\u{1B}[Kstep 3/3")
        RunLog.stop()
        Console.error("after stop: not in the log")
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8),
                       "header\ncpu: held\nstep 1/3\nstep 2/3\neval at step 2\nstep 3/3\n")
    }
}
