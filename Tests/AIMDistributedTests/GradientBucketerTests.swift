import AIMDistributed
import XCTest

final class GradientBucketerTests: XCTestCase {
    private func packed(_ counts: [Int]) -> [GradientSlice] {
        var off = 0
        return counts.enumerated().map { i, n in
            defer { off += n }
            return GradientSlice(name: "p\(i)", offset: off, count: n)
        }
    }

    func testBucketsFollowReverseParameterOrderAndCoverTheBufferOnce() throws {
        let layout = packed([10, 20, 30, 5, 5, 40, 1])
        let buckets = try GradientBucketer.assignBuckets(layout: layout, bucketBytes: 4 * 50)
        XCTAssertEqual(buckets.map(\.parameters), [[6, 5, 4], [3, 2], [1, 0]])
        XCTAssertEqual(buckets.map(\.count), [46, 35, 30])
        var covered = [Int](repeating: 0, count: 111)
        for b in buckets {
            // Descending, consecutive indices: a contiguous span of the flat buffer.
            XCTAssertEqual(b.parameters, Array((b.parameters.last!...b.parameters.first!).reversed()))
            XCTAssertEqual(b.offset, layout[b.parameters.last!].offset)
            XCTAssertEqual(b.count, b.parameters.reduce(0) { $0 + layout[$1].count })
            XCTAssertLessThanOrEqual(b.bytes, 4 * 50)
            for i in b.offset..<(b.offset + b.count) { covered[i] += 1 }
        }
        XCTAssertEqual(covered, [Int](repeating: 1, count: 111))
    }

    func testParameterLargerThanABucketGetsItsOwnBucket() throws {
        let layout = packed([3, 100, 4, 5])
        let buckets = try GradientBucketer.assignBuckets(layout: layout, bucketBytes: 4 * 10)
        XCTAssertEqual(buckets.map(\.parameters), [[3, 2], [1], [0]])
        XCTAssertEqual(buckets[1].count, 100)
        // A bucket that exactly reaches the cap closes.
        let exact = try GradientBucketer.assignBuckets(layout: packed([5, 5, 5]), bucketBytes: 4 * 10)
        XCTAssertEqual(exact.map(\.parameters), [[2, 1], [0]])
    }

    func testDefaultBucketsOnAnAIMLikeLayoutCarryFourBytesPerTunableParameter() throws {
        let layout = DistributedBenchmark.aimLikeLayout()
        let total = layout.reduce(0) { $0 + $1.count }
        XCTAssertEqual(total, 10_958_992)
        let bucketer = try GradientBucketer(layout: layout, communicator: SingleProcessCommunicator())
        XCTAssertEqual(bucketer.buckets.reduce(0) { $0 + $1.bytes }, 4 * total)
        XCTAssertEqual(bucketer.buckets.count, 2)
        XCTAssertTrue(bucketer.buckets.allSatisfy { $0.bytes <= GradientBucketer.defaultBucketBytes })
        XCTAssertEqual(bucketer.buckets[0].parameters.first, layout.count - 1, "the head, finished first by backward, opens bucket 0")
    }

    func testLayoutErrorsNameTheParameter() {
        XCTAssertThrowsError(try GradientBucketer.assignBuckets(layout: [], bucketBytes: 100)) {
            XCTAssertEqual($0 as? BucketLayoutError, .empty)
        }
        let gap = [GradientSlice(name: "a", offset: 0, count: 4), GradientSlice(name: "b", offset: 16, count: 4)]
        XCTAssertThrowsError(try GradientBucketer.assignBuckets(layout: gap, bucketBytes: 100)) {
            XCTAssertEqual($0 as? BucketLayoutError, .notContiguous(previous: "a", previousEnd: 4, name: "b", offset: 16))
            XCTAssertTrue("\($0)".contains("'b' starts at offset 16"))
        }
        XCTAssertThrowsError(try GradientBucketer.assignBuckets(layout: [GradientSlice(name: "z", offset: 0, count: 0)], bucketBytes: 100)) {
            XCTAssertEqual($0 as? BucketLayoutError, .badCount(name: "z", count: 0))
        }
        XCTAssertThrowsError(try GradientBucketer.assignBuckets(layout: packed([1]), bucketBytes: 2))
    }

    /// A full pass in one process, on both communicators: the gradients are unchanged (the
    /// average over one rank) and the stats report every tunable float once.
    func testPassInOneProcessKeepsGradientsAndCountsBytes() throws {
        let layout = packed([7, 300, 1, 64, 999])
        let comms: [any Communicator] = [SingleProcessCommunicator(), MPICommunicator.shared]
        for comm in comms where comm.size == 1 {
            for mode in [BucketMode.overlapped, .blocking] {
                let bucketer = try GradientBucketer(layout: layout, bucketBytes: 4 * 256, mode: mode, communicator: comm)
                var g = (0..<1371).map { Float($0) * 0.5 - 3 }
                let want = g
                let stats: BucketPassStats = g.withUnsafeMutableBufferPointer { p in
                    bucketer.markReady(2)  // outside a pass: ignored, not counted
                    XCTAssertFalse(bucketer.isActive)
                    bucketer.begin(gradients: p.baseAddress!)
                    XCTAssertTrue(bucketer.isActive)
                    for i in layout.indices.reversed() { bucketer.markReady(i) }
                    return bucketer.finish()
                }
                XCTAssertFalse(bucketer.isActive)
                XCTAssertEqual(g, want)
                XCTAssertEqual(stats.bytesReduced, 4 * 1371)
                XCTAssertEqual(stats.buckets, bucketer.buckets.count)
                XCTAssertEqual(stats.mode, mode)
                XCTAssertGreaterThanOrEqual(stats.passSeconds, stats.waitSeconds)
            }
        }
    }
}
