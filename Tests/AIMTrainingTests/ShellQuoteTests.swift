import AIMTraining
import Foundation
import XCTest

/// A recorded command line, pasted into a shell, gives back the same words.
final class ShellQuoteTests: XCTestCase {
    func testTheShellReadsBackTheWords() throws {
        let words = ["bin/aim-train", "--config", "/tmp/my runs/ünï cødé.yaml", "--set", "data.root=it's here", "", "a\"b$c`d", "plain-1.0=x,y:z"]
        XCTAssertEqual(ShellQuote.word("plain-1.0=x,y:z"), "plain-1.0=x,y:z", "plain words stay as they are")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "for w in " + ShellQuote.line(words) + "; do printf '%s\\0' \"$w\"; done"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        var back = String(decoding: data, as: UTF8.self).components(separatedBy: "\0")
        back.removeLast()
        XCTAssertEqual(back, words)
    }
}
