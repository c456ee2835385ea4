import AIMTraining
import Foundation
import XCTest

/// One aim-train run per work dir: `WorkDirLock` in-process. Other owners (a dead run, a run on
/// another host, a half-written file) are simulated by lock files written by hand.
final class WorkDirLockTests: XCTestCase {
    private var dir: URL!
    private var lockFile: URL { dir.appendingPathComponent("aim-train.lock") }
    private let logs = LogLines()
    private var held: [WorkDirLock] = []

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("aim-lock-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        unsetenv("AIM_LOCK_STALE_SECONDS")
    }

    override func tearDownWithError() throws {
        for l in held { l.release() }
        held = []
        unsetenv("AIM_LOCK_STALE_SECONDS")
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: - Helpers

    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
        func contains(_ s: String) -> Bool { all.contains { $0.contains(s) } }
    }

    private func acquire(_ workDir: URL? = nil, command: String = "aim-train --config tiny.yaml --work-dir wd",
                         staleAfter: TimeInterval = 300, heartbeatEvery: TimeInterval = 30) throws -> WorkDirLock {
        let l = try WorkDirLock.acquire(workDir: workDir ?? dir, command: command, staleAfter: staleAfter,
                                        heartbeatEvery: heartbeatEvery, log: { [logs] in logs.add($0) })
        held.append(l)
        return l
    }

    /// The error of an acquire that must be refused.
    private func refusal(staleAfter: TimeInterval = 300, file: StaticString = #filePath, line: UInt = #line) -> WorkDirLockError? {
        do {
            let l = try acquire(staleAfter: staleAfter)
            XCTFail("acquired a work dir that is held (lock now \(String(describing: WorkDirLock.inspect(workDir: dir))))", file: file, line: line)
            l.release()
        } catch let e as WorkDirLockError {
            return e
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return nil
    }

    private func heldBy(_ e: WorkDirLockError?, file: StaticString = #filePath, line: UInt = #line) -> LockOwner? {
        guard case .held(_, _, let owner)? = e else { XCTFail("expected .held, got \(String(describing: e))", file: file, line: line); return nil }
        return owner
    }

    private static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        XCTAssertEqual(gethostname(&buf, buf.count - 1), 0)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A lock file as another owner would have written it.
    private func writeLock(host: String, pid: Int32, token: String = "other-owner", heartbeatAgo: Double = 0,
                           extra: [String: Any] = [:], mtimeAgo: Double? = nil) throws {
        let now = Date().timeIntervalSince1970
        var json: [String: Any] = ["format": "aim-train-lock-1", "host": host, "pid": Int(pid), "token": token,
                                   "started": "2024-05-01T10:00:00Z", "started_epoch": now - 3600,
                                   "heartbeat": now - heartbeatAgo, "command": "aim-train --config old.yaml"]
        json.merge(extra) { _, new in new }
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: lockFile)
        if let mtimeAgo { try setMTime(ago: mtimeAgo) }
    }

    private func setMTime(ago: Double) throws {
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -ago)], ofItemAtPath: lockFile.path)
    }

    /// The pid of a process that has exited and been reaped.
    private func deadPid() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let pid = p.processIdentifier
        XCTAssertEqual(kill(pid, 0), -1, "pid \(pid) was reused already")
        return pid
    }

    private func fileJSON() throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: Data(contentsOf: lockFile))
        return try XCTUnwrap(any as? [String: Any])
    }

    // MARK: - Tests

    func testAcquireWritesOwner() throws {
        let l = try acquire(command: "aim-train --config configs/k400.yaml --work-dir runs/a")
        let json = try fileJSON()
        XCTAssertEqual(json["pid"] as? Int, Int(getpid()))
        XCTAssertEqual(json["host"] as? String, Self.hostName())
        XCTAssertEqual(json["command"] as? String, "aim-train --config configs/k400.yaml --work-dir runs/a")
        XCTAssertEqual(json["token"] as? String, l.owner.token)
        XCTAssertFalse(l.owner.token.isEmpty)
        let started = try XCTUnwrap(json["started"] as? String)
        XCTAssertTrue(started.hasSuffix("Z"), started)
        let epoch = try XCTUnwrap(json["started_epoch"] as? Double)
        XCTAssertEqual(epoch, Date().timeIntervalSince1970, accuracy: 10)
        XCTAssertEqual(ISO8601DateFormatter().date(from: started)?.timeIntervalSince1970 ?? 0, epoch, accuracy: 1)
        XCTAssertEqual(try XCTUnwrap(json["heartbeat"] as? Double), epoch, accuracy: 10)
        XCTAssertNotNil(json["process_start_ticks"])
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir), l.owner)
        XCTAssertTrue(l.isHeld)
        // No temporary files left beside it.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(names.filter { $0.hasSuffix(".tmp") || $0.hasSuffix(".aside") }, [], "\(names)")
    }

    func testSecondAcquireIsRefusedWithTheOwner() throws {
        let first = try acquire(command: "aim-train --config first.yaml")
        let e = refusal()
        XCTAssertEqual(heldBy(e)?.token, first.owner.token)
        let text = e.map { "\($0)" } ?? ""
        for part in ["pid \(getpid())", "aim-train --config first.yaml", dir.path, "host \(Self.hostName())",
                     first.owner.started ?? "?", "remove \(lockFile.path)", "another --work-dir"] {
            XCTAssertTrue(text.contains(part), "'\(part)' missing from: \(text)")
        }
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, first.owner.token, "the refused run must not touch the lock")
        XCTAssertTrue(first.isHeld)
    }

    func testReleaseRemovesTheLockAndANewRunMayStart() throws {
        let first = try acquire()
        first.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path))
        XCTAssertFalse(first.isHeld)
        first.release()  // idempotent
        let second = try acquire()
        XCTAssertNotEqual(second.owner.token, first.owner.token)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, second.owner.token)
    }

    func testLockOfADeadProcessIsTakenOver() throws {
        let pid = try deadPid()
        try writeLock(host: Self.hostName(), pid: pid)
        let l = try acquire()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("taking over"), "\(logs.all)")
        XCTAssertTrue(logs.contains("pid \(pid)") && logs.contains("is gone"), "the warning names the old owner: \(logs.all)")
        XCTAssertTrue(logs.contains("aim-train --config old.yaml"), "\(logs.all)")
    }

    func testLockOfAReusedPidIsTakenOver() throws {
        // Our own pid is alive; a different recorded start time means the owner was another process.
        let probe = try acquire(dir.appendingPathComponent("probe"))
        let ticks = try XCTUnwrap(probe.owner.processStartTicks)
        try writeLock(host: Self.hostName(), pid: getpid(), extra: ["process_start_ticks": ticks + 1000])
        let l = try acquire()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("another process"), "\(logs.all)")
        l.release()

        // The same pid with the same start time is the live owner.
        try writeLock(host: Self.hostName(), pid: getpid(), extra: ["process_start_ticks": ticks])
        XCTAssertEqual(heldBy(refusal())?.token, "other-owner")
    }

    func testOtherHostFreshHeartbeatIsRefused() throws {
        try writeLock(host: "other-host", pid: 4242, heartbeatAgo: 5)
        let e = refusal()
        XCTAssertEqual(heldBy(e)?.host, "other-host")
        let text = e.map { "\($0)" } ?? ""
        XCTAssertTrue(text.contains("host other-host") && text.contains("pid 4242") && text.contains("aim-train --config old.yaml"), text)
        XCTAssertTrue(text.contains("2024-05-01T10:00:00Z"), text)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, "other-owner")
    }

    func testOtherHostStaleHeartbeatIsTakenOver() throws {
        // Heartbeat old but the file was just modified (a skewed owner clock, or a hand edit): still held.
        try writeLock(host: "other-host", pid: 4242, heartbeatAgo: 600)
        XCTAssertNotNil(heldBy(refusal()))
        // Never stale before twice the owner's heartbeat interval.
        try writeLock(host: "other-host", pid: 4242, heartbeatAgo: 400, extra: ["heartbeat_every": 300.0], mtimeAgo: 400)
        XCTAssertNotNil(heldBy(refusal()))

        try writeLock(host: "other-host", pid: 4242, heartbeatAgo: 600, mtimeAgo: 600)
        let l = try acquire(staleAfter: 300)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("no heartbeat from other-host"), "\(logs.all)")
        XCTAssertTrue(logs.contains("pid 4242"), "\(logs.all)")
    }

    func testStaleLimitFromTheEnvironment() throws {
        try writeLock(host: "other-host", pid: 4242, heartbeatAgo: 60, mtimeAgo: 60)
        setenv("AIM_LOCK_STALE_SECONDS", "ten", 1)
        XCTAssertNotNil(heldBy(refusal(staleAfter: 300)))
        XCTAssertTrue(logs.contains("AIM_LOCK_STALE_SECONDS=ten is not a positive number"), "\(logs.all)")
        setenv("AIM_LOCK_STALE_SECONDS", "-5", 1)
        XCTAssertNotNil(heldBy(refusal(staleAfter: 300)))

        setenv("AIM_LOCK_STALE_SECONDS", "10", 1)
        let l = try acquire(staleAfter: 300)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("stale after 10 s"), "\(logs.all)")
    }

    func testHeartbeatAdvances() throws {
        let l = try acquire(heartbeatEvery: 0.2)
        let first = try XCTUnwrap(fileJSON()["heartbeat"] as? Double)
        var latest = first
        let deadline = Date(timeIntervalSinceNow: 5)
        while latest <= first + 0.3 && Date() < deadline {
            usleep(50_000)
            latest = (try? fileJSON()["heartbeat"] as? Double) ?? latest
        }
        XCTAssertGreaterThan(latest, first + 0.3, "heartbeat did not move on twice in 5 s")
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.started, l.owner.started)
        XCTAssertTrue(logs.all.isEmpty, "\(logs.all)")
        l.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path))
        usleep(500_000)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path), "a heartbeat after release brought the lock back")
    }

    func testReleaseAndHeartbeatLeaveALockTakenOverByAnother() throws {
        let l = try acquire(heartbeatEvery: 0.1)
        try writeLock(host: "other-host", pid: 4242, token: "intruder")  // what a takeover leaves
        let deadline = Date(timeIntervalSinceNow: 5)
        while !logs.contains("no longer holds") && Date() < deadline { usleep(20_000) }
        usleep(300_000)  // a few more beats
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, "intruder", "the heartbeat overwrote another owner's lock")
        XCTAssertFalse(l.isHeld)
        XCTAssertTrue(logs.contains("no longer holds"), "\(logs.all)")
        l.release()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, "intruder", "release removed another owner's lock")
    }

    func testReleaseLeavesALockTakenOverBeforeTheHeartbeatNoticed() throws {
        let l = try acquire(heartbeatEvery: 30)
        try writeLock(host: "other-host", pid: 4242, token: "intruder")
        XCTAssertFalse(l.isHeld)
        l.release()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, "intruder", "release removed another owner's lock")
    }

    func testRemovedLockIsRecreatedByTheHeartbeat() throws {
        let l = try acquire(heartbeatEvery: 0.1)
        try FileManager.default.removeItem(at: lockFile)
        let deadline = Date(timeIntervalSinceNow: 5)
        while WorkDirLock.inspect(workDir: dir) == nil && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("recreated"), "\(logs.all)")
    }

    func testUnparsableLockWaitsThenCountsAsStaleByAge() throws {
        try Data("{\"host\": \"other-ho".utf8).write(to: lockFile)
        let t0 = Date()
        let e = refusal()
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.9, "an unreadable lock must be re-read for a while first")
        guard case .unreadable(_, let path, _, _)? = e else { return XCTFail("expected .unreadable, got \(String(describing: e))") }
        XCTAssertEqual(path, lockFile.path)
        XCTAssertTrue(e.map { "\($0)" }?.contains("remove \(lockFile.path)") ?? false)
        XCTAssertNil(WorkDirLock.inspect(workDir: dir))

        try setMTime(ago: 600)
        let l = try acquire(staleAfter: 300)
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("cannot be read"), "\(logs.all)")
    }

    func testLockBeingWrittenIsAwaited() throws {
        try Data("{".utf8).write(to: lockFile)
        let finished = DispatchSemaphore(value: 0)
        let lockFile = self.lockFile
        Thread.detachNewThread {
            usleep(300_000)
            let json = "{\"host\": \"other-host\", \"pid\": 4242, \"token\": \"late\", \"command\": \"aim-train late\", \"heartbeat\": \(Date().timeIntervalSince1970)}"
            let tmp = lockFile.deletingLastPathComponent().appendingPathComponent("writer.tmp")
            if (try? Data(json.utf8).write(to: tmp)) != nil { rename(tmp.path, lockFile.path) }
            finished.signal()
        }
        let e = refusal()
        XCTAssertEqual(finished.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(heldBy(e)?.token, "late", "the finished lock must be judged, not the half-written one")
    }

    func testConcurrentTakeoversHaveOneWinner() throws {
        try writeLock(host: Self.hostName(), pid: try deadPid())
        let n = 4
        let results = LogLines()
        let dir = self.dir!
        let logs = self.logs
        let start = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var locks: [WorkDirLock] = []; let lock = NSLock() }
        let box = Box()
        for _ in 0..<n {
            Thread.detachNewThread {
                start.wait()
                do {
                    let l = try WorkDirLock.acquire(workDir: dir, command: "racer", log: { logs.add($0) })
                    box.lock.lock(); box.locks.append(l); box.lock.unlock()
                    results.add("won")
                } catch {
                    results.add("\(error)")
                }
                done.signal()
            }
        }
        for _ in 0..<n { start.signal() }
        for _ in 0..<n { XCTAssertEqual(done.wait(timeout: .now() + 30), .success) }
        held += box.locks
        XCTAssertEqual(results.all.filter { $0 == "won" }.count, 1, "\(results.all)")
        XCTAssertEqual(results.all.filter { $0.contains("in use by another aim-train run") }.count, n - 1, "\(results.all)")
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, box.locks.first?.owner.token)
    }

    func testDroppingTheLastReferenceReleases() throws {
        try { () throws -> Void in
            let l = try WorkDirLock.acquire(workDir: dir, command: "dropped", heartbeatEvery: 0.05, log: { [logs] in logs.add($0) })
            XCTAssertTrue(l.isHeld)
            usleep(200_000)  // a few beats (the heartbeat thread must not keep the lock alive)
            XCTAssertTrue(l.isHeld)
        }()
        // The heartbeat thread may hold it for the length of one beat.
        let deadline = Date(timeIntervalSinceNow: 3)
        while FileManager.default.fileExists(atPath: lockFile.path) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path), "deinit did not release the lock")
        let again = try acquire()
        XCTAssertTrue(again.isHeld)
    }

    func testReleaseAllReleasesEveryHeldLock() throws {
        let a = try acquire(dir.appendingPathComponent("a")), b = try acquire(dir.appendingPathComponent("b"))
        WorkDirLock.releaseAll()
        XCTAssertFalse(a.isHeld || b.isHeld)
        for d in ["a", "b"] {
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent(d).appendingPathComponent("aim-train.lock").path), d)
        }
    }

    // MARK: - Across processes: a child copy of this test binary holds the lock

    /// The child's side (a no-op in a normal run): takes the work dir named by
    /// AIM_LOCK_TEST_CHILD_DIR, then calls exit(3) (mode "exit") or sleeps until killed ("hold").
    func testChildProcessHelper() throws {
        let env = ProcessInfo.processInfo.environment
        guard let workDir = env["AIM_LOCK_TEST_CHILD_DIR"] else { return }
        try? FileManager.default.removeItem(at: dir)  // this process's own, unused (it never reaches tearDown)
        let l = try WorkDirLock.acquire(workDir: URL(fileURLWithPath: workDir), command: "aim-train child", log: { _ in })
        print("ACQUIRED \(l.owner.pid)")
        fflush(stdout)
        withExtendedLifetime(l) {
            if env["AIM_LOCK_TEST_CHILD_MODE"] == "exit" { exit(3) }
            sleep(120)
        }
    }

    private func child(mode: String, output: URL) throws -> Process {
        let exe = CommandLine.arguments[0]
        guard exe.hasSuffix(".xctest") else { throw XCTSkip("not run from an .xctest binary (\(exe)): cannot start a child copy") }
        XCTAssertTrue(FileManager.default.createFile(atPath: output.path, contents: nil))
        let handle = try FileHandle(forWritingTo: output)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["AIMTrainingTests.WorkDirLockTests/testChildProcessHelper"]
        var env = ProcessInfo.processInfo.environment
        env["AIM_LOCK_TEST_CHILD_DIR"] = dir.path
        env["AIM_LOCK_TEST_CHILD_MODE"] = mode
        p.environment = env
        p.standardOutput = handle; p.standardError = handle
        try p.run()
        try handle.close()
        return p
    }

    func testExitReleasesTheLock() throws {
        let out = dir.appendingPathComponent("child.log")
        let p = try child(mode: "exit", output: out)
        p.waitUntilExit()
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 3, text)
        XCTAssertTrue(text.contains("ACQUIRED \(p.processIdentifier)"), text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path), "exit() left the lock behind")
    }

    func testKilledRunHoldsUntilDeadThenIsTakenOver() throws {
        let p = try child(mode: "hold", output: dir.appendingPathComponent("child.log"))
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let deadline = Date(timeIntervalSinceNow: 60)
        while WorkDirLock.inspect(workDir: dir)?.pid != p.processIdentifier && p.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.pid, p.processIdentifier, "the child did not take the work dir")

        let e = refusal()
        XCTAssertEqual(heldBy(e)?.pid, p.processIdentifier)
        XCTAssertTrue(e.map { "\($0)" }?.contains("aim-train child") ?? false)

        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.pid, p.processIdentifier, "SIGKILL leaves the lock file")
        let l = try acquire()
        XCTAssertEqual(WorkDirLock.inspect(workDir: dir)?.token, l.owner.token)
        XCTAssertTrue(logs.contains("\(p.processIdentifier) is gone"), "\(logs.all)")
    }

    func testInvalidArgumentsAreRejected() {
        XCTAssertThrowsError(try acquire(staleAfter: 0))
        XCTAssertThrowsError(try acquire(heartbeatEvery: -1))
        XCTAssertThrowsError(try acquire(heartbeatEvery: .nan))
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile.path))
    }
}
