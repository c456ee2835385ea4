import Foundation
import COpenBLAS

/// One thread setting for OpenBLAS and for our own parallel loops.
///
/// Loops split their range into exactly `Threads.count` contiguous chunks, so the work each
/// element sees (and the order of any per-chunk reduction) depends on the thread count only,
/// never on scheduling: the same inputs with the same thread count give bitwise the same output.
public enum Threads {
    nonisolated(unsafe) private static var current: Int = 1

    public static var count: Int { current }

    /// The most threads a `--threads` option or the `threads` key may ask for.
    public static let maxCount = 4096

    /// Why `--threads n` cannot be used, nil when it can: every tool checks its option with this
    /// before anything runs, so `set` never meets a bad count.
    public static func problem(with n: Int?) -> String? {
        guard let n, !(1...maxCount).contains(n) else { return nil }
        return "--threads \(n): compute threads per rank must be 1 to \(maxCount)"
    }

    /// Sets our loops, OpenBLAS and the selected GEMM library to `n` threads.
    public static func set(_ n: Int) {
        precondition(n >= 1, "thread count must be at least 1, got \(n)")
        current = n
        openblas_set_num_threads(Int32(n))
        Gemm.setThreads(n)
    }

    /// Cores on this machine divided by the MPI ranks that share it (at least 1).
    public static func defaultCount() -> Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let env = ProcessInfo.processInfo.environment
        let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "") ?? 1
        return max(1, cores / max(1, local))
    }

    /// Calls `body` on `Threads.count` contiguous chunks of `0..<n` (fewer when n is small
    /// relative to `grain`); chunk boundaries depend only on n, grain and the thread count.
    public static func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let chunks = min(current, max(1, n / max(1, grain)))
        if chunks == 1 { body(0..<n); return }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                body(chunkRange(n, chunks: chunks, index: c))
            }
        }
    }

    /// The c-th of `chunks` near-equal contiguous pieces of 0..<n.
    public static func chunkRange(_ n: Int, chunks: Int, index c: Int) -> Range<Int> {
        let base = n / chunks, extra = n % chunks
        let lo = c * base + min(c, extra)
        return lo..<(lo + base + (c < extra ? 1 : 0))
    }
}
