import CCPUID
import Foundation

/// The instruction sets this process may use, read once at start.
///
/// Detected with CPUID, counting a feature only when the OS also saves its registers (XGETBV:
/// AVX state for AVX2, opmask/ZMM state for AVX-512, tile state for AMX) — the same test
/// OpenBLAS and oneDNN make, so all three agree, also under an emulator or a hypervisor that
/// hides features. Then narrowed by `AIM_CPU_FEATURES` when set:
/// a comma-separated list such as `avx2,fma` makes the process behave as on a CPU with only those
/// (it can remove features, never add ones the CPU lacks). Kernel and library choices (bf16
/// matrix products, the fp32 GEMM library, oneDNN's and BLIS's code paths) all follow it, so one
/// machine can check the paths another CPU class would take.
public struct CPUFeatures: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let avx2 = CPUFeatures(rawValue: 1 << 0)
    public static let fma = CPUFeatures(rawValue: 1 << 1)
    public static let avx512f = CPUFeatures(rawValue: 1 << 2)
    public static let avx512bw = CPUFeatures(rawValue: 1 << 3)
    public static let avx512vl = CPUFeatures(rawValue: 1 << 4)
    public static let avx512bf16 = CPUFeatures(rawValue: 1 << 5)
    public static let amxTile = CPUFeatures(rawValue: 1 << 6)
    public static let amxBF16 = CPUFeatures(rawValue: 1 << 7)

    /// Each feature with its /proc/cpuinfo flag and the name users know it by.
    static let names: [(feature: CPUFeatures, flag: String, display: String)] = [
        (.avx2, "avx2", "AVX2"), (.fma, "fma", "FMA"), (.avx512f, "avx512f", "AVX-512F"),
        (.avx512bw, "avx512bw", "AVX-512BW"), (.avx512vl, "avx512vl", "AVX-512VL"),
        (.avx512bf16, "avx512_bf16", "AVX512_BF16"), (.amxTile, "amx_tile", "AMX-TILE"), (.amxBF16, "amx_bf16", "AMX-BF16"),
    ]

    /// The features of this process: detected, narrowed by `AIM_CPU_FEATURES`.
    public static let current: CPUFeatures = {
        let detected = detect()
        guard let override = ProcessInfo.processInfo.environment["AIM_CPU_FEATURES"] else { return detected }
        return detected.intersection(parse(override))
    }()

    /// Says which words of `AIM_CPU_FEATURES` name no feature: a misspelt one would silently
    /// narrow the process to less than was meant. (`ProcessEnvironment.prepare` calls it once.)
    public static func warnAboutUnknownNames() {
        guard let list = ProcessInfo.processInfo.environment["AIM_CPU_FEATURES"] else { return }
        let unknown = unknownNames(list)
        guard !unknown.isEmpty else { return }
        Console.error("warning: AIM_CPU_FEATURES: unknown feature(s) \(unknown.joined(separator: ", ")), ignored; known: "
                      + (names.map(\.flag) + ["avx512", "none"]).joined(separator: ", "))
    }

    /// The words of a feature list that name no feature.
    public static func unknownNames(_ list: String) -> [String] {
        let known = Set(names.flatMap { [$0.flag, $0.display.lowercased()] } + ["avx512", "none"])
        return list.lowercased().split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { !known.contains($0) }
    }

    /// True when `AIM_CPU_FEATURES` narrowed what the CPU has.
    public static var isOverridden: Bool { current != detect() }

    /// The features named in a list such as "avx2,fma" ("none" or "" for none); unknown names are ignored.
    public static func parse(_ list: String) -> CPUFeatures {
        let words = Set(list.lowercased().split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init))
        var f: CPUFeatures = []
        for n in names where words.contains(n.flag) || words.contains(n.display.lowercased()) { f.insert(n.feature) }
        // "avx512" as shorthand for the AVX-512 foundation subsets every AVX-512 server CPU has.
        if words.contains("avx512") { f.formUnion([.avx512f, .avx512bw, .avx512vl]) }
        return f
    }

    /// What CPUID reports and the OS has enabled.
    public static func detect() -> CPUFeatures {
        var r: [UInt32] = [0, 0, 0, 0]
        func bit(_ x: UInt32, _ i: UInt32) -> Bool { x & (1 << i) != 0 }
        guard aim_cpuid(1, 0, &r) != 0 else { return [] }
        let ecx1 = r[2]
        // OSXSAVE (ecx 27) must be set before XGETBV may run.
        let xcr0: UInt64 = bit(ecx1, 27) ? aim_xgetbv0() : 0
        let avxState = xcr0 & 0x6 == 0x6, avx512State = avxState && xcr0 & 0xE0 == 0xE0
        let amxState = xcr0 & 0x60000 == 0x60000
        var f: CPUFeatures = []
        if avxState && bit(ecx1, 12) { f.insert(.fma) }
        guard aim_cpuid(7, 0, &r) != 0 else { return f }
        let ebx7 = r[1], edx7 = r[3]
        if avxState && bit(ebx7, 5) { f.insert(.avx2) }
        if avx512State {
            if bit(ebx7, 16) { f.insert(.avx512f) }
            if bit(ebx7, 30) { f.insert(.avx512bw) }
            if bit(ebx7, 31) { f.insert(.avx512vl) }
            if aim_cpuid(7, 1, &r) != 0 && bit(r[0], 5) { f.insert(.avx512bf16) }
        }
        if amxState {
            if bit(edx7, 24) { f.insert(.amxTile) }
            if bit(edx7, 22) { f.insert(.amxBF16) }
        }
        return f
    }

    /// The same features read from a /proc/cpuinfo text (its first "flags" line), for tests and
    /// for comparing with the kernel's view.
    public static func fromCPUInfo(_ text: String) -> CPUFeatures {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        let flags = Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        var f: CPUFeatures = []
        for n in names where flags.contains(n.flag) { f.insert(n.feature) }
        return f
    }

    /// bf16 products with fp32 accumulation in hardware (oneDNN's avx512_core_bf16 or AMX paths).
    public var hasBF16: Bool { contains(.avx512bf16) || contains([.amxTile, .amxBF16]) }
    public var hasAVX512: Bool { contains([.avx512f, .avx512bw, .avx512vl]) }

    /// The CPU class speed figures are reported for.
    public var cpuClass: CPUClass {
        if contains([.amxTile, .amxBF16]) { return .amx }
        if hasAVX512 && contains(.avx512bf16) { return .avx512bf16 }
        if hasAVX512 { return .avx512 }
        if contains([.avx2, .fma]) { return .avx2 }
        return .baseline
    }

    public var description: String {
        let present = Self.names.filter { contains($0.feature) }.map(\.display)
        return present.isEmpty ? "none of AVX2, FMA" : present.joined(separator: " ")
    }
}

/// CPU classes that take different kernel paths (and whose speed figures are reported apart).
public enum CPUClass: String, Sendable, Comparable {
    case baseline = "x86-64 (no AVX2 with FMA)", avx2 = "AVX2", avx512 = "AVX-512", avx512bf16 = "AVX512_BF16", amx = "AMX"

    var rank: Int { [.baseline, .avx2, .avx512, .avx512bf16, .amx].firstIndex(of: self)! }
    public static func < (a: CPUClass, b: CPUClass) -> Bool { a.rank < b.rank }
}

/// What this process runs on, for logs and benchmark headers: the CPU model, its class and
/// features, and which one the libraries picked.
public enum CPUReport {
    public static var modelName: String { cpuinfoField("model name") ?? "unknown CPU" }
    /// "GenuineIntel", "AuthenticAMD" … (CPUID leaf 0).
    public static var vendor: String {
        var r: [UInt32] = [0, 0, 0, 0]
        guard aim_cpuid(0, 0, &r) != 0 else { return "unknown" }
        let bytes = [r[1], r[3], r[2]].flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func cpuinfoField(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// One line: "Intel(R) Xeon(R) … — class AVX512_BF16 (AVX2 FMA AVX-512F …)", noting an override.
    public static var summary: String {
        let f = CPUFeatures.current
        var s = "\(modelName) — class \(f.cpuClass.rawValue) (\(f))"
        if CPUFeatures.isOverridden {
            s += "; narrowed by AIM_CPU_FEATURES from \(CPUFeatures.detect().cpuClass.rawValue)"
        }
        return s
    }
}
