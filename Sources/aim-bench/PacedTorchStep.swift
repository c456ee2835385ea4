import AIMTensor
import Foundation

/// PyTorch's training step in a child process that runs one step whenever asked
/// (`bench/torch_step.py --paced`), so a side-by-side can alternate its steps with ours one by one:
/// both sides then sample the machine within seconds of each other. Why: this machine's speed
/// drifts by tens of percent over minutes, and timing all of ours first, then all of PyTorch's,
/// compared two different machines.
final class PacedTorchStep {
    private let process = Process()
    private let toChild = Pipe(), fromChild = Pipe()
    private var buffered = Data()
    private let label: String

    /// Starts the child and waits until its model is built (its RSS baseline is taken after
    /// `import torch`, as in the unpaced runs).
    init(python: String, script: String, model: String, precision: String, threads: Int, _ context: BenchContext) throws {
        guard FileManager.default.fileExists(atPath: script) else {
            throw BenchError("\(script) not found (run aim-bench from the repository root, as `make bench` does)")
        }
        label = "\(model) \(precision)"
        process.executableURL = URL(fileURLWithPath: python.contains("/") ? python : "/usr/bin/env")
        process.arguments = (python.contains("/") ? [] : [python])
            + [script, "--paced", "--models", model, "--precisions", precision, "--threads", "\(threads)", "--warmup", "1"]
        process.environment = TorchReport.childEnvironment(threads: threads)
        process.standardInput = toChild
        process.standardOutput = fromChild
        context.log("  torch (paced): \(python) \(process.arguments!.joined(separator: " "))")
        do { try process.run() } catch { throw BenchError("cannot start \(python): \(error.localizedDescription)") }
        let first = try readLine()
        guard first == "ready" else { throw BenchError("torch_step.py \(label): expected 'ready', got \(first)") }
    }

    /// One PyTorch step; returns its seconds as the child timed them.
    @discardableResult
    func step() throws -> Double {
        try send("step")
        let line = try readLine()
        struct Step: Decodable { let step_s: Double }
        guard let s = try? JSONDecoder().decode(Step.self, from: Data(line.utf8)) else {
            throw BenchError("torch_step.py \(label): cannot read a step time from \(line)")
        }
        return s.step_s
    }

    /// Ends the child; returns its result (times after its warm-up step, peak memory).
    func finish() throws -> TorchReport.Result {
        try send("done")
        let line = try readLine()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("torch_step.py \(label) exited with status \(process.terminationStatus)") }
        do { return try JSONDecoder().decode(TorchReport.Result.self, from: Data(line.utf8)) } catch {
            throw BenchError("cannot read torch_step.py \(label)'s result: \(error)")
        }
    }

    private func send(_ command: String) throws {
        do { try toChild.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8)) } catch {
            throw BenchError("torch_step.py \(label) is gone (\(error.localizedDescription))")
        }
    }

    private func readLine() throws -> String {
        while true {
            if let nl = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[buffered.startIndex..<nl], as: UTF8.self)
                buffered.removeSubrange(buffered.startIndex...nl)
                return line
            }
            let more = fromChild.fileHandleForReading.availableData
            if more.isEmpty { throw BenchError("torch_step.py \(label) ended without answering (see its log above)") }
            buffered.append(more)
        }
    }
}
