import AIMTensor
import XCTest

final class WeightComparisonTests: XCTestCase {
    func testDifferenceIsRelativeToEachTensorsScale() {
        let a: [String: [Float]] = ["big": [100, -200], "small": [1e-3, 0]]
        let b: [String: [Float]] = ["big": [100, -198], "small": [1.1e-3, 0]]
        let c = WeightComparison(a, b)
        // big: 2 / 200 = 0.01; small: 1e-4 / 1e-3 = 0.1 — the small tensor is the worse one.
        XCTAssertEqual(c.maxRelativeDifference, 0.1, accuracy: 1e-4)
        XCTAssertEqual(c.worstKey, "small")
        XCTAssertEqual(c.mismatchedKeys, [])
    }

    func testNaNCountsAsWorstAndKeysMustMatch() {
        let c = WeightComparison(["w": [1, 2], "only_a": [0], "sized": [1, 2]],
                                 ["w": [1, .nan], "only_b": [0], "sized": [1]])
        XCTAssertTrue(c.maxRelativeDifference.isNaN)
        XCTAssertEqual(c.worstKey, "w")
        XCTAssertEqual(c.mismatchedKeys.sorted(), ["only_a", "only_b", "sized"])
    }

    func testIdenticalWeightsDifferByZero() {
        let a: [String: [Float]] = ["x": [0, 0, 0], "y": [3, -4]]
        XCTAssertEqual(WeightComparison(a, a).maxRelativeDifference, 0)
    }
}
