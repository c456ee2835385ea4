import AIMConfig
import Foundation

/// The result of opening every video of a list (what `aim-data check` prints).
public struct VideoCheckReport: Sendable {
    public struct Bad: Sendable, Equatable {
        public let path: String
        public let reason: String
    }
    public var total: Int
    public var frameCounts: [Int]
    public var bad: [Bad]
    public var ok: Int { total - bad.count }

    /// `{"total": N, "ok": N, "bad": [{"path": …, "reason": …}, …], "frames": {…}}`.
    public func json() -> String {
        let badJSON = bad.map { "{\"path\": \(jsonString($0.path)), \"reason\": \(jsonString($0.reason))}" }.joined(separator: ", ")
        var s = "{\"total\": \(total), \"ok\": \(ok), \"bad\": [\(badJSON)]"
        if let st = frameStats() {
            s += ", \"frames\": {\"min\": \(st.min), \"median\": \(st.median), \"mean\": \(String(format: "%.1f", st.mean)), \"max\": \(st.max)}"
        }
        return s + "}"
    }

    public func frameStats() -> (min: Int, median: Int, mean: Double, max: Int)? {
        guard !frameCounts.isEmpty else { return nil }
        let s = frameCounts.sorted()
        return (s.first!, s[s.count / 2], Double(s.reduce(0, +)) / Double(s.count), s.last!)
    }

    public func text() -> String {
        var lines = ["videos: \(total), ok: \(ok), bad: \(bad.count)"]
        if let st = frameStats() {
            lines.append("frames per video: min \(st.min), median \(st.median), mean \(String(format: "%.1f", st.mean)), max \(st.max)")
        }
        for b in bad { lines.append("bad: \(b.path): \(b.reason)") }
        return lines.joined(separator: "\n")
    }
}

/// Opens every path, counts its frames and decodes its first and last frame (which catches
/// cut-off files whose header still opens). `threads` files are checked at once.
public func checkVideos(_ paths: [String], threads: Int = 2) -> VideoCheckReport {
    checkVideos(paths.map { VideoSample(path: $0, label: 0) }, threads: threads)
}

/// The same for samples, which may be members of tar shards (read from their byte ranges).
public func checkVideos(_ samples: [VideoSample], threads: Int = 2) -> VideoCheckReport {
    let paths = samples.map(\.path)
    var counts = [Int?](repeating: nil, count: paths.count)
    var reasons = [String?](repeating: nil, count: paths.count)
    let lock = NSLock()
    let next = ManagedCounter()
    let workers = max(1, min(threads, paths.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while true {
            let i = next.take()
            if i >= paths.count { return }
            var count: Int? = nil, reason: String? = nil
            do {
                let r = try VideoReader(path: paths[i], range: samples[i].range)
                _ = try r.frames(at: [0, r.frameCount - 1], size: (width: 16, height: 16))
                count = r.frameCount
            } catch let e as VideoError {
                reason = e.reason
            } catch {
                reason = "\(error)"
            }
            lock.lock(); counts[i] = count; reasons[i] = reason; lock.unlock()
        }
    }
    var report = VideoCheckReport(total: paths.count, frameCounts: counts.compactMap { $0 }, bad: [])
    for (i, r) in reasons.enumerated() { if let r { report.bad.append(.init(path: paths[i], reason: r)) } }
    return report
}

final class ManagedCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func take() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value - 1 }
}
