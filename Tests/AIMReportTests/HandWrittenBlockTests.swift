import XCTest
import AIMReport

/// A rerun of `aim-bench` keeps the block of a BENCHMARKS file that is kept by hand.
final class HandWrittenBlockTests: XCTestCase {
    let generated = "# Benchmarks\n\nWritten by `aim-bench`; rerun.\n\n| | |\n|---|---|\n| date | new |\n"

    func testTheBlockOfThePreviousFileGoesAfterTheAnchorLine() {
        let block = HandWrittenBlock.begin + "\nThis file is the Zen 4 run.\n\n| CPU | file |\n" + HandWrittenBlock.end
        let previous = "# Benchmarks\n\nWritten by `aim-bench`; rerun.\n\n" + block + "\n\n| | |\n|---|---|\n| date | old |\n"
        let out = HandWrittenBlock.carry(from: previous, into: generated, after: "Written by `aim-bench`")
        XCTAssertEqual(out, "# Benchmarks\n\nWritten by `aim-bench`; rerun.\n\n" + block + "\n\n| | |\n|---|---|\n| date | new |\n")
        // Carrying again from the new file keeps exactly one copy.
        XCTAssertEqual(HandWrittenBlock.carry(from: out, into: generated, after: "Written by `aim-bench`"), out)
    }

    func testNothingToCarryLeavesTheReportAsGenerated() {
        let anchor = "Written by `aim-bench`"
        XCTAssertEqual(HandWrittenBlock.carry(from: nil, into: generated, after: anchor), generated)
        XCTAssertEqual(HandWrittenBlock.carry(from: "no block here", into: generated, after: anchor), generated)
        // Only the opening marker (a block cut short): not carried.
        XCTAssertEqual(HandWrittenBlock.carry(from: HandWrittenBlock.begin + "\ntext", into: generated, after: anchor), generated)
        let previous = HandWrittenBlock.begin + "\nx\n" + HandWrittenBlock.end
        XCTAssertEqual(HandWrittenBlock.carry(from: previous, into: generated, after: "not in the report"), generated)
    }
}
