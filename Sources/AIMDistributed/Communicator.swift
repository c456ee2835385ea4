import Foundation

/// How a small vector of metrics is combined over ranks.
public enum ReduceOp: Sendable {
    case sum, max, min
}

/// A collective that was started and may still be running (a non-blocking allreduce of one
/// gradient bucket). Complete it with `Communicator.wait`; `Communicator.progress` lets MPI
/// advance it while the caller computes (Open MPI moves non-blocking collectives forward only
/// inside MPI calls).
public final class PendingCollective {
    public let label: String
    public internal(set) var isComplete: Bool
    /// The MPI request, when the communicator is MPI; nil for completed or local operations.
    var request: OpaquePointer?

    init(label: String, request: OpaquePointer?) {
        self.label = label
        self.request = request
        self.isComplete = request == nil
    }
}

/// The ranks of a data-parallel job: MPI under mpirun/srun, a single process otherwise, with the
/// same calls either way so training code never branches on the launch mode.
///
/// Every collective must be called by all ranks in the same order with matching sizes. MPI
/// calls are made only from the thread that created the communicator (MPI_THREAD_FUNNELED).
/// `label` names the operation in the watchdog's message if a peer never joins it.
public protocol Communicator: AnyObject {
    /// This process's rank in 0..<size; rank 0 is the coordinator (logs, checkpoints, reports).
    var rank: Int { get }
    var size: Int { get }
    /// Rank among the processes on this node, and how many share the node (for thread counts).
    var localRank: Int { get }
    var localSize: Int { get }

    /// Sums `count` floats over all ranks, in place.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String)
    /// Sums a short vector of doubles (loss sums, sample counts, timings) over ranks.
    func allreduce(_ values: [Double], op: ReduceOp, label: String) -> [Double]
    /// Rank 0's `bytes` on every rank (what other ranks pass is ignored).
    func broadcast(_ bytes: [UInt8], label: String) -> [UInt8]
    /// Every rank's blob, in rank order; blobs may differ in length (also zero).
    func allgather(_ blob: [UInt8], label: String) -> [[UInt8]]
    func barrier(label: String)

    /// Starts an in-place sum of `count` floats; the buffer must stay untouched until `wait`.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) -> PendingCollective
    /// Lets pending operations advance without blocking.
    func progress(_ pending: [PendingCollective])
    /// Blocks until all `pending` complete (or the watchdog aborts the job).
    func wait(_ pending: [PendingCollective])

    /// Prints `message` naming this rank (nil: the caller printed it) and ends the whole job with `code`.
    func abort(code: Int32, message: String?) -> Never
    /// Ends MPI cleanly; call once at normal exit on every rank. No collective may follow.
    func finalize()
}

extension Communicator {
    public var isCoordinator: Bool { rank == 0 }

    /// Averages `count` floats over ranks, in place (sum, then divide by the world size).
    public func allreduceAverage(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String = "allreduce-average") {
        allreduceSum(buffer, count: count, label: label)
        divide(buffer, count: count, by: size)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        allreduceSum(buffer, count: count, label: "allreduce-sum")
    }
    public func allreduce(_ values: [Double], op: ReduceOp = .sum) -> [Double] {
        allreduce(values, op: op, label: "allreduce-metrics")
    }
    public func broadcast(_ bytes: [UInt8]) -> [UInt8] { broadcast(bytes, label: "broadcast") }
    public func allgather(_ blob: [UInt8]) -> [[UInt8]] { allgather(blob, label: "allgather") }
    public func barrier() { barrier(label: "barrier") }
}

/// Divides in place; division (not multiplication by 1/n) so that averaging over n ranks
/// rounds exactly as dividing a sum by n does.
func divide(_ buffer: UnsafeMutablePointer<Float>, count: Int, by n: Int) {
    guard n > 1, count > 0 else { return }
    let d = Float(n)
    for i in 0..<count { buffer[i] /= d }
}

/// How the process was launched.
public enum LaunchMode: String, Sendable {
    case mpi, single
}

/// MPI when started by mpirun/srun (their environment variables), a single process otherwise.
/// `AIM_DISTRIBUTED=mpi|single` overrides the detection (`mpi` alone runs an MPI singleton).
public func detectLaunchMode(environment env: [String: String] = ProcessInfo.processInfo.environment) -> LaunchMode {
    if let forced = env["AIM_DISTRIBUTED"], let mode = LaunchMode(rawValue: forced.lowercased()) {
        return mode
    }
    let launcherKeys = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
    return launcherKeys.contains(where: { env[$0] != nil }) ? .mpi : .single
}

/// The number of processes a launcher started together (1 without one), from its environment:
/// for tools that run as one process and must not each do the whole job under mpirun.
public func launchedProcessCount(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Int {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"].lazy.compactMap { env[$0].flatMap { Int($0) } }.first ?? 1
}

/// This process's rank among those a launcher started together (0 without one), from its environment.
public func launchedProcessRank(environment env: [String: String] = ProcessInfo.processInfo.environment) -> Int {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK"].lazy.compactMap { env[$0].flatMap { Int($0) } }.first ?? 0
}

/// The communicator for this process: `MPICommunicator.shared` under a launcher, a
/// `SingleProcessCommunicator` otherwise. `timeoutSeconds` bounds every collective wait
/// (default: env AIM_COLLECTIVE_TIMEOUT, else 300 s).
public func makeCommunicator(timeoutSeconds: Double? = nil) -> any Communicator {
    switch detectLaunchMode() {
    case .single:
        return SingleProcessCommunicator()
    case .mpi:
        let comm = MPICommunicator.shared
        if let t = timeoutSeconds { comm.timeoutSeconds = t }
        return comm
    }
}

/// Work a process must do before an abort kills it, registered by higher layers (the trainer
/// gives up its work-dir lock, so a resumed run need not wait for a rank stuck in MPI_Abort).
public enum AbortHooks {
    nonisolated(unsafe) private static var hooks: [() -> Void] = []
    private static let lock = NSLock()

    public static func add(_ hook: @escaping () -> Void) { lock.lock(); hooks.append(hook); lock.unlock() }

    public static func run() {
        lock.lock(); let all = hooks; hooks = []; lock.unlock()
        for h in all { h() }
    }
}
