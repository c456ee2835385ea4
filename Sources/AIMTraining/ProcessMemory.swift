import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of this process, read from /proc/self/status (Linux; zeros elsewhere).
/// Used by the profiler (per-step peak RSS) and the efficiency report (RSS growth of a run).
public enum ProcessMemory {
    public struct Sample: Sendable, Equatable {
        public var rssBytes: Int      // VmRSS: resident now
        public var peakRSSBytes: Int  // VmHWM: the high-water mark since start (or the last resetPeak)
    }

    /// One read of /proc/self/status into a stack buffer (no allocation, ~10 µs).
    public static func sample() -> Sample {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return Sample(rssBytes: 0, peakRSSBytes: 0) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 4096)
        var n = 0
        buf.withUnsafeMutableBytes { raw in
            while n < raw.count - 1 {
                let r = read(fd, raw.baseAddress! + n, raw.count - 1 - n)
                if r <= 0 { break }
                n += r
            }
        }
        let text = buf[0..<n]
        return Sample(rssBytes: field("VmRSS:", in: text), peakRSSBytes: field("VmHWM:", in: text))
    }

    /// The kB value of `name` in status text, in bytes.
    private static func field(_ name: String, in text: ArraySlice<UInt8>) -> Int {
        let key = Array(name.utf8)
        var i = text.startIndex
        while i + key.count <= text.endIndex {
            if text[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count, v = 0
                while j < text.endIndex && (text[j] == 32 || text[j] == 9) { j += 1 }
                while j < text.endIndex, text[j] >= 48, text[j] <= 57 { v = v * 10 + Int(text[j] - 48); j += 1 }
                return v * 1024
            }
            i += 1
        }
        return 0
    }

    /// Resets VmHWM to the current RSS (writing 5 to /proc/self/clear_refs, Linux ≥ 4.0), so a
    /// later `sample().peakRSSBytes` is the peak of what ran in between. False if not possible.
    @discardableResult
    public static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var five: UInt8 = 53
        return write(fd, &five, 1) == 1
    }

    /// Hands freed heap memory back to the kernel, so an RSS reading that follows is a clean
    /// baseline (glibc otherwise keeps freed arenas resident).
    public static func trim() {
        // glibc's malloc_trim is not in Swift's Glibc module; look it up (absent on musl: no-op).
        typealias Trim = @convention(c) (Int) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
            _ = unsafeBitCast(sym, to: Trim.self)(0)
        }
    }
}
