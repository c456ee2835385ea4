import AIMConfig
import XCTest

final class ConfigTests: XCTestCase {
    func testDefaults() {
        let c = Config()
        XCTAssertEqual(c.int("model.width"), 768)
    }
}
