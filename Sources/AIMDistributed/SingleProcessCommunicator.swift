import AIMTensor
import Foundation

/// A world of one process with no MPI calls: every collective is the identity. Used when the
/// program was not started by mpirun/srun, so the single-node debug mode runs the same code.
public final class SingleProcessCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) {
        precondition(count >= 0, "\(label): negative count \(count)")
    }
    public func allreduce(_ values: [Double], op: ReduceOp, label: String) -> [Double] { values }
    public func broadcast(_ bytes: [UInt8], label: String) -> [UInt8] { bytes }
    public func allgather(_ blob: [UInt8], label: String) -> [[UInt8]] { [blob] }
    public func barrier(label: String) {}

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, label: String) -> PendingCollective {
        precondition(count >= 0, "\(label): negative count \(count)")
        return PendingCollective(label: label, request: nil)
    }
    public func progress(_ pending: [PendingCollective]) {}
    public func wait(_ pending: [PendingCollective]) {}

    public func abort(code: Int32, message: String?) -> Never {
        if let message { Console.errorRaw("error: \(message)\n") }
        exit(code)
    }
    public func finalize() {}
}
