import AIMConfig
import AIMTensor
import Foundation

extension Trainer {
    /// The work dir's record of the run, as mmaction2 keeps one: `<config name>.yaml` with every
    /// key (defaults and --set included; `--config` reads it back), and `<start time>.log`, a copy of
    /// what rank 0 prints. Neither can stop the run: a failed write is reported and it goes on.
    static func startRunLog(workDir: URL, config: Config, options: TrainOptions, ranks: Int) throws {
        let command = options.commandLine.isEmpty ? ShellQuote.line(CommandLine.arguments) : options.commandLine
        let configFile = workDir.appendingPathComponent("\(config.name).yaml")
        // A run killed while writing it left a temporary file (one run per work dir: not ours is stale).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: workDir.path)) ?? []
        where name.contains(".yaml.tmp-") && !name.hasSuffix(".tmp-\(getpid())") {
            try? FileManager.default.removeItem(at: workDir.appendingPathComponent(name))
        }
        do {
            try FileOutput.write(config.yamlText(header: [WorkDirCheck.runConfigHeader,
                                                          "Command: \(command)", "bin/aim-train --config \(ShellQuote.word(configFile.path)) reproduces it."]),
                                 to: configFile.path)
        } catch { Console.error("warning: \(configFile.path) not written: \(error)") }
        let logFile = workDir.appendingPathComponent(WorkDirCheck.runTimeStamp() + ".log")
        do {
            try RunLog.attach(path: logFile.path, header: [WorkDirCheck.runLogHeader + "\(ISO8601DateFormatter().string(from: Date())) on \(ProcessInfo.processInfo.hostName), \(ranks) rank(s)",
                                                           "command: \(command)", "config: \(configFile.path)"])
        } catch {
            RunLog.stop()
            Console.error("warning: no run log: \(error)")
        }
    }
}
