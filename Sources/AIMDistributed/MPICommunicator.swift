import CMPI
import AIMTensor
import Foundation

/// MPI_COMM_WORLD through Open MPI, initialised once per process (`shared`) with
/// MPI_THREAD_FUNNELED: only the thread that first touches `shared` may call MPI, while OpenBLAS
/// and `Threads.parallelFor` workers compute. Without mpirun it is a singleton world of size 1.
///
/// Every collective is started non-blocking and completed by `waitWithWatchdog`, which polls
/// MPI_Testall and calls MPI_Abort after `timeoutSeconds`: a rank that hangs or vanishes cannot
/// stall the others forever. (A rank that *exits* abnormally is handled sooner by mpirun
/// itself, which kills the whole job when any process dies without MPI_Finalize.)
public final class MPICommunicator: Communicator, @unchecked Sendable {
    /// The process-wide instance; MPI can be initialised only once per process.
    public static let shared = MPICommunicator()

    /// Exit code of a job ended by the watchdog (as timeout(1) does).
    public static let watchdogExitCode: Int32 = 124

    /// Bound on each collective wait, in seconds: env AIM_COLLECTIVE_TIMEOUT, default 300.
    public var timeoutSeconds: Double

    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    /// A duplicate of MPI_COMM_WORLD, so our traffic never matches anyone else's.
    private var comm: MPI_Comm?
    private let ownsMPI: Bool
    public private(set) var isFinalized = false

    private init() {
        let env = ProcessInfo.processInfo.environment
        timeoutSeconds = MPICommunicator.timeoutFromEnvironment(env)
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        ownsMPI = initialized == 0
        if ownsMPI {
            // libnbc's default MPI_Iallreduce with MPI_IN_PLACE is binomial (reduce to rank 0,
            // then broadcast): it moves twice the bytes of a ring and measured ~1.8x slower on
            // 44 MB gradient buckets. Ask for the ring unless the user chose (--mca or env).
            setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
            var provided: Int32 = 0
            let rc = MPI_Init_thread(nil, nil, aim_mpi_thread_funneled(), &provided)
            guard rc == aim_mpi_success() else {
                Console.exitWithError("MPI_Init_thread failed with code \(rc): is this process started by a working mpirun (Open MPI)?")
            }
            guard provided >= aim_mpi_thread_funneled() else {
                Console.exitWithError("this MPI provides thread level \(provided), below the MPI_THREAD_FUNNELED the trainer needs")
            }
        }
        var dup: MPI_Comm? = aim_mpi_comm_null()
        MPI_Comm_dup(aim_mpi_comm_world(), &dup)
        MPI_Comm_set_errhandler(dup, aim_mpi_errors_return())
        comm = dup
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(dup, &r)
        MPI_Comm_size(dup, &s)
        rank = Int(r)
        size = Int(s)
        if let lr = env["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap({ Int($0) }),
           let ls = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap({ Int($0) }) {
            localRank = lr
            localSize = ls
        } else {
            // Ranks that share memory share a node.
            var node: MPI_Comm? = aim_mpi_comm_null()
            MPI_Comm_split_type(dup, aim_mpi_comm_type_shared(), r, aim_mpi_info_null(), &node)
            var nr: Int32 = 0, ns: Int32 = 0
            MPI_Comm_rank(node, &nr)
            MPI_Comm_size(node, &ns)
            MPI_Comm_free(&node)
            localRank = Int(nr)
            localSize = Int(ns)
        }
    }

    static func timeoutFromEnvironment(_ env: [String: String]) -> Double {
        guard let text = env["AIM_COLLECTIVE_TIMEOUT"] else { return 300 }
        guard let t = Double(text), t > 0 else {
            Console.exitWithError("AIM_COLLECTIVE_TIMEOUT must be a positive number of seconds, got '\(text)'", status: 64)
        }
        return t
    }

    // MARK: collectives

    /// MPI counts are Int32; longer buffers go in pieces of this many elements.
    static let maxChunk = 1 << 30

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) {
        wait([startAllreduceSum(buffer, count: count, label: label)])
    }

    /// The same sum through the blocking MPI_Allreduce (Open MPI's tuned algorithms), without
    /// the watchdog; for measuring against the non-blocking path.
    public func blockingAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) {
        checkAlive(label)
        var done = 0
        while done < count {
            let n = min(MPICommunicator.maxChunk, count - done)
            check(MPI_Allreduce(aim_mpi_in_place(), buffer + done, Int32(n), aim_mpi_float(), aim_mpi_sum(), comm), label)
            done += n
        }
    }

    public func allreduce(_ values: [Double], op: ReduceOp, label: String) -> [Double] {
        checkAlive(label)
        var out = values
        guard !out.isEmpty else { return out }
        let mpiOp: MPI_Op
        switch op {
        case .sum: mpiOp = aim_mpi_sum()
        case .max: mpiOp = aim_mpi_max()
        case .min: mpiOp = aim_mpi_min()
        }
        precondition(out.count <= Int(Int32.max), "\(label): too many values (\(out.count))")
        out.withUnsafeMutableBufferPointer { p in
            var req: MPI_Request? = nil
            check(MPI_Iallreduce(aim_mpi_in_place(), p.baseAddress, Int32(p.count), aim_mpi_double(), mpiOp, comm, &req), label)
            waitWithWatchdog([req], label: label)
        }
        return out
    }

    public func broadcast(_ bytes: [UInt8], label: String) -> [UInt8] {
        checkAlive(label)
        var length: [Int64] = [Int64(bytes.count)]
        length.withUnsafeMutableBufferPointer { p in
            var req: MPI_Request? = nil
            check(MPI_Ibcast(p.baseAddress, 1, aim_mpi_int64(), 0, comm, &req), label + " (length)")
            waitWithWatchdog([req], label: label + " (length)")
        }
        var out = rank == 0 ? bytes : [UInt8](repeating: 0, count: Int(length[0]))
        out.withUnsafeMutableBufferPointer { p in
            var done = 0
            while done < p.count {
                let n = min(MPICommunicator.maxChunk, p.count - done)
                var req: MPI_Request? = nil
                check(MPI_Ibcast(p.baseAddress! + done, Int32(n), aim_mpi_byte(), 0, comm, &req), label)
                waitWithWatchdog([req], label: label)
                done += n
            }
        }
        return out
    }

    public func allgather(_ blob: [UInt8], label: String) -> [[UInt8]] {
        checkAlive(label)
        var lengths = [Int64](repeating: 0, count: size)
        var mine: [Int64] = [Int64(blob.count)]
        mine.withUnsafeMutableBufferPointer { m in
            lengths.withUnsafeMutableBufferPointer { l in
                var req: MPI_Request? = nil
                check(MPI_Iallgather(m.baseAddress, 1, aim_mpi_int64(), l.baseAddress, 1, aim_mpi_int64(), comm, &req), label + " (lengths)")
                waitWithWatchdog([req], label: label + " (lengths)")
            }
        }
        let total = lengths.reduce(0, +)
        guard total <= Int64(Int32.max) else {
            abort(code: 1, message: "\(label): \(total) bytes gathered in total exceed MPI's Int32 count limit; gather in smaller pieces")
        }
        var counts = lengths.map { Int32($0) }
        var displs = [Int32](repeating: 0, count: size)
        for i in 1..<max(1, size) { displs[i] = displs[i - 1] + counts[i - 1] }
        // Keep the receive buffer non-empty so its address is valid even when every blob is empty.
        var all = [UInt8](repeating: 0, count: max(1, Int(total)))
        var send = blob
        send.withUnsafeMutableBufferPointer { s in
            all.withUnsafeMutableBufferPointer { a in
                counts.withUnsafeMutableBufferPointer { c in
                    displs.withUnsafeMutableBufferPointer { d in
                        var req: MPI_Request? = nil
                        check(MPI_Iallgatherv(s.baseAddress, Int32(s.count), aim_mpi_byte(), a.baseAddress, c.baseAddress, d.baseAddress, aim_mpi_byte(), comm, &req), label)
                        waitWithWatchdog([req], label: label)
                    }
                }
            }
        }
        return (0..<size).map { r in Array(all[Int(displs[r])..<Int(displs[r] + counts[r])]) }
    }

    public func barrier(label: String) {
        checkAlive(label)
        var req: MPI_Request? = nil
        check(MPI_Ibarrier(comm, &req), label)
        waitWithWatchdog([req], label: label)
    }

    // MARK: non-blocking

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) -> PendingCollective {
        checkAlive(label)
        precondition(count >= 0, "\(label): negative count \(count)")
        precondition(count <= MPICommunicator.maxChunk, "\(label): \(count) floats in one non-blocking allreduce; split it into buckets of at most \(MPICommunicator.maxChunk)")
        var req: MPI_Request? = nil
        check(MPI_Iallreduce(aim_mpi_in_place(), buffer, Int32(count), aim_mpi_float(), aim_mpi_sum(), comm, &req), label)
        return PendingCollective(label: label, request: req)
    }

    public func progress(_ pending: [PendingCollective]) {
        for p in pending where !p.isComplete {
            var req: MPI_Request? = p.request
            var flag: Int32 = 0
            check(MPI_Test(&req, &flag, aim_mpi_status_ignore()), p.label)
            p.request = req
            if flag != 0 { p.isComplete = true; p.request = nil }
        }
    }

    public func wait(_ pending: [PendingCollective]) {
        let open = pending.filter { !$0.isComplete }
        guard !open.isEmpty else { return }
        waitWithWatchdog(open.map { $0.request }, label: open.map(\.label).joined(separator: ", "))
        for p in open { p.isComplete = true; p.request = nil }
    }

    /// Polls until every request completes. MPI_Testall also drives Open MPI's progress engine,
    /// which non-blocking collectives need; it spins as MPI_Wait does (yielding between polls
    /// made large reductions slower on a loaded node). Past `timeoutSeconds` the job is aborted with a
    /// message naming this rank and the operation.
    func waitWithWatchdog(_ requests: [MPI_Request?], label: String) {
        var reqs = requests
        let start = DispatchTime.now().uptimeNanoseconds
        let limit = UInt64(timeoutSeconds * 1e9)
        var polls = 0
        while true {
            var flag: Int32 = 0
            check(MPI_Testall(Int32(reqs.count), &reqs, &flag, aim_mpi_statuses_ignore()), label)
            if flag != 0 { return }
            polls += 1
            if polls & 63 == 0 {
                let elapsed = DispatchTime.now().uptimeNanoseconds - start
                if elapsed > limit {
                    abort(code: MPICommunicator.watchdogExitCode, message: """
                        collective '\(label)' did not complete within \(timeoutSeconds) s: \
                        another rank died, hung, lost its network link, or called a different collective. \
                        Aborting the job (AIM_COLLECTIVE_TIMEOUT sets the limit). Checkpoints are only \
                        ever replaced by rename, so the newest one on disk is complete: continue from it \
                        with --resume auto, at any rank count.
                        """)
                }
            }
        }
    }

    // MARK: errors and shutdown

    /// Seconds MPI_Abort gets to end the job before this process leaves on its own.
    public static let abortGraceSeconds: UInt32 = 10

    public func abort(code: Int32, message: String?) -> Never {
        if let message { Console.errorRaw("error: rank \(rank) of \(size): \(message)\n") }
        AbortHooks.run()
        if !isFinalized {
            // MPI_Abort asks the launcher to kill the job; when a peer's node is unreachable
            // (pulled cable, partition) that request, or the exit handlers after it, can block
            // for as long as TCP keeps retrying. This rank stops within the grace period anyway.
            let rank = rank, grace = MPICommunicator.abortGraceSeconds
            Thread.detachNewThread {
                sleep(grace)
                Console.errorRaw("error: rank \(rank): MPI_Abort did not end this process within \(grace) s; exiting with code \(code)\n")
                _exit(code)
            }
            MPI_Abort(aim_mpi_comm_world(), code)
        }
        exit(code)
    }

    public func finalize() {
        guard !isFinalized else { return }
        isFinalized = true
        MPI_Comm_free(&comm)
        if ownsMPI { MPI_Finalize() }
    }

    private func checkAlive(_ label: String) {
        precondition(!isFinalized, "\(label) called after MPICommunicator.finalize()")
    }

    private func check(_ rc: Int32, _ label: String) {
        guard rc != aim_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(aim_mpi_max_error_string()) + 1)
        var length: Int32 = 0
        MPI_Error_string(rc, &text, &length)
        abort(code: 1, message: "MPI error in '\(label)': \(String(cString: text))")
    }
}
