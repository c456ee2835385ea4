import Foundation

/// SIGTERM / SIGINT ask the run to checkpoint at the next step boundary and exit cleanly.
public enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    public static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGINT) { _ in StopSignal.flag = 1 }
    }

    public static var requested: Bool { flag != 0 }
}
