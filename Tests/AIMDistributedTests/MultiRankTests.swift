import Foundation
import XCTest

/// Runs the `aim-mpi-check` executable (built next to this test bundle) under
/// `mpirun --oversubscribe`: real multi-rank collectives, in-place non-blocking allreduce with
/// every libnbc algorithm, a rank that dies, and a rank that hangs.
final class MultiRankTests: XCTestCase {
    struct Run {
        var status: Int32
        var output: String
        var seconds: Double
        var timedOut: Bool
    }

    private func mpirun() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let path = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("mpirun is not on PATH (install openmpi-bin): multi-rank tests skipped")
    }

    /// The checker lives in the build directory that holds this test executable.
    private func checker() throws -> String {
        if let p = ProcessInfo.processInfo.environment["AIM_MPI_CHECK"] { return p }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let path = exe.deletingLastPathComponent().appendingPathComponent("aim-mpi-check").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("aim-mpi-check not found at \(path); build it with `swift build -c release --product aim-mpi-check` (or set AIM_MPI_CHECK)")
            throw XCTSkip("aim-mpi-check missing")
        }
        return path
    }

    /// Runs mpirun with `args`, killing it after `limit` seconds so a hang fails the test
    /// instead of stalling the suite.
    private func run(_ args: [String], env extra: [String: String] = [:], limit: Double = 90,
                     executable: String? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try executable ?? mpirun())
        p.arguments = args
        // This test process may itself be an MPI singleton; its OMPI_/PMIX_ variables would make
        // the child mpirun believe it runs inside a job.
        var env = ProcessInfo.processInfo.environment.filter { k, _ in
            !(k.hasPrefix("OMPI_") || k.hasPrefix("PMIX_") || k.hasPrefix("PMI_") || k.hasPrefix("OPAL_") || k.hasPrefix("ORTE_"))
        }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env.merge(extra) { _, new in new }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let collected = OutputCollector(out.fileHandleForReading)
        let start = Date()
        try p.run()
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        var timedOut = false
        if done.wait(timeout: .now() + limit) == .timedOut {
            timedOut = true
            p.terminate()
            if done.wait(timeout: .now() + 10) == .timedOut { kill(p.processIdentifier, SIGKILL); done.wait() }
        }
        let seconds = Date().timeIntervalSince(start)
        return Run(status: p.terminationStatus, output: collected.finish(), seconds: seconds, timedOut: timedOut)
    }

    /// cluster/mpirun.sh: threads per rank = cores ÷ ranks per node, and a real launch through it.
    func testClusterLauncherSplitsCoresAndRuns() throws {
        _ = try mpirun()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../cluster/mpirun.sh").standardizedFileURL.path
        let dry = try run([script, "-n", "8", "--ranks-per-node", "4", "--cores-per-node", "32", "--iface", "eth1",
                           "--dry-run", "--", "bin/aim-train", "--config", "c.yaml"], executable: "/bin/bash")
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("8 ranks, 4 per node, 8 threads per rank"), dry.output)
        XCTAssertTrue(dry.output.contains("--map-by ppr:4:node:PE=8 --bind-to core"), dry.output)
        XCTAssertTrue(dry.output.contains("--mca btl_tcp_if_include eth1"), dry.output)
        XCTAssertTrue(dry.output.contains("-x OPENBLAS_NUM_THREADS"), dry.output)
        XCTAssertTrue(dry.output.hasSuffix("bin/aim-train --config c.yaml \n"), dry.output)
        let bad = try run([script, "-n", "two", "--", "x"], executable: "/bin/bash")
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("-n RANKS must be a positive integer, got 'two'"), bad.output)

        let real = try run([script, "-n", "2", "--", try checker()], executable: "/bin/bash")
        XCTAssertEqual(real.status, 0, real.output)
        XCTAssertTrue(real.output.contains("PASS:") && real.output.contains("on 2 ranks"), real.output)
    }

    func testTwoRankCollectivesAndBucketsAreCorrect() throws {
        let r = try run(["-n", "2", "--oversubscribe", try checker()])
        XCTAssertFalse(r.timedOut, r.output)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("PASS:") && r.output.contains("on 2 ranks"), r.output)
    }

    /// Open MPI's libnbc once returned wrong sums for MPI_IN_PLACE with its ring Iallreduce
    /// (ompi #9385): check each algorithm, at 2 and 3 ranks.
    func testInPlaceIallreduceWithEveryLibnbcAlgorithm() throws {
        let exe = try checker()
        for algorithm in 1...4 {
            for ranks in [2, 3] {
                let r = try run(["-n", "\(ranks)", "--oversubscribe", "--mca", "coll_libnbc_iallreduce_algorithm", "\(algorithm)", exe])
                XCTAssertEqual(r.status, 0, "algorithm \(algorithm), \(ranks) ranks:\n\(r.output)")
                XCTAssertTrue(r.output.contains("on \(ranks) ranks"), r.output)
            }
        }
    }

    /// A rank killed in the middle of an allreduce: mpirun must end the job, not leave rank 0
    /// waiting.
    func testDeadRankEndsTheJobQuickly() throws {
        let r = try run(["-n", "2", "--oversubscribe", try checker(), "--die-rank", "1"], limit: 90)
        XCTAssertFalse(r.timedOut, "job still running after 90 s:\n\(r.output)")
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.seconds, 60, r.output)
        XCTAssertFalse(r.output.contains("FAIL"), r.output)
    }

    /// A rank that stays alive but never joins: only our watchdog can end this one.
    func testHungRankTriggersTheWatchdog() throws {
        let r = try run(["-n", "2", "--oversubscribe", "-x", "AIM_COLLECTIVE_TIMEOUT", try checker(),
                         "--hang-rank", "1", "--hang-seconds", "120"],
                        env: ["AIM_COLLECTIVE_TIMEOUT": "3"], limit: 90)
        XCTAssertFalse(r.timedOut, "job still running after 90 s:\n\(r.output)")
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.seconds, 60, r.output)
        XCTAssertTrue(r.output.contains("rank 0 of 2: collective 'barrier with a hung peer' did not complete within 3.0 s"), r.output)
    }
}

/// Drains a pipe on a background thread so a chatty child never blocks on a full pipe.
private final class OutputCollector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    private let finished = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
            finished.signal()
        }
    }

    /// The output so far, once the pipe closes (or after 10 s, if an orphaned rank holds it).
    func finish() -> String {
        _ = finished.wait(timeout: .now() + 10)
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
