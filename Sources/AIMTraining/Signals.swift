import Foundation

/// SIGTERM, SIGINT and SIGUSR1 ask the run to checkpoint at the next step boundary and exit with
/// 128 + the signal. SIGUSR1 is the one mpirun forwards to every rank without ending the job,
/// so a batch script that traps the scheduler's SIGTERM sends SIGUSR1 on (cluster/slurm.sbatch).
///
/// No asynchronous handler: the signals are blocked in every thread (the mask is set before any
/// thread exists, and threads inherit it) and one thread takes them with sigwait. A handler would
/// run on whichever thread the kernel picks — inside oneDNN's OpenMP workers or a decoder — and
/// interrupt their system calls; with oneDNN as the GEMM library that corrupted the heap.
public enum StopSignal {
    nonisolated(unsafe) private static var received: Int32 = 0
    public static let signals: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Call first in `main`, before any other thread is started.
    public static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        let waiter = Thread {
            var set = waited, sig: Int32 = 0
            while true {
                if sigwait(&set, &sig) == 0, received == 0 { received = sig }
            }
        }
        waiter.stackSize = 64 << 10
        waiter.start()
    }

    public static var requested: Bool { received != 0 }
    /// The first stop signal received, 0 if none.
    public static var number: Int32 { received }
}
