import XCTest
import AIMTensor

/// The same inputs with the same thread count give bitwise the same outputs, for 1 and 2 threads,
/// on shapes large enough to be split into chunks (and, for attention, both code paths).
final class DeterminismTests: XCTestCase {
    /// Runs every kernel once and returns all outputs concatenated.
    private func runAll() -> [Float] {
        var results = [Float]()
        let (M, K, N) = (67, 96, 50)
        let x = randomTensor([M, K], seed: 200), w = randomTensor([N, K], seed: 201), b = randomTensor([N], seed: 202)
        let dy = randomTensor([M, N], seed: 203)
        let y = Tensor([M, N]), dx = Tensor([M, K]), dw = Tensor([N, K]), db = Tensor([N])
        linearForward(out: y.data, input: x.data, weight: w.data, bias: b.data, rows: M, inFeatures: K, outFeatures: N)
        linearBackward(dInput: dx.data, dWeight: dw.data, dBias: db.data, dOut: dy.data, input: x.data, weight: w.data,
                       rows: M, inFeatures: K, outFeatures: N)
        results += y.array + dx.array + dw.array + db.array

        let lw = randomTensor([K], seed: 204), lb = randomTensor([K], seed: 205), ldy = randomTensor([M, K], seed: 206)
        let ln = Tensor([M, K]), mean = Tensor([M]), rstd = Tensor([M]), ldx = Tensor([M, K]), ldw = Tensor([K]), ldb = Tensor([K])
        layerNormForward(out: ln.data, input: x.data, weight: lw.data, bias: lb.data, mean: mean.data, rstd: rstd.data,
                         rows: M, channels: K, eps: 1e-6)
        layerNormBackward(dInput: ldx.data, dWeight: ldw.data, dBias: ldb.data, dOut: ldy.data, input: x.data,
                          weight: lw.data, mean: mean.data, rstd: rstd.data, rows: M, channels: K)
        results += ln.array + ldx.array + ldw.array + ldb.array

        let g = Tensor([M * K])
        geluForward(out: g.data, input: x.data, count: M * K); results += g.array
        quickGeluBackward(dInput: g.data, dOut: ldy.data, input: x.data, count: M * K); results += g.array
        softmaxForward(out: g.data, input: x.data, rows: M, cols: K); results += g.array
        softmaxBackward(dInput: ldx.data, dOut: ldy.data, output: g.data, rows: M, cols: K); results += ldx.array

        for (S, L, D, H) in [(3, 40, 48, 4), (20, 8, 48, 4), (20, attentionDirectMaxLength, 48, 4)] {
            let qkv = randomTensor([S, L, 3 * D], seed: 207), r = randomTensor([S, L, D], seed: 208)
            let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L]), dqkv = Tensor([S, L, 3 * D])
            attentionForward(out: out.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
            attentionBackward(dQKV: dqkv.data, dOut: r.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
            results += out.array + probs.array + dqkv.array
        }

        let img = randomTensor([2, 3, 16, 16], seed: 209), pw = randomTensor([10, 3, 4, 4], seed: 210)
        let pe = Tensor([2, 16, 10]), pdw = Tensor([10, 3, 4, 4]), pdb = Tensor([10]), pdx = Tensor([2, 3, 16, 16])
        patchEmbedForward(out: pe.data, input: img.data, weight: pw.data, bias: nil, images: 2, channels: 3,
                          height: 16, width: 16, patch: 4, outChannels: 10)
        patchEmbedBackward(dInput: pdx.data, dWeight: pdw.data, dBias: pdb.data, dOut: pe.data, input: img.data, weight: pw.data,
                           images: 2, channels: 3, height: 16, width: 16, patch: 4, outChannels: 10)
        results += pe.array + pdw.array + pdb.array + pdx.array
        return results
    }

    /// Our loops run on OpenMP's team (the one oneDNN uses): every chunk once, on two threads,
    /// a loop inside a loop still covers its range, and the bits are those of Dispatch's threads.
    func testLoopsRunOnTheOpenMPTeam() {
        Threads.set(2)
        defer { Threads.onOpenMPTeam = true }
        XCTAssertTrue(Threads.onOpenMPTeam, "libgomp (loaded with oneDNN) should carry our loops")
        let n = 1000
        var seen = [Int](repeating: 0, count: n), inner = [Int](repeating: 0, count: n * 10)
        var threadOfChunk = [pthread_t?](repeating: nil, count: 2)
        seen.withUnsafeMutableBufferPointer { seen in
            inner.withUnsafeMutableBufferPointer { inner in
                threadOfChunk.withUnsafeMutableBufferPointer { owners in
                    Threads.parallelFor(n) { r in
                        owners[r.lowerBound == 0 ? 0 : 1] = pthread_self()
                        for i in r {
                            seen[i] += 1
                            Threads.parallelFor(10) { rr in for j in rr { inner[i * 10 + j] += 1 } }
                        }
                    }
                }
            }
        }
        XCTAssertEqual(Set(seen), [1])
        XCTAssertEqual(Set(inner), [1])
        if let a = threadOfChunk[0], let b = threadOfChunk[1] {
            XCTAssertEqual(pthread_equal(a, b), 0, "the two chunks ran on one thread")
        } else {
            XCTFail("a chunk did not run")
        }
        let team = runAll()
        Threads.onOpenMPTeam = false
        XCTAssertFalse(Threads.onOpenMPTeam)
        assertBitwiseEqual(team, runAll(), "OpenMP team vs Dispatch")
    }

    func testSameThreadCountGivesSameBits() {
        for threads in [1, 2] {
            Threads.set(threads)
            let a = runAll(), b = runAll()
            assertBitwiseEqual(a, b, "\(threads) thread(s)")
        }
        Threads.set(2)
    }
}
