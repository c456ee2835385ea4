import AIMTensor
import Foundation
import COpenBLAS

/// The markdown report: how it was run, on what, then each section's tables.
struct Report {
    var commandLine: String
    var threads: Int
    var repeats: Int
    var sections: [(BenchSection, [BenchTable])] = []
    /// /proc/loadavg before and after: other work on the machine makes the figures noisier.
    var loadBefore = Report.loadAverage()
    var loadAfter = ""

    /// The report's first line of text; a block kept by hand (`HandWrittenBlock`) goes right after it.
    static let writtenBy = "Written by `aim-bench`"

    /// Why the default fp32 GEMM library is the one it is (the probe's figures, or AIM_GEMM).
    nonisolated(unsafe) static var gemmChoice = ""

    func markdown() -> String {
        var md = "# Benchmarks\n\n"
        md += Self.writtenBy + "; rerun with `make bench` (or the command below) to refresh.\n\n"
        md += "| | |\n|---|---|\n"
        md += "| command | `\(commandLine)` |\n"
        md += "| date | \(ISO8601DateFormatter().string(from: Date())) |\n"
        md += "| CPU | \(Self.cpuModel()) |\n"
        md += "| CPU class (ISA) | **\(CPUFeatures.current.cpuClass.rawValue)**: \(CPUFeatures.current)\(Self.classNote) |\n"
        md += "| cores | \(ProcessInfo.processInfo.activeProcessorCount) |\n"
        md += "| threads | \(threads) (OpenBLAS and our loops) |\n"
        md += "| OpenBLAS | \(String(cString: openblas_get_config())) (core \(String(cString: openblas_get_corename()))) |\n"
        md += "| fp32 GEMM of the linear layers (default) | **\(Gemm.library.rawValue)**: \(Gemm.describe(Gemm.library)) — \(Self.gemmChoice); available: \(GemmLibrary.allCases.filter(Gemm.isAvailable).map { Gemm.describe($0) }.joined(separator: "; ")) |\n"
        md += "| bf16 products | \(BF16Support.unavailableReason.map { "unavailable: " + $0 } ?? BF16Products.description) |\n"
        md += "| rounds per measurement | \(repeats) (after one warm-up) |\n"
        md += "| load average (1, 5, 15 min) | before: \(loadBefore); after: \(loadAfter) |\n\n"
        for (section, tables) in sections {
            md += "## \(section.title)\n\n\(section.summary)\n\n"
            for t in tables {
                md += "### \(t.title)\n\n"
                if t.columns.isEmpty {
                    for n in t.notes { md += "\(n)\n\n" }
                    continue
                }
                md += "| " + t.columns.joined(separator: " | ") + " |\n"
                md += "|" + t.columns.map { _ in "---" }.joined(separator: "|") + "|\n"
                for r in t.rows { md += "| " + r.joined(separator: " | ") + " |\n" }
                md += "\n"
                for n in t.notes { md += "\(n)\n\n" }
            }
        }
        return md
    }

    /// Says when AIM_CPU_FEATURES narrowed the class, and what the libraries were held to.
    static var classNote: String {
        guard CPUFeatures.isOverridden else { return "" }
        let env = ProcessInfo.processInfo.environment
        return " — **emulated**: AIM_CPU_FEATURES=\(env["AIM_CPU_FEATURES"] ?? "") on a \(CPUFeatures.detect().cpuClass.rawValue) CPU; OpenBLAS held by OPENBLAS_CORETYPE=\(env["OPENBLAS_CORETYPE"] ?? "(unset)"), oneDNN and BLIS by aim-swift"
    }

    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// "model name" from /proc/cpuinfo (Linux), or "unknown".
    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }
}
