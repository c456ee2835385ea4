import Foundation

/// SIGTERM, SIGINT and SIGUSR1 ask the run to checkpoint at the next step boundary and exit with
/// 128 + the signal. SIGUSR1 is the one mpirun forwards to every rank without ending the job,
/// so a batch script that traps the scheduler's SIGTERM sends SIGUSR1 on (cluster/slurm.sbatch).
public enum StopSignal {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0

    public static func install() {
        for s in [SIGTERM, SIGINT, SIGUSR1] {
            signal(s) { n in if StopSignal.received == 0 { StopSignal.received = n } }
        }
    }

    public static var requested: Bool { received != 0 }
    /// The first stop signal received, 0 if none.
    public static var number: Int32 { Int32(received) }
}
