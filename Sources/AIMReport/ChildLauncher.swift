import Foundation

/// Runs one measurement in a fresh process (`aim-report measure`), under `mpirun -n R` when
/// R > 1, so every configuration starts from the same clean memory baseline and a rank sweep
/// gets real MPI ranks.
public enum ChildLauncher {
    /// This executable's absolute path.
    public static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(cString: Array(buf[0..<n]) + [0]) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    /// Arguments of `aim-report measure` for `request`, writing its JSON to `json`.
    public static func measureArguments(_ r: MeasureRequest, json: String) -> [String] {
        var a = ["measure", "--config", r.configPath, "--steps", "\(r.steps)", "--label", r.label, "--json", json]
        // `--opt=value`: a value starting with '-' (`--sweep model.x=-1`) would read as an option.
        for o in r.overrides { a += ["--set=" + o] }
        if let t = r.threads { a += ["--threads", "\(t)"] }
        if !r.sweepKey.isEmpty { a += ["--sweep-key=" + r.sweepKey, "--sweep-value=" + r.sweepValue] }
        return a
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func run(_ request: MeasureRequest, ranks: Int, executable: String = selfExecutable()) throws -> EfficiencyMeasurement {
        let json = FileManager.default.temporaryDirectory.appendingPathComponent("aim-report-\(getpid())-\(UUID().uuidString.prefix(8)).json").path
        defer { unlink(json) }
        let p = Process()
        var env = ProcessInfo.processInfo.environment
        if ranks > 1 {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["mpirun", "-n", "\(ranks)", "--oversubscribe", executable] + measureArguments(request, json: json)
            // Open MPI refuses to run as root unless told it is intended (containers, CI).
            if getuid() == 0 { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
        } else {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = measureArguments(request, json: json)
            // A child of a single-process driver must not think it runs under a launcher.
            for k in env.keys where k.hasPrefix("OMPI_COMM_WORLD") || k.hasPrefix("PMIX_") || k.hasPrefix("PMI_") { env[k] = nil }
        }
        p.environment = env
        try p.run()
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal {
            // Killed (out of memory, most likely, for a large model): its temporary work dir
            // (`aim-report-<its pid>-…`, EfficiencyRunner) is left to this process to remove.
            let tmp = FileManager.default.temporaryDirectory
            for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [] where name.hasPrefix("aim-report-\(p.processIdentifier)-") {
                try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name))
            }
            let hint = p.terminationStatus == SIGKILL ? " (out of memory? the kernel's OOM killer sends SIGKILL)" : ""
            throw Failure(description: "measuring \(request.label) failed: killed by signal \(p.terminationStatus)\(hint): \((p.arguments ?? []).joined(separator: " "))")
        }
        guard p.terminationStatus == 0 else {
            throw Failure(description: "measuring \(request.label) failed (exit \(p.terminationStatus)): \((p.arguments ?? []).joined(separator: " "))")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: json))
        return try JSONDecoder().decode(EfficiencyMeasurement.self, from: data)
    }
}
