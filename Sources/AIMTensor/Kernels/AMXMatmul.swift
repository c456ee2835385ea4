import Foundation
import CAMX

// bf16 products on Intel AMX tiles (TDPBF16PS), for CPUs where Debian's oneDNN 2.6 leaves most
// of the tile units idle: on a Xeon of family 6 model 207 its AMX matmul ran the ViT-B/16 step's
// linear shapes at 420–520 GFLOP/s where these 32 × 32 tile blocks ran 600–740 in the same process
// (docs/PERFORMANCE.md). The tile instructions are in CAMX; packing, blocking and threads are here.
// Accumulation is fp32 inside the tiles, as oneDNN's: the same products, summed in another order.

/// Whether this process can run AMX tile products, decided once.
public enum AMX {
    /// Why tile products cannot run here, nil when they can: the CPU (as `AIM_CPU_FEATURES` may
    /// narrow it) must have AMX-TILE and AMX-BF16, and Linux must grant the tile state.
    public static let unavailableReason: String? = {
        #if arch(x86_64)
        let f = CPUFeatures.current
        guard f.contains([.amxTile, .amxBF16]) else { return "this CPU has \(f), no AMX-BF16" }
        guard camx_request_permission() == 0 else { return "Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM)" }
        return nil
        #else
        return "not an x86-64 CPU"
        #endif
    }()
    public static var isAvailable: Bool { unavailableReason == nil }

    /// Tile products need K and N in whole 32-wide steps (every ViT and Swin linear has them;
    /// other shapes go to oneDNN).
    public static func fits(k: Int, n: Int) -> Bool { k > 0 && n > 0 && k % 32 == 0 && n % 32 == 0 }

    /// Elements of a packed B operand [K, N].
    public static func packedCount(k: Int, n: Int) -> Int { roundUp32(k) * n }

    static func roundUp32(_ x: Int) -> Int { (x + 31) / 32 * 32 }
}

/// Memory for tile operands: 64-byte aligned, so no tile row straddles two cache lines (malloc's
/// 16-byte alignment made a one-thread product 2–3× slower on the Xeon above). Free with `deallocate()`.
public func amxAllocate<T>(_ count: Int) -> UnsafeMutablePointer<T> {
    UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<T>.stride, alignment: 64).bindMemory(to: T.self, capacity: count)
}

// Packed B [K, N]: N/16 strips of 16 columns, strip s at s·Kp·16, laid out [Kp/2][16][2] (each
// column's pairs of consecutive k side by side), Kp = K rounded up to 32 with zero rows.

/// Packs B = wᵀ for w [N, K] (fp32, row-major; a linear weight for its forward), rounding to bf16.
public func amxPackTransposed(_ dst: UnsafeMutablePointer<UInt16>, _ w: UnsafePointer<Float>, n N: Int, k K: Int) {
    let kp = AMX.roundUp32(K)
    Threads.parallelFor(N / 16) { strips in
        for s in strips {
            let out = dst + s * kp * 16
            if kp > K { (out + K * 16).update(repeating: 0, count: (kp - K) * 16) }
            for j in 0..<16 {
                let row = w + (s * 16 + j) * K
                for k in 0..<K { out[(k >> 1) * 32 + j * 2 + (k & 1)] = toBF16(row[k]) }
            }
        }
    }
}

/// Packs B = w for w [K, N] (fp32, row-major; a linear weight [out, in] for its input gradient).
public func amxPackRows(_ dst: UnsafeMutablePointer<UInt16>, _ w: UnsafePointer<Float>, k K: Int, n N: Int) {
    let kp = AMX.roundUp32(K)
    Threads.parallelFor(N / 16) { strips in
        for s in strips {
            let out = dst + s * kp * 16
            for k in 0..<kp {
                let o = out + (k >> 1) * 32 + (k & 1)
                if k >= K { for j in 0..<16 { o[j * 2] = 0 }; continue }
                let row = w + k * N + s * 16
                for j in 0..<16 { o[j * 2] = toBF16(row[j]) }
            }
        }
    }
}

/// The input-gradient packing of W [N, K] (`amxPackRows(w, k: N, n: K)`) from its forward packing
/// (`amxPackTransposed(w, n: N, k: K)`): the same bf16 values, moved. N and K in whole 32-steps.
public func amxRepackForInputGradient(_ dst: UnsafeMutablePointer<UInt16>, _ forward: UnsafePointer<UInt16>, n N: Int, k K: Int) {
    Threads.parallelFor(K / 16) { strips in
        for s in strips {
            let out = dst + s * N * 16
            for n in 0..<N {
                let src = forward + (n >> 4) * K * 16 + (n & 15) * 2
                for kk in 0..<16 {
                    let k = s * 16 + kk
                    out[(n >> 1) * 32 + kk * 2 + (n & 1)] = src[(k >> 1) * 32 + (k & 1)]
                }
            }
        }
    }
}

/// C [M, N] (fp32, row stride N) = A [M, K] (bf16, row stride K) · B (packed [K, N]) [+ bias per
/// column] [+ C's old values when `accumulate`]. Needs `AMX.isAvailable` and `AMX.fits(k:n:)`.
public func amxMatmul(m M: Int, k K: Int, n N: Int, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>,
                      bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, accumulate: Bool) {
    // Reading `isAvailable` also makes the (once per process) tile-state request before any tile instruction.
    precondition(AMX.isAvailable, "amxMatmul: \(AMX.unavailableReason ?? "")")
    precondition(AMX.fits(k: K, n: N), "amxMatmul: K \(K) and N \(N) must be multiples of 32")
    guard M > 0 else { return }
    let blocks = (M + 31) / 32, pairs = N / 32, strip = K * 16
    // Bias in the tiles' start only when C is not kept; otherwise added after.
    let start: Int32 = accumulate ? 1 : (bias != nil ? 2 : 0)
    // Each thread takes a contiguous run of 32-row blocks and walks B in panels of 8 strip pairs
    // (256 columns, K·512 bytes: within L2), its A rows streaming through each panel. (Splitting
    // the columns instead, or panels of 4 pairs, measured the same on 2 SMT threads of one core.)
    let panel = 8
    Threads.parallelFor(blocks) { range in
        camx_configure()
        defer { camx_release() }
        var tailA: UnsafeMutablePointer<UInt16>?, tailC: UnsafeMutablePointer<Float>?
        defer { tailA?.deallocate(); tailC?.deallocate() }
        let tailRows = M - (blocks - 1) * 32
        var p0 = 0
        while p0 < pairs {
            let p1 = min(pairs, p0 + panel)
            for blk in range {
                let rows = blk == blocks - 1 ? tailRows : 32
                if rows == 32 {
                    for p in p0..<p1 {
                        camx_block32(a + blk * 32 * K, K, b + 2 * p * strip, strip, c + blk * 32 * N + p * 32, N, K, start,
                                     bias.map { $0 + p * 32 })
                    }
                    continue
                }
                // The last, partial block: its rows through a zero-padded copy, so no tile reads or
                // writes past the matrices.
                if tailA == nil {
                    tailA = amxAllocate(32 * K); tailA!.update(repeating: 0, count: 32 * K)
                    tailA!.update(from: a + blk * 32 * K, count: rows * K)
                    tailC = amxAllocate(32 * 32)
                }
                for p in p0..<p1 {
                    let out = c + blk * 32 * N + p * 32
                    if accumulate { for r in 0..<rows { (tailC! + r * 32).update(from: out + r * N, count: 32) } }
                    camx_block32(tailA, K, b + 2 * p * strip, strip, tailC, 32, K, start, bias.map { $0 + p * 32 })
                    for r in 0..<rows { (out + r * N).update(from: tailC! + r * 32, count: 32) }
                }
            }
            p0 = p1
        }
    }
    if accumulate, let bias { addBiasRows(c, bias, M, N) }
}
