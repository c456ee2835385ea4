import XCTest
import AIMTensor

/// The bf16 frozen-weight GEMMs (model.precision: bf16) against the fp32 linear layer. Both
/// operands are rounded to bf16 (8 significant bits), products accumulate in fp32, so the stated
/// tolerance is max |Δ| ≤ 2 % of the fp32 result's RMS (measured: ≈ 1.3 % at the worst of 30k
/// outputs; a typical output is off by ≈ 0.2 %).
final class LinearBF16Tests: XCTestCase {
    func random(_ n: Int, _ seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let t = Tensor([n])
        for i in 0..<n { t[i] = Float(rng.normal()) }
        return t
    }

    func copy(_ t: Tensor) -> Tensor {
        let c = Tensor([t.count])
        c.data.update(from: t.data, count: t.count)
        return c
    }

    /// max |a − b| / RMS(b).
    func error(_ a: Tensor, _ b: Tensor) -> Double {
        var worst = 0.0, sq = 0.0
        for i in 0..<b.count { worst = max(worst, Double(abs(a[i] - b[i]))); sq += Double(b[i]) * Double(b[i]) }
        return worst / (sq / Double(b.count)).squareRoot()
    }

    func testBF16RoundsToNearestEven() {
        let x: [Float] = [1, 1 + 1.0 / 256, 1 + 3.0 / 256, 3 + 1.0 / 128, 3 + 3.0 / 128, -2.5, .infinity]
        var out = [UInt16](repeating: 0, count: x.count)
        toBF16(&out, x, count: x.count)
        // bf16 keeps 7 mantissa bits. Halfway cases go to the even mantissa: 1+2⁻⁸ → 1, 1+3·2⁻⁸ → 1+2⁻⁶,
        // 3+2⁻⁷ → 3, 3+3·2⁻⁷ → 3+2⁻⁵.
        XCTAssertEqual(out.map { Float(bitPattern: UInt32($0) << 16) }, [1, 1, 1 + 1.0 / 64, 3, 3 + 1.0 / 32, -2.5, .infinity])
    }

    /// Round to nearest even on random bit patterns (every rounding case, subnormals too), NaNs stay
    /// NaN, infinities and extremes convert as PyTorch's fp32 → bf16. The bulk conversion is CAMX's
    /// AVX-512 loop on CPUs with AVX-512 and the Swift loop elsewhere: each is checked where it runs.
    func testConversionOfRandomBitPatternsNaNAndInfinities() {
        var rng = RandomGenerator(seed: 9)
        var x = (0..<1003).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        x += [.nan, -.nan, .infinity, -.infinity, 0, -0.0, .greatestFiniteMagnitude, .leastNonzeroMagnitude, 1 + 1.0 / 256]
        var vector = [UInt16](repeating: 0, count: x.count)
        toBF16(&vector, x, count: x.count)
        for i in x.indices {
            let u = x[i].bitPattern
            let expected: UInt16 = x[i].isNaN ? UInt16(u >> 16) | 0x40 : UInt16((u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
            XCTAssertEqual(vector[i], expected, "element \(i) = \(x[i]) (bits \(String(u, radix: 16)))")
        }
    }

    /// The products need AVX512_BF16 or AMX: elsewhere these tests are skipped, with the reason.
    func requireBF16() throws {
        if let reason = BF16Support.unavailableReason { throw XCTSkip("bf16 products unavailable here: \(reason)") }
    }

    func testForwardAndInputGradientMatchFP32WithinBF16Tolerance() throws {
        try requireBF16()
        Threads.set(2)
        for (M, K, N) in [(37, 64, 48), (197, 96, 160), (45, 64, 96)] {   // the last two fit AMX tiles where the CPU has them
            let x = random(M * K, 1), w = random(N * K, 2), b = random(N, 3), dy = random(M * N, 4)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            for accumulate in [false, true] {
                let ref = random(M * N, 5), got = random(M * N, 5)
                linearForward(out: ref.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N, accumulate: accumulate)
                try linearForwardBF16(out: got.data, input: x.data, weight: bw, bias: b.data, rows: M, accumulate: accumulate)
                XCTAssertLessThanOrEqual(error(got, ref), 2e-2, "forward \(M)×\(K)→\(N) accumulate \(accumulate)")
                XCTAssertGreaterThan(error(got, ref), 0, "bf16 path must actually round")
                let dref = random(M * K, 6), dgot = random(M * K, 6)
                linearBackward(dInput: dref.data, dWeight: nil, dBias: nil, dOut: dy.data, input: nil, weight: w.data,
                               rows: M, inFeatures: K, outFeatures: N, accumulateInput: accumulate)
                try linearInputGradientBF16(dInput: dgot.data, dOut: dy.data, weight: bw, rows: M, accumulateInput: accumulate)
                XCTAssertLessThanOrEqual(error(dgot, dref), 2e-2, "input gradient \(M)×\(K)→\(N) accumulate \(accumulate)")
            }
        }
    }

    /// The full bf16 backward: dW (+= dyᵀ·x, a product with a transposed source) and db accumulate
    /// into what the gradient already holds, like the fp32 layer's micro-batch accumulation.
    func testWeightGradientMatchesFP32WithinBF16Tolerance() throws {
        try requireBF16()
        Threads.set(2)
        for (M, K, N) in [(1, 16, 8), (37, 64, 48), (197, 96, 160), (45, 64, 96)] {
            let x = random(M * K, 11), w = random(N * K, 12), dy = random(M * N, 13)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            let dwRef = random(N * K, 14), dwGot = random(N * K, 14), dbRef = random(N, 15), dbGot = random(N, 15)
            let dxRef = Tensor([M * K]), dxGot = Tensor([M * K])
            linearBackward(dInput: dxRef.data, dWeight: dwRef.data, dBias: dbRef.data, dOut: dy.data, input: x.data, weight: w.data,
                           rows: M, inFeatures: K, outFeatures: N)
            try linearBackwardBF16(dInput: dxGot.data, dWeight: dwGot.data, dBias: dbGot.data, dOut: dy.data, input: x.data,
                               weight: bw, rows: M)
            // Compare the increments, so the random starting values do not hide an error.
            let start = random(N * K, 14)
            let incRef = Tensor([N * K]), incGot = Tensor([N * K])
            for i in 0..<N * K { incRef[i] = dwRef[i] - start[i]; incGot[i] = dwGot[i] - start[i] }
            XCTAssertLessThanOrEqual(error(incGot, incRef), 2e-2, "weight gradient \(M)×\(K)→\(N)")
            XCTAssertGreaterThan(error(incGot, incRef), 0, "bf16 path must actually round")
            XCTAssertLessThanOrEqual(error(dxGot, dxRef), 2e-2, "input gradient \(M)×\(K)→\(N)")
            for i in 0..<N { XCTAssertEqual(dbGot[i], dbRef[i], accuracy: 1e-4 * max(1, abs(dbRef[i])), "bias gradient stays fp32") }
        }
    }

    /// A refreshed copy equals a fresh conversion of the changed weight, and a weight rounded per
    /// use multiplies bit for bit as a kept one (oneDNN's 8×8 shape and a tile-sized 32×64 one).
    /// A residual, a scale and an input-gradient residual taken inside the product (oneDNN post-ops;
    /// tile shapes lay the residual down first) give the bits of the product followed by those adds.
    func testResidualAndScaleInsideTheProductGiveTheSameBits() throws {
        try requireBF16()
        Threads.set(2)
        for (M, K, N) in [(37, 64, 48), (197, 96, 160)] {   // the second fits AMX tiles where the CPU has them
            let x = random(M * K, 31), w = random(N * K, 32), b = random(N, 33), r = random(M * N, 34), old = random(M * N, 35)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            let plain = Tensor([M * N])
            try linearForwardBF16(out: plain.data, input: x.data, weight: bw, bias: b.data, rows: M)
            let fused = Tensor([M * N])
            try linearForwardBF16(out: fused.data, input: x.data, weight: bw, bias: b.data, rows: M, residual: r.data)
            XCTAssertEqual(fused.array, (0..<M * N).map { plain[$0] + r[$0] }, "residual \(M)×\(K)→\(N)")
            let scaled = copy(old)
            try linearForwardBF16(out: scaled.data, input: x.data, weight: bw, bias: b.data, rows: M, accumulate: true, scale: 0.5)
            XCTAssertEqual(scaled.array, (0..<M * N).map { old[$0] + 0.5 * plain[$0] }, "scale \(M)×\(K)→\(N)")
            let dy = random(M * N, 36), dr = random(M * K, 37), dOld = random(M * K, 38)
            for accumulate in [false, true] {
                let dPlain = copy(dOld), dFused = copy(dOld)
                try linearInputGradientBF16(dInput: dPlain.data, dOut: dy.data, weight: bw, rows: M, accumulateInput: accumulate)
                try linearBackwardBF16(dInput: dFused.data, dWeight: nil, dBias: nil, dOut: dy.data, input: nil, weight: bw, rows: M,
                                       accumulateInput: accumulate, inputResidual: dr.data)
                XCTAssertEqual(dFused.array, (0..<M * K).map { dPlain[$0] + dr[$0] }, "input residual \(M)×\(K)→\(N) accumulate \(accumulate)")
            }
        }
    }

    /// An output written in bf16 by the product (fc1's, kept for the activation) is bit for bit the
    /// fp32 output rounded by `toBF16`, from an fp32 input or one already rounded.
    func testRoundedOutputIsTheFP32OutputRounded() throws {
        try requireBF16()
        Threads.set(2)
        for (M, K, N) in [(37, 64, 48), (197, 96, 160)] {
            let x = random(M * K, 41), w = random(N * K, 42), b = random(N, 43)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            if BF16Products.tiles(k: K, n: N) { continue }   // tiles write fp32 only; the model takes the fp32 path there
            let plain = Tensor([M * N])
            try linearForwardBF16(out: plain.data, input: x.data, weight: bw, bias: b.data, rows: M)
            var expected = [UInt16](repeating: 0, count: M * N)
            toBF16(&expected, plain.data, count: M * N)
            var fromFP32 = [UInt16](repeating: 1, count: M * N), fromRounded = fromFP32
            try linearForwardBF16(roundedOut: &fromFP32, input: x.data, roundedInput: nil, weight: bw, bias: b.data, rows: M)
            var x16 = [UInt16](repeating: 0, count: M * K)
            toBF16(&x16, x.data, count: M * K)
            try linearForwardBF16(roundedOut: &fromRounded, input: nil, roundedInput: x16, weight: bw, bias: b.data, rows: M)
            XCTAssertEqual(fromFP32, expected, "fp32 input \(M)×\(K)→\(N)")
            XCTAssertEqual(fromRounded, expected, "bf16 input \(M)×\(K)→\(N)")
        }
    }

    func testRefreshReRoundsChangedWeight() throws {
        try requireBF16()
        for (N, K) in [(8, 8), (32, 64)] {
            let w = random(N * K, 21)
            let bw = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            for i in 0..<N * K { w[i] *= 3 }
            bw.refresh(from: w.data)
            let fresh = BF16Weight(w.data, outFeatures: N, inFeatures: K)
            let perUse = BF16Weight(roundingPerUse: w.data, outFeatures: N, inFeatures: K)
            let x = random(3 * K, 22), a = Tensor([3 * N]), b = Tensor([3 * N]), c = Tensor([3 * N])
            try linearForwardBF16(out: a.data, input: x.data, weight: bw, bias: nil, rows: 3)
            try linearForwardBF16(out: b.data, input: x.data, weight: fresh, bias: nil, rows: 3)
            try linearForwardBF16(out: c.data, input: x.data, weight: perUse, bias: nil, rows: 3)
            XCTAssertEqual(a.array, b.array); XCTAssertEqual(a.array, c.array)
            let dy = random(3 * N, 23), da = Tensor([3 * K]), dc = Tensor([3 * K])
            try linearInputGradientBF16(dInput: da.data, dOut: dy.data, weight: bw, rows: 3)
            try linearInputGradientBF16(dInput: dc.data, dOut: dy.data, weight: perUse, rows: 3)
            XCTAssertEqual(da.array, dc.array)
        }
    }

    /// A kept (frozen) weight is held in oneDNN's packed layouts, made at first use, the second one
    /// from the first (the row-major copy is dropped): the same bits as the row-major weight a
    /// tunable one rounds per use, whichever product comes first, and again after a refresh; one
    /// copy held after the forward alone, two after both (the ragged shape's packed copies are padded).
    func testPackedWeightsGiveTheBitsOfRowMajorOnes() throws {
        try requireBF16()
        for (N, K, M) in [(2304, 768, 64), (50, 37, 7), (192, 768, 33)] {
            for inputGradientFirst in [false, true] {
                let w = random(N * K, 31)
                let kept = BF16Weight(w.data, outFeatures: N, inFeatures: K)
                let perUse = BF16Weight(roundingPerUse: w.data, outFeatures: N, inFeatures: K)
                let x = random(M * K, 32), dy = random(M * N, 33)
                let y = Tensor([M * N]), yRef = Tensor([M * N]), dx = Tensor([M * K]), dxRef = Tensor([M * K])
                let plainBytes = N * K * 2, padded = N % 64 != 0 || K % 64 != 0
                func check(_ what: String) throws {
                    if inputGradientFirst { try linearInputGradientBF16(dInput: dx.data, dOut: dy.data, weight: kept, rows: M) }
                    try linearForwardBF16(out: y.data, input: x.data, weight: kept, bias: nil, rows: M)
                    if !inputGradientFirst {
                        if !padded { XCTAssertEqual(kept.bytes, plainBytes, "\(N)×\(K) \(what): one copy after the forward alone") }
                        try linearInputGradientBF16(dInput: dx.data, dOut: dy.data, weight: kept, rows: M)
                    }
                    if !padded { XCTAssertEqual(kept.bytes, 2 * plainBytes, "\(N)×\(K) \(what): two copies after both") }
                    try linearForwardBF16(out: yRef.data, input: x.data, weight: perUse, bias: nil, rows: M)
                    try linearInputGradientBF16(dInput: dxRef.data, dOut: dy.data, weight: perUse, rows: M)
                    XCTAssertEqual(y.array, yRef.array, "\(N)×\(K) \(what) forward")
                    XCTAssertEqual(dx.array, dxRef.array, "\(N)×\(K) \(what) input gradient")
                }
                try check("first use")
                for i in 0..<N * K { w[i] = -0.5 * w[i] }
                kept.refresh(from: w.data)
                try check("after refresh")
            }
        }
    }

    /// Where oneDNN would offer only its reference kernel for packed weights (forced here with
    /// AIM_TEST_REFUSE_PACKED on shapes no other test uses, so their primitives are made under it),
    /// the products take the weights row-major again: the same bits, residual and rounded output too.
    func testRefusedPackedWeightsFallBackToRowMajor() throws {
        try requireBF16()
        setenv("AIM_TEST_REFUSE_PACKED", "1", 1)
        defer { unsetenv("AIM_TEST_REFUSE_PACKED") }
        let (N, K, M) = (320, 96, 11)
        let w = random(N * K, 41), x = random(M * K, 42), dy = random(M * N, 43), r = random(M * N, 44)
        let kept = BF16Weight(w.data, outFeatures: N, inFeatures: K)
        let perUse = BF16Weight(roundingPerUse: w.data, outFeatures: N, inFeatures: K)
        var outputs: [[Float]] = []
        for weight in [kept, perUse] {
            let y = Tensor([M * N]), yr = Tensor([M * N]), dx = Tensor([M * K])
            var rounded = [UInt16](repeating: 0, count: M * N)
            try linearForwardBF16(out: y.data, input: x.data, weight: weight, bias: nil, rows: M)
            try linearForwardBF16(out: yr.data, input: x.data, weight: weight, bias: nil, rows: M, residual: r.data)
            let wrote = try linearForwardBF16(roundedOut: &rounded, input: x.data, roundedInput: nil, weight: weight, bias: nil, rows: M)
            try linearInputGradientBF16(dInput: dx.data, dOut: dy.data, weight: weight, rows: M)
            outputs.append(y.array + yr.array + dx.array + (wrote ? rounded.map { Float(bitPattern: UInt32($0) << 16) } : y.array.map { Float(bitPattern: UInt32(toBF16Bits($0)) << 16) }))
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertGreaterThanOrEqual(kept.bytes, 2 * N * K * 2, "the packed copies (padded) stay; only the products read them row-major again")
    }

    private func toBF16Bits(_ x: Float) -> UInt16 {
        var out: UInt16 = 0, v = x
        toBF16(&out, &v, count: 1)
        return out
    }
}
