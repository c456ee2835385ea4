import AIMTensor
import Foundation

// The pieces every benchmark section shares: a section protocol, result tables, and timing.
// A new section (video decoding, a training step …) is one more file with a type conforming to
// `BenchSection`, listed in `AimBench.sections`.

/// One part of the benchmark report: runs its measurements and returns tables.
protocol BenchSection {
    /// Heading in BENCHMARKS.md.
    var title: String { get }
    /// One line under the heading: what is measured and how to read it.
    var summary: String { get }
    func run(_ context: BenchContext) throws -> [BenchTable]
}

/// Settings shared by all sections.
struct BenchContext {
    let repeats: Int
    let threads: Int
    /// Python with torch for the PyTorch side-by-side (nil: that comparison is skipped).
    var torchPython: String? = nil
    /// Progress lines go to stderr so stdout stays the markdown.
    func log(_ line: String) { Console.error(line) }
}

struct BenchTable {
    var title: String
    var columns: [String]
    var rows: [[String]] = []
    var notes: [String] = []

    /// A table this CPU cannot measure: rendered as its title and "skipped: <reason>".
    static func skipped(_ title: String, _ reason: String) -> BenchTable {
        BenchTable(title: title, columns: [], notes: ["skipped: \(reason)"])
    }
}

/// Wall-clock times of repeated runs, in seconds.
struct Timing {
    var samples: [Double]
    /// "min / median / max" in seconds, two decimals (the step tables).
    var triple: String { "\(fixed(min, 2)) / \(fixed(median, 2)) / \(fixed(max, 2))" }
    var min: Double { samples.min() ?? .nan }
    var max: Double { samples.max() ?? .nan }
    var median: Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

@inline(never) func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
}

/// Times several variants side by side: one warm-up each, then `repeats` rounds in which every
/// variant runs once, so slow drifts of the machine (other processes, clocks) hit all variants
/// alike. The order within a round alternates, so no variant always runs right after another.
func timeSideBySide(repeats: Int, _ variants: [() -> Void]) -> [Timing] {
    // Nothing here can throw: the throwing version's error path is unreachable.
    (try? timeSideBySide(repeats: repeats, throwing: variants.map { v in { v() } })) ?? []
}

/// `timeSideBySide` for variants that can throw (oneDNN's bf16 products): the first error ends it.
func timeSideBySide(repeats: Int, throwing variants: [() throws -> Void]) throws -> [Timing] {
    for v in variants { try v() }
    var timings = variants.map { _ in Timing(samples: []) }
    for round in 0..<repeats {
        let order = round % 2 == 0 ? Array(variants.indices) : variants.indices.reversed()
        for i in order { timings[i].samples.append(try seconds(variants[i])) }
    }
    return timings
}

func ms(_ s: Double) -> String { String(format: "%.3f", s * 1e3) }
func fixed(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
/// "min / median / max" in milliseconds.
func msTriple(_ t: Timing) -> String { "\(ms(t.min)) / \(ms(t.median)) / \(ms(t.max))" }

/// A buffer of `count` floats with a fixed pseudo-random fill (values in [-1, 1)).
final class Buffer {
    let count: Int
    let data: UnsafeMutablePointer<Float>
    init(_ count: Int, seed: UInt32 = 1) {
        self.count = count
        var raw: UnsafeMutableRawPointer?
        // Not inside precondition(): this target builds with -Ounchecked, which drops its condition.
        let rc = posix_memalign(&raw, 64, max(64, count * 4))
        guard rc == 0, let raw else { fatalError("aim-bench: cannot allocate \(count) floats") }
        data = raw.bindMemory(to: Float.self, capacity: count)
        var s = seed &* 2_654_435_761 | 1
        for i in 0..<count {
            s ^= s << 13; s ^= s >> 17; s ^= s << 5
            data[i] = Float(s >> 8) / Float(1 << 23) - 1
        }
    }
    deinit { free(data) }
}
