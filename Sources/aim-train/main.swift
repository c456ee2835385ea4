// aim-train: data-parallel AIM training. `mpirun -n R bin/aim-train --config C` runs R ranks;
// without mpirun the same code runs as one process.
import AIMConfig
import AIMDistributed
import AIMTraining
import ArgumentParser
import AIMTensor
import Foundation

struct AIMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-train",
        abstract: "Train AIM adapters (or a baseline) on a video dataset, data-parallel under MPI.",
        discussion: """
        Single process:   bin/aim-train --config configs/debug/tiny_aim.yaml --set data.root=… --set data.train=…
        Two ranks:        mpirun -n 2 bin/aim-train --config …
        Cluster:          cluster/mpirun.sh -n 16 --hostfile cluster/hostfile.example -- bin/aim-train --config …
        """)

    @Option(help: "YAML experiment config.") var config: String
    @Option(name: .customLong("set"), help: "Override: key=value (repeatable).") var overrides: [String] = []
    @Option(name: .customLong("work-dir"), help: "Output folder (default work_dirs/<config name>).") var workDir: String?
    @Option(help: "auto = newest valid checkpoint in the work dir, or a checkpoint path.") var resume: String?
    @Option(name: .customLong("max-steps"), help: "Stop after this many optimizer steps (the schedule keeps the config's length).") var maxSteps: Int?
    @Option(help: "Compute threads per rank (default: cores ÷ ranks on the node).") var threads: Int?
    @Flag(help: "Record per-phase timings and memory in metrics.jsonl.") var profile = false
    @Flag(name: .customLong("test-last"),
          help: "When training is complete, test the final weights on data.test (else data.val) with the config's test views, as aim-eval does (mmaction2's --test-last).")
    var testLast = false
    @Flag(name: .customLong("test-best"),
          help: "When training is complete, test best.safetensors (the validation with the highest top-1) the same way (mmaction2's --test-best).")
    var testBest = false
    @Flag(name: .customLong("blocking-allreduce"), help: "Reduce gradient buckets after backward instead of overlapping.") var blockingAllreduce = false
    @OptionGroup var mmaction2: MMAction2TrainFlags

    func validate() throws {
        try mmaction2.check(resume: resume)
        if let problem = Threads.problem(with: threads) { throw ValidationError(problem) }
        if let m = maxSteps, m < 1 { throw ValidationError("--max-steps \(m): must be at least 1") }
        if let r = resume, r.isEmpty { throw ValidationError("--resume: give auto or a checkpoint path") }
        // An empty path trained into the current folder.
        if let w = workDir, w.isEmpty { throw ValidationError("--work-dir: give a folder (empty path)") }
    }

    func run() throws {
        Console.ignoreBrokenPipe()
        let comm = makeCommunicator()
        var status = ExitStatus.success
        do {
            let cfg = try Launch.together(comm, label: "config") { try Config.load(path: config, overrides: overrides + mmaction2.overrides) }
            // mmaction2's --validate asks for validation; here data.val decides, so say when it cannot happen.
            if mmaction2.validate && cfg.string("data.val").isEmpty && comm.rank == 0 {
                Console.error("warning: --validate: data.val is empty, so this run validates nothing (set data.val to a validation list)")
            }
            var options = TrainOptions()
            options.workDir = workDir.map { URL(fileURLWithPath: $0) }
            options.resume = resume ?? mmaction2.resume; options.maxSteps = maxSteps; options.threads = threads
            options.profile = profile; options.bucketMode = blockingAllreduce ? .blocking : .overlapped
            options.commandLine = ShellQuote.line(CommandLine.arguments)
            options.runLog = true
            if testLast { options.testAfter.insert(.last) }
            if testBest { options.testAfter.insert(.best) }
            let trainer = try Trainer(config: cfg, options: options, communicator: comm)
            let summary = try trainer.run()
            // A stop by signal is not a finished run: a requeue wrapper or `&&` must see it.
            if summary.stopSignal != 0 { status = ExitStatus.stopped(by: summary.stopSignal) }
        } catch let stop as AgreedStop {
            if let m = stop.message { Console.error("aim-train: error: \(m)") }
            status = stop.status
        } catch {
            Launch.fail("aim-train", error, communicator: comm)
        }
        comm.finalize()
        if status != ExitStatus.success { Foundation.exit(status) }
    }
}

/// mmaction2's `tools/train.py` flags, so its command lines carry over: the ones with a meaning
/// here are taken as it (`--validate` and `--deterministic` describe what every run does), the
/// others are refused with what to use instead. Hidden from --help.
struct MMAction2TrainFlags: ParsableArguments {
    @Flag(help: .hidden) var validate = false
    @Flag(help: .hidden) var deterministic = false
    @Option(help: .hidden) var seed: Int?
    @Option(name: .customLong("resume-from"), help: .hidden) var resumeFrom: String?
    @Flag(name: .customLong("auto-resume"), help: .hidden) var autoResume = false
    @Option(name: .customLong("cfg-options"), parsing: .upToNextOption, help: .hidden) var cfgOptions: [String] = []
    @Option(help: .hidden) var gpus: Int?
    @Option(name: .customLong("gpu-ids"), parsing: .upToNextOption, help: .hidden) var gpuIDs: [String] = []
    @Option(help: .hidden) var launcher: String?

    /// `--seed N`: train.seed.
    var overrides: [String] { seed.map { ["train.seed=\($0)"] } ?? [] }
    /// `--resume-from P` / `--auto-resume`.
    var resume: String? { resumeFrom ?? (autoResume ? "auto" : nil) }

    func check(resume given: String?) throws {
        if !cfgOptions.isEmpty {
            throw ValidationError("--cfg-options: give each override as --set key=value; the keys are aim-swift's (bin/aim-model config --config C lists them with their meaning), not mmaction2's")
        }
        if gpus != nil || !gpuIDs.isEmpty || launcher != nil {
            throw ValidationError("--gpus / --gpu-ids / --launcher: aim-train runs on CPUs, one MPI rank per process: mpirun -n R bin/aim-train … (or cluster/mpirun.sh, cluster/slurm.sbatch)")
        }
        if given != nil && resume != nil || resumeFrom != nil && autoResume {
            throw ValidationError("--resume, --resume-from and --auto-resume: give one")
        }
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
// Before MPI, the decoders or a GEMM library start a thread: they inherit the blocked stop signals.
StopSignal.install()
AIMTrain.main()
