import Foundation
import COpenBLAS

/// One thread setting for OpenBLAS and for our own parallel loops.
///
/// Loops split their range into exactly `Threads.count` contiguous chunks, so the work each
/// element sees (and the order of any per-chunk reduction) depends on the thread count only,
/// never on scheduling: the same inputs with the same thread count give bitwise the same output.
///
/// The loops run on OpenMP's team, the one oneDNN's products run on (`OpenMPTeam`), so a step
/// has one pool of threads: after a product its threads wait briefly for the next loop instead
/// of handing the cores to a second pool. Why: with our loops on Dispatch's threads, oneDNN's
/// team had to sleep between calls (OMP_WAIT_POLICY=PASSIVE) or the two pools spun against each
/// other (bf16 ViT-B/16 step, Zen 4: 3.1 s with both spinning, 2.6–2.9 s asleep, 2.5–2.7 s on one
/// team). OpenBLAS and BLIS run their products serially inside these loops (`Gemm.sgemm`).
public enum Threads {
    nonisolated(unsafe) private static var current: Int = 1

    public static var count: Int { current }

    /// Whether the loops run on OpenMP's team (libgomp is loaded with oneDNN); tests switch it off
    /// to compare with Dispatch's threads, which run the loops otherwise.
    public static var onOpenMPTeam: Bool {
        get { OpenMPTeam.enabled && OpenMPTeam.available }
        set { OpenMPTeam.enabled = newValue }
    }

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
        // oneDNN runs the bf16 products whichever library runs fp32's.
        OneDNN.setThreads(n)
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
            let chunk = { (c: Int) in body(chunkRange(n, chunks: chunks, index: c)) }
            if !OpenMPTeam.run(chunks, chunk) { DispatchQueue.concurrentPerform(iterations: chunks, execute: chunk) }
        }
    }

    /// The c-th of `chunks` near-equal contiguous pieces of 0..<n.
    public static func chunkRange(_ n: Int, chunks: Int, index c: Int) -> Range<Int> {
        let base = n / chunks, extra = n % chunks
        let lo = c * base + min(c, extra)
        return lo..<(lo + base + (c < extra ? 1 : 0))
    }
}

/// libgomp's team (the OpenMP runtime Debian's oneDNN is built with), reached through the entry
/// point GCC emits for `#pragma omp parallel`: Swift has no OpenMP, and clang's would bring a
/// second runtime (libomp) into the process.
enum OpenMPTeam {
    private typealias Body = @convention(c) (UnsafeMutableRawPointer?) -> Void
    private typealias Parallel = @convention(c) (Body, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void
    private typealias Query = @convention(c) () -> Int32
    private struct Job { let chunks: Int; let body: (Int) -> Void }

    private static let entries: (parallel: Parallel, thread: Query, team: Query)? = {
        guard let p = dlsym(nil, "GOMP_parallel"), let t = dlsym(nil, "omp_get_thread_num"),
              let n = dlsym(nil, "omp_get_num_threads") else { return nil }
        return (unsafeBitCast(p, to: Parallel.self), unsafeBitCast(t, to: Query.self), unsafeBitCast(n, to: Query.self))
    }()

    nonisolated(unsafe) static var enabled = true

    /// Whether a team exists here (libgomp loaded with oneDNN).
    static var available: Bool { entries != nil }

    /// `body(c)` for c in 0..<chunks on a team of `chunks` threads, the calling thread one of them;
    /// false (nothing run) without libgomp. Each member takes chunks me, me + team, …, so a smaller
    /// team (a loop inside a loop runs on a team of one) still runs every chunk once.
    static func run(_ chunks: Int, _ body: (Int) -> Void) -> Bool {
        guard enabled, let entries else { return false }
        withoutActuallyEscaping(body) { body in
            var job = Job(chunks: chunks, body: body)
            withUnsafeMutablePointer(to: &job) { entries.parallel(runChunks, UnsafeMutableRawPointer($0), UInt32(chunks), 0) }
        }
        return true
    }

    private static let runChunks: Body = { raw in
        guard let job = raw?.assumingMemoryBound(to: Job.self), let entries = OpenMPTeam.entries else { return }
        let team = Int(entries.team())
        var c = Int(entries.thread())
        while c < job.pointee.chunks { job.pointee.body(c); c += team }
    }
}
