import AIMTensor
import Foundation
import Glibc

/// Who holds a work dir: the contents of `<workDir>/aim-train.lock` (JSON).
public struct LockOwner: Codable, Equatable, Sendable, CustomStringConvertible {
    public static let format = "aim-train-lock-1"

    public var host: String
    public var pid: Int32
    /// Field 22 of /proc/<pid>/stat (clock ticks after boot): tells a reused pid from the owner.
    public var processStartTicks: UInt64?
    /// /proc/sys/kernel/random/boot_id and /proc/self/ns/pid: a pid is only checked against this
    /// machine's processes when both match ours (a reboot, or a container sharing the hostname,
    /// falls back to the heartbeat rule).
    public var bootID: String?
    public var pidNamespace: String?
    public var started: String?          // ISO 8601, UTC
    public var startedEpoch: Double?     // seconds since 1970
    public var heartbeat: Double?        // seconds since 1970, the owner's clock
    public var heartbeatEvery: Double?   // seconds
    public var command: String?
    /// Random, one per acquisition: a lock file is "ours" only while it carries our token.
    public var token: String

    enum CodingKeys: String, CodingKey {
        case format, host, pid, token, command, started, heartbeat
        case processStartTicks = "process_start_ticks", bootID = "boot_id", pidNamespace = "pid_namespace"
        case startedEpoch = "started_epoch", heartbeatEvery = "heartbeat_every"
    }

    init(host: String, pid: Int32, processStartTicks: UInt64?, bootID: String?, pidNamespace: String?, started: Date,
         heartbeatEvery: Double, command: String, token: String) {
        self.host = host; self.pid = pid; self.processStartTicks = processStartTicks
        self.bootID = bootID; self.pidNamespace = pidNamespace
        self.started = ISO8601DateFormatter().string(from: started)
        self.startedEpoch = started.timeIntervalSince1970
        self.heartbeat = startedEpoch; self.heartbeatEvery = heartbeatEvery
        self.command = command; self.token = token
    }

    /// Only `host` and `pid` are required (a lock written by hand or by another version still counts).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decode(String.self, forKey: .host)
        pid = try c.decode(Int32.self, forKey: .pid)
        guard pid > 0 else { throw DecodingError.dataCorruptedError(forKey: .pid, in: c, debugDescription: "pid \(pid) is not a process id") }
        processStartTicks = try c.decodeIfPresent(UInt64.self, forKey: .processStartTicks)
        bootID = try c.decodeIfPresent(String.self, forKey: .bootID)
        pidNamespace = try c.decodeIfPresent(String.self, forKey: .pidNamespace)
        started = try c.decodeIfPresent(String.self, forKey: .started)
        startedEpoch = try c.decodeIfPresent(Double.self, forKey: .startedEpoch)
        heartbeat = try c.decodeIfPresent(Double.self, forKey: .heartbeat)
        heartbeatEvery = try c.decodeIfPresent(Double.self, forKey: .heartbeatEvery)
        command = try c.decodeIfPresent(String.self, forKey: .command)
        token = try c.decodeIfPresent(String.self, forKey: .token) ?? ""
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(host, forKey: .host)
        try c.encode(pid, forKey: .pid)
        try c.encodeIfPresent(processStartTicks, forKey: .processStartTicks)
        try c.encodeIfPresent(bootID, forKey: .bootID)
        try c.encodeIfPresent(pidNamespace, forKey: .pidNamespace)
        try c.encodeIfPresent(started, forKey: .started)
        try c.encodeIfPresent(startedEpoch, forKey: .startedEpoch)
        try c.encodeIfPresent(heartbeat, forKey: .heartbeat)
        try c.encodeIfPresent(heartbeatEvery, forKey: .heartbeatEvery)
        try c.encodeIfPresent(command, forKey: .command)
        try c.encode(token, forKey: .token)
    }

    /// "host h, pid 12, started 2024-05-01T10:00:00Z, last heartbeat 4 s ago, command: aim-train …"
    public var description: String {
        var s = "host \(host), pid \(pid), started \(started ?? startedEpoch.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: $0)) } ?? "at an unknown time")"
        if let heartbeat { s += ", last heartbeat \(Int((Date().timeIntervalSince1970 - heartbeat).rounded())) s ago" }
        return s + ", command: \(command ?? "(not recorded)")"
    }
}

public enum WorkDirLockError: Error, CustomStringConvertible {
    /// Another live run holds the work dir.
    case held(workDir: String, lockFile: String, owner: LockOwner)
    /// The lock file does not parse and is younger than the stale limit.
    case unreadable(workDir: String, lockFile: String, age: Double, staleAfter: Double)
    case io(path: String, operation: String, reason: String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .held(workDir, lockFile, owner):
            return "work dir \(workDir) is in use by another aim-train run (\(owner)). "
                + "Wait for it to finish, use another --work-dir, or if that run is truly gone remove \(lockFile)"
        case let .unreadable(workDir, lockFile, age, staleAfter):
            return "work dir \(workDir) has a lock file \(lockFile) that cannot be read (modified \(Int(age.rounded())) s ago; "
                + "it counts as stale after \(Int(staleAfter.rounded())) s): another run may be starting. "
                + "Wait, use another --work-dir, or if no run uses this work dir remove \(lockFile)"
        case let .io(path, operation, reason):
            return "work dir lock \(path): \(operation) failed: \(reason)"
        case let .invalidArgument(msg):
            return msg
        }
    }
}

/// One aim-train run per work dir: `<workDir>/aim-train.lock` names the owner (host, pid, start,
/// command) and carries a heartbeat that a background thread refreshes. A second run on the same
/// work dir is refused with the owner's details, unless the owner is gone: a dead or reused pid on
/// this machine, or (another machine) no heartbeat for `staleAfter` seconds; then the lock is taken
/// over with a warning.
///
/// Every decision on the lock file (create, take over, heartbeat, release) runs under a kernel
/// `flock` held for milliseconds on `<workDir>/.aim-train.lock.guard` (released by the kernel if
/// the process dies, so it can never go stale), which makes "check it is still the one I judged,
/// then replace it" atomic between processes. Where `flock` is unavailable the steps are still
/// built to be safe: files appear by `link()` (atomic, never half-written, fails if the name
/// exists) and a lock is removed by renaming it aside and checking it is the file that was judged.
///
/// The lock is given up by `release()`, by `deinit` (dropping the last reference), or at process
/// exit (an `atexit` handler releases every lock still alive). Keep the returned object for the
/// whole run, e.g. as a property of the trainer; a local that is never used again may be released
/// early by the optimizer unless the run ends with `lock.release()` or sits in `withExtendedLifetime`.
/// `log` gets warnings (takeovers, heartbeat trouble, an ignored AIM_LOCK_STALE_SECONDS) as plain
/// sentences without a "warning:" prefix; it may be called from the heartbeat thread.
public final class WorkDirLock: @unchecked Sendable {
    public static let fileName = "aim-train.lock"
    static let guardFileName = ".aim-train.lock.guard"
    /// How long a lock file that does not parse counts as "being written" before it is judged.
    static let unreadablePatience: TimeInterval = 1.0

    public let workDir: URL
    public let path: URL
    /// This acquisition as first written (the file's heartbeat moves on).
    public let owner: LockOwner

    private let heartbeatEvery: TimeInterval
    private let log: (String) -> Void
    // `control.state` guards everything below; the heartbeat thread waits on it.
    private let control = HeartbeatControl()
    private var state: NSCondition { control.state }
    private var record: LockOwner
    private var released = true       // until acquired
    private var lost = false          // the file now belongs to someone else
    private var heartbeatFailing = false

    /// The lock file of `workDir`.
    public static func path(in workDir: URL) -> URL { workDir.appendingPathComponent(fileName) }

    /// Takes `workDir` (created if missing) for this run, or throws `WorkDirLockError.held` naming
    /// the run that has it. `staleAfter`: how old another machine's heartbeat must be before its
    /// lock is taken over (`AIM_LOCK_STALE_SECONDS`, if a positive number, overrides it; never less
    /// than twice the owner's recorded heartbeat interval). `command` is recorded for messages.
    public static func acquire(workDir: URL, command: String, staleAfter: TimeInterval = 300, heartbeatEvery: TimeInterval = 30,
                               log: @escaping (String) -> Void = { Console.error("warning: " + $0) }) throws -> WorkDirLock {
        guard staleAfter.isFinite, staleAfter > 0 else {
            throw WorkDirLockError.invalidArgument("work dir lock: staleAfter must be a positive number of seconds, not \(staleAfter)")
        }
        guard heartbeatEvery.isFinite, heartbeatEvery > 0 else {
            throw WorkDirLockError.invalidArgument("work dir lock: heartbeatEvery must be a positive number of seconds, not \(heartbeatEvery)")
        }
        let stale = staleSeconds(default: staleAfter, log: log)
        do {
            try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
        } catch {
            throw WorkDirLockError.io(path: workDir.path, operation: "creating the work dir", reason: "\(error)")
        }
        let pid = getpid()
        let me = LockOwner(host: hostName(), pid: pid, processStartTicks: startTicks(of: pid), bootID: bootID(),
                           pidNamespace: pidNamespace(), started: Date(), heartbeatEvery: heartbeatEvery,
                           command: command, token: newToken())
        let lock = WorkDirLock(workDir: workDir, owner: me, heartbeatEvery: heartbeatEvery, log: log)
        lock.removeLeftovers(olderThan: stale)
        try lock.take(staleAfter: stale)
        lock.state.lock()
        lock.released = false
        lock.state.unlock()
        register(lock)
        startHeartbeat(lock)
        return lock
    }

    /// The current owner of `workDir`, if its lock file exists and parses.
    public static func inspect(workDir: URL) -> LockOwner? {
        if case .owner(let o, _)? = try? read(path(in: workDir)) { return o }
        return nil
    }

    /// Whether the lock file still carries this acquisition's token (false once released, or
    /// taken over by another run, e.g. after this process was stopped for longer than the stale limit).
    public var isHeld: Bool {
        state.lock(); defer { state.unlock() }
        guard !released, !lost, case .owner(let o, _)? = try? Self.read(path) else { return false }
        return o.token == record.token
    }

    /// Stops the heartbeat and removes the lock file if it is still ours. Idempotent.
    public func release() {
        state.lock()
        if released { state.unlock(); return }
        released = true
        control.stopped = true
        state.broadcast()
        if !lost {
            Self.withGuard(workDir, wait: 5) { _ in
                guard case .owner(let o, let file)? = try? Self.read(path), o.token == record.token else { return }
                do { _ = try removeLock(ifStill: file) } catch { log("work dir lock not removed: \(error)") }
            }
        }
        state.unlock()
        Self.unregister(self)
    }

    /// Releases every lock this process still holds (installed as an `atexit` handler on the first acquire,
    /// so `exit()` on an error path still removes them; SIGKILL leaves the file for the dead-pid takeover).
    public static func releaseAll() {
        registryLock.lock()
        let all = registry.values.compactMap(\.lock)
        registryLock.unlock()
        for l in all { l.release() }
    }

    deinit { release() }

    private init(workDir: URL, owner: LockOwner, heartbeatEvery: TimeInterval, log: @escaping (String) -> Void) {
        self.workDir = workDir
        self.path = Self.path(in: workDir)
        self.owner = owner
        self.record = owner
        self.heartbeatEvery = heartbeatEvery
        self.log = log
    }

    // MARK: - Acquisition

    private enum Attempt { case acquired, retry, wait, held(LockOwner), unreadable(Double) }

    private func take(staleAfter: TimeInterval) throws {
        var firstUnreadable: Date?
        var retries = 0
        while true {
            let patient = firstUnreadable.map { Date().timeIntervalSince($0) < Self.unreadablePatience } ?? true
            let attempt = try Self.withGuard(workDir, wait: 10) { _ -> Attempt in
                if try publish(record) { return .acquired }
                switch try Self.read(path) {
                case .missing:
                    return .retry
                case .unparsable(let file):
                    // Half-written by a writer without link() support, or damaged: wait briefly, then judge by mtime.
                    if patient { return .wait }
                    let age = Date().timeIntervalSince1970 - file.mtime
                    guard age > staleAfter else { return .unreadable(age) }
                    guard try removeLock(ifStill: file) else { return .retry }
                    log("work dir \(workDir.path): taking over \(path.path): it cannot be read and was last modified \(Int(age)) s ago (stale after \(Int(staleAfter)) s)")
                    return try publish(record) ? .acquired : .retry
                case .owner(let o, _) where o.token == record.token:
                    return .acquired  // our own link() answered EEXIST after all
                case .owner(let o, let file):
                    guard let reason = staleness(of: o, file: file, staleAfter: staleAfter) else { return .held(o) }
                    // Takeover: move the judged file aside (checked to be that file), then link() ours; link() has one winner.
                    guard try removeLock(ifStill: file) else { return .retry }
                    log("work dir \(workDir.path): taking over \(path.path) from the run with \(o): \(reason)")
                    return try publish(record) ? .acquired : .retry
                }
            }
            switch attempt {
            case .acquired:
                return
            case .held(let o):
                throw WorkDirLockError.held(workDir: workDir.path, lockFile: path.path, owner: o)
            case .unreadable(let age):
                throw WorkDirLockError.unreadable(workDir: workDir.path, lockFile: path.path, age: age, staleAfter: staleAfter)
            case .wait:
                if firstUnreadable == nil { firstUnreadable = Date() }
                usleep(50_000)
            case .retry:
                retries += 1
                guard retries < 50 else {
                    throw WorkDirLockError.io(path: path.path, operation: "creating the lock", reason: "the lock file kept changing (50 attempts)")
                }
                usleep(10_000)
            }
        }
    }

    /// Why `o` no longer holds the work dir, or nil if it may still be running.
    private func staleness(of o: LockOwner, file: FileState, staleAfter: TimeInterval) -> String? {
        let me = owner
        let sameMachine = o.host == me.host
            && (o.bootID == nil || me.bootID == nil || o.bootID == me.bootID)
            && (o.pidNamespace == nil || me.pidNamespace == nil || o.pidNamespace == me.pidNamespace)
        if sameMachine {
            if kill(o.pid, 0) != 0 && errno == ESRCH { return "its process \(o.pid) is gone" }
            if Self.isZombie(o.pid) { return "its process \(o.pid) has exited (not yet reaped)" }
            if let recorded = o.processStartTicks, let now = Self.startTicks(of: o.pid), now != recorded {
                return "pid \(o.pid) now belongs to another process (started at tick \(now), the owner at \(recorded))"
            }
            return nil  // alive (EPERM: alive, another user's)
        }
        // Another machine: only the heartbeat tells. Stale only when both the recorded heartbeat (the
        // owner's clock) and the file's mtime (the writer's or file server's clock) are old, so a
        // skewed owner clock delays a takeover rather than causing one.
        let limit = max(staleAfter, 2 * (o.heartbeatEvery ?? 0))
        let last = max(o.heartbeat ?? o.startedEpoch ?? 0, file.mtime)
        let age = Date().timeIntervalSince1970 - last
        return age > limit ? "no heartbeat from \(o.host) for \(Int(age)) s (stale after \(Int(limit)) s)" : nil
    }

    // MARK: - File operations (callers hold the guard)

    private var tempPath: String { workDir.appendingPathComponent(".\(Self.fileName).\(owner.token).tmp").path }
    private var asidePath: String { workDir.appendingPathComponent(".\(Self.fileName).\(owner.token).aside").path }

    /// Creates the lock file holding `content` unless one exists (then false). The content goes to a
    /// temporary file first and appears under the lock's name by link(), which is atomic, fails if
    /// the name exists, and works over NFS, so no reader ever sees a half-written lock.
    private func publish(_ content: LockOwner) throws -> Bool {
        let data = try Self.encode(content)
        try Self.writeFile(tempPath, data)
        defer { unlink(tempPath) }
        if link(tempPath, path.path) == 0 { return true }
        let e = errno
        if e == EEXIST {
            // NFS can answer EEXIST to a retransmitted link() that did succeed: then the temp file has two names.
            var st = stat()
            return lstat(tempPath, &st) == 0 && st.st_nlink == 2
        }
        guard [EPERM, ENOTSUP, EOPNOTSUPP, ENOSYS, EMLINK, EXDEV].contains(e) else {
            throw WorkDirLockError.io(path: path.path, operation: "link", reason: Self.errorText(e))
        }
        // No hard links on this filesystem: O_EXCL create (a reader may catch it half-written and waits).
        let fd = open(path.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        if fd < 0 {
            let e = errno
            if e == EEXIST { return false }
            throw WorkDirLockError.io(path: path.path, operation: "create", reason: Self.errorText(e))
        }
        do {
            try Self.writeAll(fd, data, path: path.path)
            close(fd)
        } catch {
            close(fd)
            unlink(path.path)
            throw error
        }
        return true
    }

    /// Removes the lock file if it is still the file `expected` (same inode, size and mtime; a
    /// heartbeat replaces the inode). It is renamed aside first (one rename wins): should another
    /// process have replaced it in between (possible only without a working guard), that newer
    /// lock is put back with link() instead of being deleted.
    private func removeLock(ifStill expected: FileState) throws -> Bool {
        if rename(path.path, asidePath) != 0 {
            let e = errno
            if e == ENOENT { return false }
            throw WorkDirLockError.io(path: path.path, operation: "rename", reason: Self.errorText(e))
        }
        defer { unlink(asidePath) }
        var st = stat()
        if stat(asidePath, &st) == 0, FileState(st).sameFile(as: expected) { return true }
        if link(asidePath, path.path) != 0 {
            log("work dir \(workDir.path): a lock file that replaced the one judged stale could not be put back (\(Self.errorText(errno)))")
        }
        return false
    }

    /// Temporary and aside files of writers that died mid-step.
    private func removeLeftovers(olderThan age: TimeInterval) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workDir.path)) ?? []
        let now = Date().timeIntervalSince1970
        for n in names where n.hasPrefix(".\(Self.fileName).") && (n.hasSuffix(".tmp") || n.hasSuffix(".aside")) {
            let p = workDir.appendingPathComponent(n).path
            var st = stat()
            if lstat(p, &st) == 0, now - FileState(st).mtime > age { unlink(p) }
        }
    }

    // MARK: - Heartbeat

    private enum Beat { case written, recreated, skipped, lost(LockOwner?) }

    /// Shared by a lock and its heartbeat thread, which holds the lock itself only weakly (and
    /// only during a beat), so that dropping the lock releases it.
    private final class HeartbeatControl: @unchecked Sendable {
        let state = NSCondition()
        var stopped = false   // released or lost; guarded by `state`
    }

    private static func startHeartbeat(_ lock: WorkDirLock) {
        let control = lock.control, every = lock.heartbeatEvery
        let thread = Thread { [weak lock] in
            var next = Date(timeIntervalSinceNow: every)
            while true {
                control.state.lock()
                while !control.stopped && Date() < next { _ = control.state.wait(until: next) }
                let stopped = control.stopped
                control.state.unlock()
                guard !stopped, let held = lock else { return }
                held.beatOnce()
                next = Date(timeIntervalSinceNow: every)
            }
        }
        thread.name = "aim-train.lock heartbeat"
        thread.start()
    }

    private func beatOnce() {
        state.lock()
        defer { state.unlock() }
        if !released && !lost { beat() }
    }

    /// Rewrites the heartbeat (temp file + rename) if the file is still ours. Called with `state` held.
    /// Failures (full disk) are reported once and retried at the next beat.
    private func beat() {
        do {
            var next = record
            next.heartbeat = Date().timeIntervalSince1970
            let result = try Self.withGuard(workDir, wait: 2) { g -> Beat in
                if g == .busy { return .skipped }
                switch try Self.read(path) {
                case .owner(let o, _) where o.token == record.token:
                    try Self.writeFile(tempPath, try Self.encode(next))
                    if rename(tempPath, path.path) != 0 {
                        let e = errno
                        unlink(tempPath)
                        throw WorkDirLockError.io(path: path.path, operation: "rename", reason: Self.errorText(e))
                    }
                    return .written
                case .missing:
                    return try publish(next) ? .recreated : .lost(Self.inspect(workDir: workDir))
                case .owner(let o, _):
                    return .lost(o)
                case .unparsable:
                    return .lost(nil)
                }
            }
            switch result {
            case .written, .recreated:
                record = next
                if case .recreated = result {
                    log("\(path.path) was removed while this run holds work dir \(workDir.path); recreated it")
                }
                if heartbeatFailing { heartbeatFailing = false; log("work dir lock: heartbeat written again to \(path.path)") }
            case .skipped:
                break
            case .lost(let o):
                lost = true
                control.stopped = true
                log("\(path.path) now belongs to \(o.map { "the run with \($0)" } ?? "an unreadable lock file"): "
                    + "this run no longer holds work dir \(workDir.path); heartbeat stopped")
            }
        } catch {
            if !heartbeatFailing {
                heartbeatFailing = true
                log("cannot update the heartbeat in \(path.path): \(error) (retrying every \(heartbeatEvery) s)")
            }
        }
    }

    // MARK: - Guard

    enum GuardState { case held, unsupported, busy }
    /// Serializes guard sections within the process: on NFS flock is emulated with POSIX locks,
    /// which do not exclude threads of one process and are dropped by closing any descriptor.
    private static let processGuard = NSLock()

    /// Runs `body` holding an exclusive flock on the guard file (waiting at most `wait` seconds);
    /// `body` learns whether it got it (`unsupported`: no flock here, e.g. ENOLCK on NFS without a lock manager).
    @discardableResult
    static func withGuard<T>(_ dir: URL, wait: TimeInterval, _ body: (GuardState) throws -> T) rethrows -> T {
        processGuard.lock()
        defer { processGuard.unlock() }
        let fd = open(dir.appendingPathComponent(guardFileName).path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return try body(.unsupported) }
        defer { close(fd) }  // drops the flock
        let deadline = Date(timeIntervalSinceNow: wait)
        while true {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return try body(.held) }
            let e = errno
            if e == EINTR { continue }
            guard e == EWOULDBLOCK else { return try body(.unsupported) }
            if Date() >= deadline { return try body(.busy) }
            usleep(5_000)
        }
    }

    // MARK: - Registry (release at exit)

    private final class WeakLock { weak var lock: WorkDirLock?; init(_ l: WorkDirLock) { lock = l } }
    private static let registryLock = NSLock()
    nonisolated(unsafe) private static var registry: [ObjectIdentifier: WeakLock] = [:]
    nonisolated(unsafe) private static var exitHandlerInstalled = false

    private static func register(_ lock: WorkDirLock) {
        registryLock.lock()
        defer { registryLock.unlock() }
        registry[ObjectIdentifier(lock)] = WeakLock(lock)
        if !exitHandlerInstalled {
            exitHandlerInstalled = true
            atexit { WorkDirLock.releaseAll() }
        }
    }

    private static func unregister(_ lock: WorkDirLock) {
        registryLock.lock()
        registry[ObjectIdentifier(lock)] = nil
        registryLock.unlock()
    }

    // MARK: - Helpers

    struct FileState {
        var dev: UInt64, ino: UInt64, size: Int64, mtime: Double
        init(_ st: stat) {
            dev = UInt64(st.st_dev); ino = UInt64(st.st_ino); size = Int64(st.st_size)
            mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        }
        func sameFile(as o: FileState) -> Bool { dev == o.dev && ino == o.ino && size == o.size && mtime == o.mtime }
    }

    enum Contents { case missing, unparsable(FileState), owner(LockOwner, FileState) }

    /// The lock file at `path`: missing, unparsable (empty, half-written, damaged) or an owner.
    static func read(_ path: URL) throws -> Contents {
        let fd = open(path.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return .missing }
            throw WorkDirLockError.io(path: path.path, operation: "open", reason: errorText(e))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WorkDirLockError.io(path: path.path, operation: "fstat", reason: errorText(errno)) }
        let data = try readAll(fd, path: path.path)
        let file = FileState(st)
        guard let o = try? JSONDecoder().decode(LockOwner.self, from: data) else { return .unparsable(file) }
        return .owner(o, file)
    }

    /// At most 1 MiB (a lock file is a few hundred bytes).
    static func readAll(_ fd: Int32, path: String) throws -> Data {
        var out = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while out.count < 1 << 20 {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WorkDirLockError.io(path: path, operation: "read", reason: errorText(errno))
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Writes `data` to `path` (created or truncated) and fsyncs it.
    static func writeFile(_ path: String, _ data: Data) throws {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WorkDirLockError.io(path: path, operation: "create", reason: errorText(errno)) }
        do {
            try writeAll(fd, data, path: path)
            close(fd)
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
    }

    static func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
        var done = 0
        while done < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + done }, data.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WorkDirLockError.io(path: path, operation: "write", reason: errorText(errno))
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw WorkDirLockError.io(path: path, operation: "fsync", reason: errorText(errno)) }
    }

    static func encode(_ o: LockOwner) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { return try enc.encode(o) + Data("\n".utf8) } catch {
            throw WorkDirLockError.io(path: fileName, operation: "encoding the owner", reason: "\(error)")
        }
    }

    static func errorText(_ e: Int32) -> String { String(cString: strerror(e)) }

    static func staleSeconds(default staleAfter: TimeInterval, log: (String) -> Void) -> TimeInterval {
        guard let raw = getenv("AIM_LOCK_STALE_SECONDS") else { return staleAfter }
        let s = String(cString: raw).trimmingCharacters(in: .whitespaces)
        if s.isEmpty { return staleAfter }
        if let v = Double(s), v.isFinite, v > 0 { return v }
        log("AIM_LOCK_STALE_SECONDS=\(s) is not a positive number of seconds; ignored (stale after \(staleAfter) s)")
        return staleAfter
    }

    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown-host" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Field 3 (state) of /proc/<pid>/stat is Z: the process ended and only waits to be reaped.
    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = procText("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: paren)...].split(separator: " ").first == "Z"
    }

    /// Field 22 (starttime) of /proc/<pid>/stat, nil without /proc or if the process is gone.
    static func startTicks(of pid: Int32) -> UInt64? {
        guard let text = procText("/proc/\(pid)/stat"), let paren = text.lastIndex(of: ")") else { return nil }
        // The command name (field 2) may hold spaces and parentheses: count from its closing one.
        let fields = text[text.index(after: paren)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil  // fields[0] is field 3
    }

    static func bootID() -> String? {
        procText("/proc/sys/kernel/random/boot_id")?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func pidNamespace() -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
    }

    private static func procText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let data = try? readAll(fd, path: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func newToken() -> String {
        (0..<2).map { _ in
            let s = String(UInt64.random(in: 0 ... .max), radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }
}
