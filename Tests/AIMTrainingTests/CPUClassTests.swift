import AIMTensor
import Foundation
import XCTest

/// Issue 11: the tools on a CPU class other than this machine's, taken with AIM_CPU_FEATURES
/// (which narrows our detection and holds OpenBLAS, oneDNN and the bf16 check to the same class).
final class CPUClassTests: TrainToolTestCase {
    /// model.precision bf16 without AVX512_BF16: one clear line, non-zero exit, no crash, and it
    /// comes before the data is opened (the lists named here do not exist) and before the work dir.
    func testBF16WithoutBF16StopsWithOneLineBeforeData() throws {
        extraEnvironment = ["AIM_CPU_FEATURES": "avx2,fma"]
        let missing = scratch.appendingPathComponent("no-data")
        let wd = workDir("bf16-on-avx2")
        let r = try train(trainArgs(data: missing, workDir: wd, steps: 2, ["model.precision=bf16"]))
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.signalled, "crashed instead of reporting:\n\(r.output)")
        let errors = r.output.split(separator: "\n").filter { $0.contains("error") }
        XCTAssertEqual(errors.count, 1, "expected exactly one error line:\n\(r.output)")
        let line = String(errors.first ?? "")
        for s in ["model.precision: bf16", "AVX512_BF16", "model.precision: fp32", "AIM_CPU_FEATURES"] {
            XCTAssertTrue(line.contains(s), "the error does not say '\(s)': \(line)")
        }
        XCTAssertFalse(r.output.contains("no-data"), "the data was looked at before the CPU check:\n\(r.output)")
        XCTAssertFalse(r.output.contains("Fatal error") || r.output.contains("crashed"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: wd.path), "the work dir was created before the check")
    }

    /// oneDNN held below bf16 by its own switch: the same clear error, naming oneDNN's limit.
    func testBF16WithOneDNNHeldToAVX2StopsWithOneLine() throws {
        extraEnvironment = ["ONEDNN_MAX_CPU_ISA": "AVX2"]
        let r = try train(trainArgs(data: scratch.appendingPathComponent("no-data"), workDir: workDir("wd"), steps: 2,
                                    ["model.precision=bf16"]))
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertFalse(r.signalled, r.output)
        if BF16Support.isAvailable {   // on a CPU without bf16 the CPU check speaks first, as above
            XCTAssertTrue(r.output.contains("oneDNN is limited to avx2"), r.output)
        }
        XCTAssertTrue(r.output.contains("model.precision: fp32"), r.output)
    }

    /// `aim-model cpu` under an AVX2 narrowing: every library runs what an AVX2-only CPU runs.
    func testAVX2NarrowingHoldsEveryLibrary() throws {
        extraEnvironment = ["AIM_CPU_FEATURES": "avx2,fma"]
        let r = try run(try tool("aim-model"), ["cpu"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("class:          AVX2"), r.output)
        XCTAssertTrue(r.output.contains("OpenBLAS core:  Haswell") || r.output.contains("OpenBLAS core:  Zen"), r.output)
        XCTAssertTrue(r.output.contains("oneDNN isa:     avx2"), r.output)
        XCTAssertTrue(r.output.contains("bf16:           unavailable"), r.output)
    }

    /// With oneDNN as the fp32 library on AVX2, no product runs on oneDNN's reference kernels: its
    /// gemm:jit has no kernel for the MLP adapter's scaled fc2 (scale, then sum), and the reference
    /// one took 1.7 s a call on ViT-B/16 (now refused: that product goes through sgemm).
    func testOneDNNOnAVX2RunsNoReferenceKernels() throws {
        extraEnvironment = ["AIM_CPU_FEATURES": "avx2,fma", "ONEDNN_VERBOSE": "1"]
        let data = try makeDataset()
        let r = try train(trainArgs(data: data, workDir: workDir("onednn-avx2"), steps: 1,
                                    ["gemm=onednn", "model.drop_path_rate=0", "model.head_dropout=0"]))
        XCTAssertEqual(r.status, 0, r.output)
        let products = r.output.split(separator: "\n").filter { $0.contains("exec,cpu,matmul,") }
        XCTAssertFalse(products.isEmpty, "ONEDNN_VERBOSE printed no matmul: the check would see nothing\n\(r.output.suffix(2000))")
        let reference = products.filter { $0.contains(",ref:") }
        XCTAssertTrue(reference.isEmpty, "oneDNN reference kernels ran:\n\(reference.prefix(3).joined(separator: "\n"))")
        XCTAssertTrue(products.contains { $0.contains("eltwise_linear") } == false, "the scaled product should have taken the sgemm path")
    }

    /// Training with each fp32 GEMM library this machine has reaches the same tunable weights
    /// (the products are summed in different orders, so not bitwise: within 1e-4 relative).
    func testTrainingAgreesAcrossGemmLibraries() throws {
        let data = try makeDataset()
        var weights: [String: [String: [Float]]] = [:]
        for lib in GemmLibrary.allCases where Gemm.isAvailable(lib) {
            let wd = workDir("gemm-\(lib.rawValue)")
            let r = try train(trainArgs(data: data, workDir: wd, steps: 2, ["gemm=\(lib.rawValue)", "model.head_dropout=0",
                                                                             "model.drop_path_rate=0"]))
            XCTAssertEqual(r.status, 0, "\(lib): \(r.output)")
            XCTAssertTrue(r.output.contains("fp32 GEMM: \(Gemm.describe(lib).prefix(6))"), "\(lib) was not the library used:\n\(r.output)")
            weights[lib.rawValue] = try tunable(stepFile(wd, 2))
        }
        let reference = try XCTUnwrap(weights["openblas"])
        for (lib, w) in weights where lib != "openblas" {
            let (diff, name) = maxRelativeDifference(w, reference)
            XCTAssertLessThan(diff, 1e-4, "\(lib) vs openblas: \(name) differs by \(diff)")
        }
    }
}
