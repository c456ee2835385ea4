import Foundation
import XCTest

/// No trap is reachable from user input: the sources are read for the constructs that end a
/// process with a crash dump. `try!` and Foundation's non-throwing `FileHandle.write(_:)` (which
/// traps on a full disk or a closed pipe) appear nowhere; `fatalError` / `precondition` remain
/// only in files whose inputs are checked before they get there, each file with its reason here.
/// A new trap elsewhere fails this test until its input is validated (or its file is argued in).
final class TrapAuditTests: XCTestCase {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// Files (or folders, ending in "/") whose preconditions guard programming invariants only.
    static let invariantFiles: [String: String] = [
        "AIMTensor/Tensor.swift": "shapes and indices come from the model code; allocation failure exits cleanly",
        "AIMTensor/SafetensorsWriter.swift": "tensors are added by our own code, never from a file",
        "AIMTensor/Kernels/": "sizes come from a ModelConfig that validate() checked; labels are checked at annotation load",
        "AIMTensor/Threads.swift": "every caller checks --threads and the threads key (1 to 4096) first",
        "AIMTensor/RandomGenerator.swift": "bounds come from code (sample counts are checked non-empty)",
        "AIMDistributed/GradientBucketer.swift": "the begin/markReady/finish protocol of the trainer",
        "AIMDistributed/SingleProcessCommunicator.swift": "counts come from code",
        "AIMDistributed/MPICommunicator.swift": "counts come from code; environment problems exit with a message",
        "AIMData/Synth.swift": "aim-data synth validates its options before calling",
        "AIMData/SynthStills.swift": "aim-data synth validates its options before calling",
        "AIMData/Transforms.swift": "crop boxes are computed inside frames; ThreeCrop's need is checked by ClipPipeline",
        "AIMData/Resize.swift": "target sizes are positive by the schema's bounds",
        "AIMData/FrameStack.swift": "frame buffers are built by the decoder code",
        "AIMData/SampleFrames.swift": "clip settings are ≥ 1 by the schema; ClipPipeline refuses a video with no frames",
        "AIMData/PillikeOps.swift": "RandAugment magnitudes are bounded by the schema",
        "AIMData/RandAugment.swift": "n and m are bounded by the schema",
        "AIMData/ClipPipeline.swift": "mean/std lengths and sizes are fixed by the schema",
        "AIMData/VideoWriter.swift": "frames are produced by our synthetic-data code",
        "AIMData/VideoLoader.swift": "batch and rank arithmetic checked by the trainer; bad data throws",
        "AIMConfig/ConfigKey.swift": "schema defaults, fixed in code",
        "AIMConfig/ValueParsing.swift": "unreachable type combinations of the schema",
        "AIMConfig/Config.swift": "typed access with a key or type the code names wrongly",
        "AIMModel/": "layers are built from a validated ModelConfig",
        "aim-bench/": "benchmark shapes are fixed in code",
    ]

    func swiftFiles() throws -> [(String, String)] {
        let root = Self.sources.path
        guard let e = FileManager.default.enumerator(atPath: root) else { throw XCTSkip("no Sources folder at \(root)") }
        var out: [(String, String)] = []
        for case let rel as String in e where rel.hasSuffix(".swift") {
            out.append((rel, try String(contentsOfFile: root + "/" + rel, encoding: .utf8)))
        }
        XCTAssertGreaterThan(out.count, 50, "the audit must see the project's sources")
        return out
    }

    func testNoTrapsOutsideInvariantFiles() throws {
        var found: [String] = []
        for (rel, text) in try swiftFiles() {
            let allowed = Self.invariantFiles.keys.contains { $0.hasSuffix("/") ? rel.hasPrefix($0) : rel == $0 }
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                if code.contains("try!") { found.append("\(rel):\(i + 1): try!") }
                for pattern in ["FileHandle.standardError.write(", "FileHandle.standardOutput.write(", ".seekToEndOfFile()", ".write(Data("]
                    where code.contains(pattern) {
                    found.append("\(rel):\(i + 1): non-throwing FileHandle write (\(pattern))")
                }
                if !allowed {
                    for pattern in ["fatalError(", "precondition(", "preconditionFailure(", "assertionFailure("] where code.contains(pattern) {
                        found.append("\(rel):\(i + 1): \(pattern.dropLast()) outside the invariant files")
                    }
                }
            }
        }
        XCTAssertEqual(found, [], "traps reachable from input:\n" + found.joined(separator: "\n"))
    }

    /// The list names real files, so a renamed file cannot keep a stale exemption.
    func testInvariantFilesExist() throws {
        let files = try swiftFiles().map(\.0)
        for key in Self.invariantFiles.keys {
            XCTAssertTrue(files.contains { key.hasSuffix("/") ? $0.hasPrefix(key) : $0 == key }, "\(key) is not in Sources")
        }
    }
}
