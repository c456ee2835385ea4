import AIMTensor
import AIMTraining
import XCTest

/// The measuring tools' synthetic clips (`aim-report measure` / `efficiency`): keyed by (epoch, step,
/// rank), drawn in parallel blocks, so a batch is the same on one thread as on two, and another
/// step or rank draws other values; standard normal values and labels in range.
final class RandomBatchSourceTests: XCTestCase {
    override func tearDown() { Threads.set(2) }

    func testBatchesAreKeyedAndThreadCountFree() {
        let source = RandomBatchSource(localBatch: 2, frames: 3, size: 96, classes: 5, rank: 1)
        func values(_ epoch: Int, _ step: Int, threads: Int, rank: Int = 1) -> (video: [Float], labels: [Int]) {
            Threads.set(threads)
            let s = rank == 1 ? source : RandomBatchSource(localBatch: 2, frames: 3, size: 96, classes: 5, rank: rank)
            let b = s.batch(epoch: epoch, step: step)
            return (Array(UnsafeBufferPointer(start: b.video.data, count: b.video.count)), b.labels)
        }
        let one = values(0, 7, threads: 1), two = values(0, 7, threads: 2)
        XCTAssertEqual(one.video.count, 2 * 3 * 3 * 96 * 96)
        XCTAssertEqual(one.video.map(\.bitPattern), two.video.map(\.bitPattern), "1 and 2 threads draw the same clip")
        XCTAssertEqual(one.labels, two.labels)
        XCTAssertTrue(one.labels.allSatisfy { (0..<5).contains($0) }, "\(one.labels)")
        XCTAssertNotEqual(values(0, 8, threads: 2).video, one.video, "another step")
        XCTAssertNotEqual(values(0, 7, threads: 2, rank: 0).video, one.video, "another rank")
        // Blocks are not copies of each other, and the values are standard normal.
        let block = 1 << 16
        XCTAssertNotEqual(Array(one.video[0..<16]), Array(one.video[block..<(block + 16)]))
        let mean = one.video.reduce(0.0) { $0 + Double($1) } / Double(one.video.count)
        let variance = one.video.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(one.video.count) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
    }
}
