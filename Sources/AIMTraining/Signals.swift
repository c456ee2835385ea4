import Foundation

/// SIGTERM, SIGINT and SIGUSR1 ask the run to checkpoint at the next step boundary and exit with
/// 128 + the signal. SIGUSR1 is the one mpirun forwards to every rank without ending the job,
/// so a batch script that traps the scheduler's SIGTERM sends SIGUSR1 on (cluster/slurm.sbatch).
///
/// The handler runs on one thread kept for it: the signals are blocked in the thread that
/// installs them — before MPI, the decoders or a GEMM library start theirs, which inherit the
/// mask — and unblocked only in a thread that does nothing else; the kernel delivers a
/// process-directed signal only to a thread that does not block it. A handler run on the thread
/// inside oneDNN's sgemm corrupted the heap about once in 10 stops (abort in free() within
/// dnnl_sgemm, 1 thread, no OpenMP workers; the cause inside oneDNN was not found); 0 in 70 stops
/// (SIGTERM, SIGINT, SIGUSR1, alone and under mpirun) with the signals confined to this thread.
public enum StopSignal {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0
    public static let signals: [Int32] = [SIGTERM, SIGINT, SIGUSR1]

    /// Call before any other thread is started (first in `main`, after a possible re-exec).
    public static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        for s in signals {
            signal(s) { n in if StopSignal.received == 0 { StopSignal.received = n } }
        }
        let unblock = set
        let taker = Thread {
            var mine = unblock
            pthread_sigmask(SIG_UNBLOCK, &mine, nil)
            while true { pause() }   // returns after each handled signal
        }
        taker.stackSize = 256 << 10
        taker.start()
    }

    public static var requested: Bool { received != 0 }
    /// The first stop signal received, 0 if none.
    public static var number: Int32 { Int32(received) }
}
