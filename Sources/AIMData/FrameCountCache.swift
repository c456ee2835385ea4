import Foundation

/// Frame counts that needed a full decode pass (files whose timestamps cannot index them),
/// remembered per path so that later opens of the same file — the next epochs — skip that pass.
/// Counts read from the packet index are not kept: the index is rebuilt on every open anyway,
/// because seeking needs it. Thread-safe; files are assumed not to change during a run.
public final class FrameCountCache: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    public init() {}

    public func count(for path: String) -> Int? {
        lock.lock(); defer { lock.unlock() }
        return counts[path]
    }

    public func store(_ count: Int, for path: String) {
        lock.lock(); defer { lock.unlock() }
        counts[path] = count
    }

    /// Number of paths remembered.
    public var size: Int {
        lock.lock(); defer { lock.unlock() }
        return counts.count
    }
}
