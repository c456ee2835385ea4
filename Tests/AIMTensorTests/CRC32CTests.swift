import AIMTensor
import XCTest

/// CRC-32C against the standard check value and the test vectors of RFC 3720 (iSCSI), appendix
/// B.4, and the masked form against TensorBoard's own `masked_crc32c`.
final class CRC32CTests: XCTestCase {
    func testCheckValueAndRFC3720Vectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum(Array("a".utf8)), 0xC1D0_4330)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
    }

    func testContinuingEqualsOneChecksumOverTheWhole() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for cut in [0, 1, 7, 500, 999, 1000] {
            let head = CRC32C.checksum(bytes[..<cut])
            XCTAssertEqual(CRC32C.checksum(bytes[cut...], continuing: head), CRC32C.checksum(bytes), "cut at \(cut)")
        }
    }

    /// Expected values printed by tensorboard 2.21's
    /// `tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c`.
    func testMaskMatchesTensorBoard() {
        XCTAssertEqual(CRC32C.mask(CRC32C.checksum(Array("123456789".utf8))), 0xC78A_B0E5)
        var ten: [UInt8] = [10, 0, 0, 0, 0, 0, 0, 0]   // a record length of 10, as uint64 LE
        XCTAssertEqual(CRC32C.mask(CRC32C.checksum(ten)), 0x3ABF_A3AE)
        ten[0] = 11
        XCTAssertNotEqual(CRC32C.mask(CRC32C.checksum(ten)), 0x3ABF_A3AE)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let x = UInt32.random(in: 0...UInt32.max, using: &rng)
            XCTAssertEqual(CRC32C.unmask(CRC32C.mask(x)), x)
        }
    }
}
