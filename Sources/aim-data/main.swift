import AIMConfig
import AIMData
import AIMTensor
import ArgumentParser
import Foundation

struct AimData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-data",
        abstract: "Inspect video datasets, dump sampled clips, write a synthetic dataset.",
        subcommands: [Check.self, Clip.self, Synth.self, DecodeBench.self])
}

func fail(_ message: String) -> Never {
    Console.errorRaw("aim-data: \(message)\n")
    Foundation.exit(1)
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open every listed video and report totals, frame counts and every bad entry (exit 0 even when some are bad; exit 1 when the annotation itself is unusable or lists no videos).")

    @Option(help: "experiment config (YAML)") var config: String?
    @Option(name: .customLong("set"), help: "config override key=value (repeatable)") var overrides: [String] = []
    @Option(help: "split of the config: train, val or test") var split: String = "train"
    @Option(help: "annotation file (instead of --config)") var list: String?
    @Option(help: "directory the annotation's paths are relative to") var root: String = ""
    @Option(help: "annotation format with --list: list, kinetics_csv, ssv2_json, diving48_json") var format: String = "list"
    @Option(name: .customLong("class-list"), help: "class names (Kinetics) or labels.json (SSv2)") var classList: String?
    @Option(name: .customLong("num-classes"), help: "with --list: refuse labels outside 0..<N (--config uses model.num_classes)") var numClasses: Int?
    @Option(help: "with --list: label map (line i = name of label i); refuse labels it does not name and, with --num-classes, a length that differs (--config uses data.classes)") var classes: String?
    @Option(help: "files checked at once") var threads: Int = 2
    @Flag(help: "print {\"total\", \"ok\", \"bad\": [{\"path\", \"reason\"}]} as JSON") var json = false

    func run() throws {
        guard threads >= 1 else { fail("--threads must be at least 1, got \(threads)") }
        if let numClasses, numClasses < 1 { fail("--num-classes must be at least 1, got \(numClasses)") }
        let samples: [VideoSample]
        var labelMap: LabelMap?
        do {
            if let cfgPath = config {
                guard numClasses == nil else { fail("--num-classes is for --list; with --config give --set model.num_classes=N") }
                let cfg = try Config.load(path: cfgPath, overrides: overrides)
                guard let s = DataSplit(rawValue: split) else { fail("--split must be train, val or test") }
                // Throws for an annotation without videos and for labels outside model.num_classes.
                samples = try annotationSamples(config: cfg, split: s)
                labelMap = try LabelMap.fromConfig(cfg)
            } else if let list {
                guard let f = AnnotationFormat(rawValue: format) else {
                    fail("--format must be one of \(AnnotationFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                samples = try loadAnnotations(format: f, file: list, root: root, classList: classList)
                guard !samples.isEmpty else { fail("\(list) lists no videos") }
                if let numClasses { try checkLabels(samples, file: list, numClasses: numClasses) }
                if let classes {
                    let map = try LabelMap.load(path: classes)
                    if let numClasses { try map.check(numClasses: numClasses) }
                    try map.checkLabels(samples, file: list)
                    labelMap = map
                }
            } else {
                fail("give --config C or --list L --root R")
            }
        } catch {
            fail("\(error)")
        }
        let report = checkVideos(samples.map(\.path), threads: threads)
        print(json ? report.json() : report.text())
        if let labelMap, !json {
            let used = Set(samples.map(\.label)).count
            print("label map \(labelMap.path): \(labelMap.names.count) class names; the \(samples.count) entries use \(used) of them")
        }
    }
}

struct Clip: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample frame indices like mmaction2's SampleFrames and write them with the decoded RGB frames to safetensors.")

    @Option var video: String
    @Option(name: .customLong("clip-len")) var clipLen: Int
    @Option(name: .customLong("frame-interval")) var frameInterval: Int = 1
    @Option(name: .customLong("num-clips")) var numClips: Int = 1
    @Flag(name: .customLong("frame-uniform")) var frameUniform = false
    @Flag(name: .customLong("test-mode")) var testMode = false
    @Option var seed: UInt64 = 0
    @Option(parsing: .upToNextOption, help: "H W: resize the frames (libswscale) to this size") var size: [Int] = []
    @Option var output: String

    func run() throws {
        guard clipLen > 0, frameInterval > 0, numClips > 0 else { fail("clip-len, frame-interval and num-clips must be positive") }
        guard size.isEmpty || (size.count == 2 && size.allSatisfy { $0 > 0 }) else { fail("--size takes two positive numbers: H W") }
        let sampler = SampleFrames(clipLen: clipLen, frameInterval: frameInterval, numClips: numClips,
                                   testMode: testMode, frameUniform: frameUniform)
        do {
            let reader = try VideoReader(path: video)
            var rng = RandomGenerator(keys: seed)
            let idx = sampler.indices(totalFrames: reader.frameCount, rng: &rng)
            let frames = try reader.frames(at: idx, size: size.isEmpty ? nil : (width: size[1], height: size[0]))
            let n = sampler.clipsPerVideo
            var w = SafetensorsWriter(metadata: ["video": video, "total_frames": String(reader.frameCount)])
            w.add("indices", int64: idx.map(Int64.init), shape: [n, clipLen])
            w.add("frames", dtype: .u8, shape: [n, clipLen, frames.height, frames.width, 3], bytes: frames.pixels)
            try w.save(to: output)
            print("\(video): \(reader.frameCount) frames (\(reader.frameCountSource.rawValue)), indices \(idx) → \(output)")
        } catch {
            fail("\(error)")
        }
    }
}

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic dataset whose classes differ only in the order of frames (real encoded files + mmaction2 lists).")

    @Argument(help: "output folder") var out: String
    @Option var classes: Int = 4
    @Option(name: .customLong("per-class"), help: "training videos per class") var perClass: Int = 24
    @Option(name: .customLong("val-per-class"), help: "validation videos per class (default per-class / 4, at least 2)") var valPerClass: Int?
    @Option var frames: Int = 16
    @Option var size: Int = 32
    @Option var seed: UInt64 = 0
    @Option(name: .customLong("stills-per-class"), help: "also write an image-pretraining set of single-frame clips (3×3 position cells), this many per cell") var stillsPerClass: Int = 0

    func run() throws {
        guard classes >= 2 && classes <= SynthDataset.classNames.count else { fail("--classes must be 2…\(SynthDataset.classNames.count)") }
        guard size >= 16 && size % 2 == 0 else { fail("--size must be even and ≥ 16") }
        guard frames >= 2, perClass >= 1 else { fail("--frames ≥ 2 and --per-class ≥ 1") }
        do {
            let s = try SynthDataset.write(to: out, classes: classes, perClass: perClass,
                                           valPerClass: valPerClass ?? max(2, perClass / 4),
                                           frames: frames, size: size, seed: seed)
            print("wrote \(s.files["train"] ?? 0) train and \(s.files["val"] ?? 0) val videos to \(out) (codecs: \(s.codecs.joined(separator: ", ")))")
            if !s.missingEncoders.isEmpty { print("not in this FFmpeg: \(s.missingEncoders.joined(separator: ", "))") }
            print("lists: \(out)/train_list.txt, \(out)/val_list.txt (paths relative to \(out)); classes: \(out)/classes.txt")
            if stillsPerClass > 0 {
                try SynthStills.write(to: out, perClass: stillsPerClass, valPerClass: max(2, stillsPerClass / 4), size: size, seed: seed)
                print("stills for backbone pretraining: \(out)/stills_train_list.txt, \(out)/stills_val_list.txt (9 position classes)")
            }
        } catch {
            fail("\(error)")
        }
    }
}

struct DecodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode-bench",
        abstract: "Clips/s of the training pipeline (8x224x224 from 320p H.264) with 1 and 2 loader threads.")

    @Option(help: "folder for the generated 320p videos (kept between runs)") var dir: String = NSTemporaryDirectory() + "aim-decode-bench"
    @Option(name: .customLong("clips-per-thread")) var clipsPerThread: Int = 8

    func run() throws {
        do {
            let paths = try DecodeBenchmark.makeVideos(in: dir)
            for t in [1, 2] {
                let r = try DecodeBenchmark.run(paths: paths, threads: t, clipsPerThread: clipsPerThread)
                print(String(format: "threads %d: %d clips in %.2f s = %.2f clips/s", t, r.clips, r.seconds, r.clipsPerSecond))
            }
        } catch {
            fail("\(error)")
        }
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AimData.main()
