import AIMDistributed
import AIMTensor
import Foundation

/// The exit statuses of the tools, documented in the README: a job script or a scheduler can
/// tell a finished run from a stopped or failed one. 0 means the work is complete.
public enum ExitStatus {
    /// The run reached its end and its final checkpoint is on disk (or the tool's job is done).
    public static let success: Int32 = 0
    /// Bad input (config, annotation, checkpoint, data), a refused start, or a failure mid-run.
    public static let failure: Int32 = 1
    /// A malformed command line or option value (swift-argument-parser's validation status).
    public static let usage: Int32 = 64
    /// Storage: the work dir is not writable or too small, the final checkpoint was not written,
    /// or `checkpoint.max_failures` checkpoints in a row failed (sysexits EX_IOERR).
    public static let storage: Int32 = 74
    /// A collective waited past AIM_COLLECTIVE_TIMEOUT: a rank or its node was lost.
    public static let lostRank: Int32 = MPICommunicator.watchdogExitCode
    /// Stopped by `signal` after the checkpoint of the step it ended was written, as shells
    /// report a signal: 143 for SIGTERM, 130 for SIGINT, 138 for SIGUSR1.
    public static func stopped(by signal: Int32) -> Int32 { 128 + signal }

    /// The status an error ends a tool with.
    public static func code(for error: Error) -> Int32 {
        switch error {
        case let e as AgreedStop: return e.status
        case let e as TrainingError where e.isStorage: return storage
        case is FileWriteError: return storage
        default: return failure
        }
    }
}

/// An end every rank decided together (through a collective): each rank leaves with `status`
/// without aborting the job, and only the rank holding `message` prints it.
public struct AgreedStop: Error, CustomStringConvertible {
    public let status: Int32
    public let message: String?
    public init(status: Int32, message: String?) { self.status = status; self.message = message }
    public var description: String { message ?? "stopped with status \(status)" }
}
