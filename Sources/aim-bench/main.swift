import Foundation
import ArgumentParser
import AIMConfig
import AIMModel
import AIMReport
import AIMTensor

/// aim-bench: the project's benchmarks, side by side in one run, as markdown.
struct AimBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-bench",
        abstract: "Benchmarks our kernels against raw OpenBLAS on AIM ViT-B/16 shapes and writes a markdown report.")

    @Flag(help: "Few rounds per measurement (for the demo); figures are noisier.")
    var quick = false

    @Option(help: "Write the markdown report to this file (it is printed to stdout otherwise).")
    var output: String?

    @Option(help: "Threads for OpenBLAS and our loops (default: cores ÷ MPI ranks on this node).")
    var threads: Int?

    @Option(help: "Rounds per measurement (default 10, or 3 with --quick).")
    var repeats: Int?

    @Option(help: "Python interpreter with torch for the PyTorch training-step comparison (bench/torch_step.py); without it that comparison is skipped.")
    var torchPython: String?

    @Option(help: "Run only sections whose title contains this text (case-insensitive), e.g. --only step.")
    var only: String?

    /// Sections in report order; add new ones here.
    static let sections: [BenchSection] = [GemmLibrarySection(), GemmSection(), KernelSection(), WindowAttentionSection(), FusedBiasSection(), DecodeSection(), StepSection(), BF16GemmSection(), TorchComparisonSection(),
                                           SwinTorchComparisonSection()]

    static func selected(_ section: BenchSection, only: String) -> Bool { section.title.lowercased().contains(only.lowercased()) }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        // A text matching no title ran nothing and exited 0, as if the benchmarks had passed.
        if let only, !Self.sections.contains(where: { Self.selected($0, only: only) }) {
            throw ValidationError("--only \"\(only)\" matches no section title; the sections are:\n\(Self.sections.map { "  \($0.title)" }.joined(separator: "\n"))")
        }
    }

    func run() throws {
        let n = threads ?? Threads.defaultCount()
        Threads.set(n)
        // What a user's run of the AIM ViT-B/16 step picks (`gemm: auto`, or AIM_GEMM): the
        // sections' "default" rows run with it.
        // The config defaults are the ViT-B/16 CLIP 8-frame model the step sections run.
        Report.gemmChoice = try GemmChoice.apply(config: Config()).reason
        let rounds = repeats ?? (quick ? 3 : 10)
        let context = BenchContext(repeats: rounds, threads: n, torchPython: torchPython)
        var report = Report(commandLine: (["bin/aim-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
                            threads: n, repeats: rounds)
        for section in Self.sections where only.map({ Self.selected(section, only: $0) }) ?? true {
            context.log("== \(section.title)")
            report.sections.append((section, try section.run(context)))
        }
        report.loadAfter = Report.loadAverage()
        var md = report.markdown()
        if let output {
            md = HandWrittenBlock.carry(from: try? String(contentsOfFile: output, encoding: .utf8), into: md, after: Report.writtenBy)
            do { try FileOutput.write(md, to: output) } catch {
                throw ValidationError("cannot write the report to \(output): \(error)")
            }
            context.log("wrote \(output)")
        } else {
            print(md, terminator: "")
        }
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AimBench.main()
