import AIMTensor
import XCTest

/// Issue 11: every fp32 GEMM library behind the linear layers computes the same products (all
/// four transposition cases, overwrite and accumulate, odd sizes), and the CPU-class logic.
final class GemmLibraryTests: XCTestCase {
    /// Small products, and products large enough that OpenBLAS and BLIS run split over our threads
    /// (by C's rows when it is taller, by its columns when wider).
    func testEveryLibraryMatchesAPlainLoop() throws {
        Threads.set(2)
        for (M, N, K) in [(37, 29, 53), (150, 131, 113), (97, 180, 121)] { try checkLibraries(M: M, N: N, K: K) }
    }

    private func checkLibraries(M: Int, N: Int, K: Int) throws {
        var rng = RandomGenerator(seed: 5)
        let a = (0..<(M * K)).map { _ in Float(rng.normal()) }, b = (0..<(K * N)).map { _ in Float(rng.normal()) }
        let c0 = (0..<(M * N)).map { _ in Float(rng.normal()) }
        let libraries = GemmLibrary.allCases.filter(Gemm.isAvailable)
        XCTAssertTrue(libraries.contains(.openblas) && libraries.contains(.onednn), "\(libraries)")
        for lib in libraries {
            for transA in [false, true] {
                for transB in [false, true] {
                    for beta: Float in [0, 1] {
                        // op(A)[i, k] and op(B)[k, j] from the same numbers stored either way.
                        let lda = transA ? M : K, ldb = transB ? K : N
                        func opA(_ i: Int, _ k: Int) -> Float { transA ? a[k * M + i] : a[i * K + k] }
                        func opB(_ k: Int, _ j: Int) -> Float { transB ? b[j * K + k] : b[k * N + j] }
                        var c = c0
                        Gemm.sgemm(lib, transA: transA, transB: transB, M: M, N: N, K: K, alpha: 0.5, A: a, lda: lda,
                                   B: b, ldb: ldb, beta: beta, C: &c, ldc: N)
                        var worst: Double = 0
                        for i in 0..<M {
                            for j in 0..<N {
                                var s: Double = 0
                                for k in 0..<K { s += Double(opA(i, k)) * Double(opB(k, j)) }
                                worst = max(worst, abs(0.5 * s + Double(beta) * Double(c0[i * N + j]) - Double(c[i * N + j])))
                            }
                        }
                        XCTAssertLessThan(worst, 1e-3, "\(lib) \(M)×\(K)·\(K)×\(N) transA \(transA) transB \(transB) beta \(beta)")
                    }
                }
            }
        }
    }

    /// A linear forward with a bias under each library; under oneDNN it runs as one matmul with the
    /// bias inside (FusedBiasLinear), which must agree with the fill-then-multiply path it replaced.
    func testLinearForwardWithBiasUnderEveryLibrary() throws {
        Threads.set(2)
        let (M, K, N) = (45, 37, 23)
        var rng = RandomGenerator(seed: 9)
        let x = (0..<(M * K)).map { _ in Float(rng.normal()) }, w = (0..<(N * K)).map { _ in Float(rng.normal()) }
        let b = (0..<N).map { _ in Float(rng.normal()) }
        let old = (0..<(M * N)).map { _ in Float(rng.normal()) }, skip = (0..<(M * N)).map { _ in Float(rng.normal()) }
        var product = [Double](repeating: 0, count: M * N)
        for i in 0..<M { for j in 0..<N {
            var s = Double(b[j])
            for k in 0..<K { s += Double(x[i * K + k]) * Double(w[j * K + k]) }
            product[i * N + j] = s
        } }
        let previous = Gemm.library
        defer { try? Gemm.select(previous); FusedBiasLinear.enabled = true }
        for lib in GemmLibrary.allCases.filter(Gemm.isAvailable) {
            try Gemm.select(lib)
            // Overwriting, adding to the old output, either with a residual, and a scaled product
            // (the oneDNN post-ops sum, binary add and linear eltwise when fused): each term
            // dropped, doubled or unscaled fails.
            for (accumulate, residual, scale) in [(false, false, Float(1)), (true, false, 1), (false, true, 1), (true, true, 1),
                                                  (true, false, 0.5), (false, false, 0.5)] {
                let expected = (0..<(M * N)).map {
                    Double(scale) * product[$0] + (accumulate ? Double(old[$0]) : 0) + (residual ? Double(skip[$0]) : 0)
                }
                var outs: [[Float]] = []
                for fused in [true, false] {
                    FusedBiasLinear.enabled = fused
                    var y = accumulate ? old : [Float](repeating: .nan, count: M * N)
                    skip.withUnsafeBufferPointer { r in
                        linearForward(out: &y, input: x, weight: w, bias: b, rows: M, inFeatures: K, outFeatures: N,
                                      accumulate: accumulate, residual: residual ? r.baseAddress! : nil, scale: scale)
                    }
                    let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? .nan
                    XCTAssertLessThan(worst, 1e-4, "\(lib), fused allowed: \(fused), accumulate: \(accumulate), residual: \(residual), scale: \(scale)")
                    outs.append(y)
                }
                if lib != .onednn { XCTAssertEqual(outs[0], outs[1], "\(lib) has no fused path: the same bits either way") }
            }
        }
    }

    /// The input gradient with a skip connection's gradient added (one oneDNN matmul with a
    /// binary-add post-op when fused), overwriting and accumulating, under every library.
    func testLinearInputGradientWithResidualUnderEveryLibrary() throws {
        Threads.set(2)
        let (M, K, N) = (41, 29, 19)
        var rng = RandomGenerator(seed: 11)
        let dy = (0..<(M * N)).map { _ in Float(rng.normal()) }, w = (0..<(N * K)).map { _ in Float(rng.normal()) }
        let old = (0..<(M * K)).map { _ in Float(rng.normal()) }, skip = (0..<(M * K)).map { _ in Float(rng.normal()) }
        var product = [Double](repeating: 0, count: M * K)
        for i in 0..<M { for k in 0..<K { for j in 0..<N { product[i * K + k] += Double(dy[i * N + j]) * Double(w[j * K + k]) } } }
        let previous = Gemm.library
        defer { try? Gemm.select(previous); FusedBiasLinear.enabled = true }
        for lib in GemmLibrary.allCases.filter(Gemm.isAvailable) {
            try Gemm.select(lib)
            for accumulate in [false, true] { for fused in [true, false] {
                FusedBiasLinear.enabled = fused
                var dx = accumulate ? old : [Float](repeating: .nan, count: M * K)
                skip.withUnsafeBufferPointer { r in
                    linearBackward(dInput: &dx, dWeight: nil, dBias: nil, dOut: dy, input: nil, weight: w, rows: M, inFeatures: K,
                                   outFeatures: N, accumulateInput: accumulate, inputResidual: r.baseAddress!)
                }
                let worst = (0..<(M * K)).map { abs(Double(dx[$0]) - (product[$0] + Double(skip[$0]) + (accumulate ? Double(old[$0]) : 0))) }.max()!
                XCTAssertLessThan(worst, 1e-4, "\(lib), fused allowed: \(fused), accumulate: \(accumulate)")
            } }
        }
    }

    func testSelectingAnUnknownLibraryIsAClearError() {
        XCTAssertThrowsError(try Gemm.resolve("mkl")) { e in
            XCTAssertTrue("\(e)".contains("mkl") && "\(e)".contains("openblas"), "\(e)")
        }
        XCTAssertEqual(try Gemm.resolve("blis"), .blis)
    }

    func testCPUClassFromFlags() {
        // Zen 3 (EPYC 7xx3): AVX2 and FMA, no AVX-512.
        let zen3 = "flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes vpclmulqdq\n"
        let f = CPUFeatures.fromCPUInfo(zen3)
        XCTAssertEqual(f, [.avx2, .fma])
        XCTAssertEqual(f.cpuClass, .avx2)
        XCTAssertFalse(f.hasBF16)
        // Sapphire Rapids: AVX-512 with BF16 and AMX.
        let spr = "flags\t\t: avx2 fma avx512f avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile amx_int8\n"
        XCTAssertEqual(CPUFeatures.fromCPUInfo(spr).cpuClass, .amx)
        XCTAssertTrue(CPUFeatures.fromCPUInfo(spr).hasBF16)
        XCTAssertEqual(CPUFeatures.parse("avx2,fma"), [.avx2, .fma])
        XCTAssertEqual(CPUFeatures.parse("AVX2, FMA, avx512"), [.avx2, .fma, .avx512f, .avx512bw, .avx512vl])
        XCTAssertEqual(CPUFeatures.parse("none"), [])
        XCTAssertEqual(CPUFeatures.unknownNames("AVX2, fma, avx512, amx_bf16, none"), [])
        XCTAssertEqual(CPUFeatures.unknownNames("avx2,bogus,avx-512f"), ["bogus"], "AVX-512F is a display name")
        XCTAssertEqual(CPUFeatures.unknownNames("avx2,sse5"), ["sse5"])
    }

    /// OpenBLAS's kernels must match the class: its Prescott fallback on a CPU it does not know
    /// (or SkylakeX under an AVX2 narrowing) is replaced at start.
    func testOpenBLASCoreMustFitTheClass() {
        let avx512: CPUFeatures = [.avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512bf16]
        XCTAssertFalse(OpenBLASCore.fits("Prescott", avx512))
        // A Haswell core set in the environment on an AVX-512 CPU is replaced: half the speed there.
        XCTAssertFalse(OpenBLASCore.fits("Haswell", avx512))
        XCTAssertTrue(OpenBLASCore.fits("Cooperlake", avx512))
        XCTAssertTrue(OpenBLASCore.fits("SkylakeX", avx512))
        XCTAssertEqual(OpenBLASCore.recommended(for: avx512), "SkylakeX")
        XCTAssertFalse(OpenBLASCore.fits("SkylakeX", [.avx2, .fma]))
        XCTAssertTrue(OpenBLASCore.fits("Zen", [.avx2, .fma]))
        XCTAssertNil(OpenBLASCore.recommended(for: []))
    }

    /// This process's detection agrees with the kernel's view in /proc/cpuinfo on the features
    /// we use (the kernel hides what the OS does not save, as our XGETBV test does).
    func testDetectionAgreesWithTheKernel() throws {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { throw XCTSkip("no /proc/cpuinfo") }
        XCTAssertEqual(CPUFeatures.detect(), CPUFeatures.fromCPUInfo(text))
    }
}
