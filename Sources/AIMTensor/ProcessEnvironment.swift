import Foundation

/// Library settings that are read only when a library loads, so a process can change them only
/// by starting again: every aim-swift executable calls `ProcessEnvironment.prepare()` first, and
/// when a setting is missing it sets it and re-executes itself (same PID, same arguments, before
/// MPI starts), once.
///
/// - `OPENBLAS_CORETYPE`: Debian's OpenBLAS 0.3.21 does not know newer CPUs and falls back to its
///   Prescott (SSE3) kernels on them (measured on an Intel Xeon family 6 model 207: 38 instead of
///   186 GFLOP/s on the step's products). Set to the class's kernels when OpenBLAS picked others,
///   including when `AIM_CPU_FEATURES` narrowed the class (so OpenBLAS runs what such a CPU runs).
///   A core set in the environment is replaced too when it does not fit the class: machines that
///   set `OPENBLAS_CORETYPE=Haswell` to avoid the Prescott fallback run half speed on AVX-512
///   (measured on an AMD EPYC family 26: 199 against 368 GFLOP/s). Narrowing the kernels is
///   `AIM_CPU_FEATURES`'s job, which every other choice follows as well.
/// - `OPENBLAS_THREAD_TIMEOUT=4`: OpenBLAS's own threads (which only its few unsplit calls wake:
///   `Gemm.sgemm` runs the step's products on our threads) sleep right after instead of spinning.
///   OpenMP's wait policy is left to libgomp (a short spin, then sleep): our loops and oneDNN's
///   products share its team (`Threads`), so its threads waiting for the next loop take nothing
///   from another pool. It used to be set to PASSIVE, which cost a wake-up per oneDNN call.
///
/// Other values the user set are kept. `AIM_NO_REEXEC=1` turns all of this off.
public enum ProcessEnvironment {
    /// What a process here should start with that its parent did not give it: what `prepare`
    /// added on restart (listed in `AIM_STARTED_WITHOUT`) and anything still missing.
    public static var recommendedSettings: [String: String] {
        let env = ProcessInfo.processInfo.environment
        var added: [String: String] = [:]
        for k in (env["AIM_STARTED_WITHOUT"] ?? "").split(separator: ",") { added[String(k)] = env[String(k)] }
        return added.merging(missingSettings(env)) { a, _ in a }
    }

    public static func prepare() {
        let env = ProcessInfo.processInfo.environment
        guard env["AIM_NO_REEXEC"] == nil else { CPUFeatures.warnAboutUnknownNames(); return }
        let changes = missingSettings(env)
        // Said by the process that runs on, not also by the one about to restart.
        guard !changes.isEmpty else { CPUFeatures.warnAboutUnknownNames(); return }
        for (k, v) in changes { setenv(k, v, 1) }
        setenv("AIM_STARTED_WITHOUT", changes.keys.sorted().joined(separator: ","), 1)
        if let replaced = env["OPENBLAS_CORETYPE"], changes["OPENBLAS_CORETYPE"] != nil {
            setenv("AIM_REPLACED_OPENBLAS_CORETYPE", replaced, 1)
        }
        // The resolved path, not /proc/self/exe itself: the kernel names a process after the file
        // it executed, and ps, pkill and top should show aim-train, not "exe".
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe"
        execv(me, CommandLine.unsafeArgv)
        // Only reached when exec failed: run on with the libraries as they loaded.
        let text = changes.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        Console.errorRaw("warning: could not restart with \(text) (\(String(cString: strerror(errno)))); set them before starting for full speed\n")
        CPUFeatures.warnAboutUnknownNames()
    }

    /// What `prepare` would set: for the Makefile (`aim-model cpu --exports`) and tests.
    public static func missingSettings(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var changes: [String: String] = [:]
        if let core = OpenBLASCore.recommended(for: CPUFeatures.current) {
            // The core that runs, whether OpenBLAS chose it or the environment named it.
            if !OpenBLASCore.fits(OpenBLASInfo.coreName, CPUFeatures.current) { changes["OPENBLAS_CORETYPE"] = core }
        }
        if env["OPENBLAS_THREAD_TIMEOUT"] == nil { changes["OPENBLAS_THREAD_TIMEOUT"] = "4" }
        return changes
    }
}

/// OpenBLAS's kernel families (DYNAMIC_ARCH core names) and the CPU class each needs.
public enum OpenBLASCore {
    static func cpuClass(ofCore name: String) -> CPUClass {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return .avx512
        case "haswell", "zen": return .avx2
        default: return .baseline
        }
    }

    /// The core a CPU of these features should run: SkylakeX on AVX-512 (Cooperlake's sgemm is
    /// the same), Zen on AMD AVX2 CPUs, Haswell on other AVX2 CPUs, nil below AVX2 (OpenBLAS's own choice).
    public static func recommended(for f: CPUFeatures) -> String? {
        switch f.cpuClass {
        case .avx512, .avx512bf16, .amx: return "SkylakeX"
        case .avx2: return CPUReport.vendor == "AuthenticAMD" ? "Zen" : "Haswell"
        case .baseline: return nil
        }
    }

    /// Whether OpenBLAS's `core` uses exactly the vector width the class allows (no more, no less).
    public static func fits(_ core: String, _ f: CPUFeatures) -> Bool { cpuClass(ofCore: core) == widest(f) }

    private static func widest(_ f: CPUFeatures) -> CPUClass { f.cpuClass >= .avx512 ? .avx512 : f.cpuClass }
}
