import AIMConfig
import AIMData
import AIMTensor
import ArgumentParser
import Foundation

struct AimData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aim-data",
        abstract: "Inspect video datasets, list class folders, dump sampled clips, write a synthetic dataset, write tar shards.",
        subcommands: [Check.self, List.self, Clip.self, Synth.self, DecodeBench.self, Shard.self])
}

func fail(_ message: String) -> Never {
    Console.errorRaw("aim-data: \(message)\n")
    Foundation.exit(1)
}

/// An option's value out of range or unusable: a malformed command line, status 64 as in the
/// other tools (ArgumentParser's own usage errors).
func failUsage(_ message: String) -> Never {
    Console.errorRaw("aim-data: \(message)\n")
    Foundation.exit(64)
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open every listed video and report totals, frame counts and every bad entry (exit 0 even when some are bad; exit 1 when the annotation itself is unusable or lists no videos, or when shards named by their manifest do not match its SHA-256 checksums).")

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
        guard threads >= 1 else { failUsage("--threads must be at least 1, got \(threads)") }
        if let numClasses, numClasses < 1 { failUsage("--num-classes must be at least 1, got \(numClasses)") }
        let samples: [VideoSample]
        var labelMap: LabelMap?
        do {
            if let cfgPath = config {
                guard numClasses == nil else { failUsage("--num-classes is for --list; with --config give --set model.num_classes=N") }
                let cfg = try Config.load(path: cfgPath, overrides: overrides)
                guard let s = DataSplit(rawValue: split) else { failUsage("--split must be train, val or test") }
                // Throws for an annotation without videos and for labels outside model.num_classes.
                samples = try annotationSamples(config: cfg, split: s)
                labelMap = try LabelMap.fromConfig(cfg)
            } else if let list {
                guard let f = AnnotationFormat(rawValue: format) else {
                    failUsage("--format must be one of \(AnnotationFormat.allCases.map(\.rawValue).joined(separator: ", "))")
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
                failUsage("give --config C or --list L --root R")
            }
        } catch {
            fail("\(error)")
        }
        let report = checkVideos(samples, threads: threads)
        print(json ? report.json() : report.text())
        // Training takes a repeated line twice as often; one path under two labels is a labelling error.
        var labelsByPath: [String: Set<Int>] = [:], count: [String: Int] = [:]
        for s in samples { labelsByPath[s.path, default: []].insert(s.label); count[s.path, default: 0] += 1 }
        let repeated = count.filter { $0.value > 1 }, conflicting = labelsByPath.filter { $0.value.count > 1 }.keys.sorted()
        if !repeated.isEmpty && !json {
            print("repeated: \(repeated.count) path(s) listed more than once (\(repeated.values.reduce(0, +) - repeated.count) extra entries), e.g. \(repeated.keys.sorted().prefix(3).joined(separator: ", "))")
        }
        if !conflicting.isEmpty {
            Console.error("aim-data check: \(conflicting.count) path(s) listed with different labels, e.g. "
                          + conflicting.prefix(3).map { "\($0) (\(labelsByPath[$0]!.sorted().map(String.init).joined(separator: ", ")))" }.joined(separator: "; "))
        }
        if let labelMap, !json {
            let used = Set(samples.map(\.label)).count
            print("label map \(labelMap.path): \(labelMap.names.count) class names; the \(samples.count) entries use \(used) of them")
        }
        // Bad videos are skipped in training; none readable is a dataset that cannot train.
        if report.ok == 0 {
            Console.error("aim-data check: none of the \(samples.count) videos can be read (see above): is the root the folder the paths are relative to?")
            Foundation.exit(1)
        }
        // Shards named by their manifest: also every shard's and index's SHA-256.
        if let cfgPath = config, let cfg = try? Config.load(path: cfgPath, overrides: overrides), cfg.string("data.format") == "shards",
           let s = DataSplit(rawValue: split), let spec = try? annotationLocation(config: cfg, split: s).file, spec.hasSuffix(".json") {
            do {
                let bad = try ShardDataset.checksumMismatches(manifest: spec)
                if json { Console.error(bad.isEmpty ? "shard checksums: ok" : bad.joined(separator: "\n")) } else {
                    print(bad.isEmpty ? "shard checksums: all match \(spec)" : bad.map { "checksum mismatch: \($0)" }.joined(separator: "\n"))
                }
                if !bad.isEmpty { Foundation.exit(1) }
            } catch {
                fail("\(error)")
            }
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
        guard clipLen > 0, frameInterval > 0, numClips > 0 else { failUsage("--clip-len, --frame-interval and --num-clips must be positive") }
        // The uniform (SSv2) sampler takes one clip per video: more clips were silently one.
        if frameUniform && numClips > 1 {
            failUsage("--num-clips \(numClips) with --frame-uniform: frame-uniform sampling takes one clip per video; use --num-clips 1 or leave out --frame-uniform")
        }
        // The config keys' ranges (data.clip_len, data.frame_interval, data.num_clips, data.short_side):
        // past them the sampler's arithmetic overflows or the frames cannot be allocated.
        for (option, value, key) in [("--clip-len", clipLen, "data.clip_len"), ("--frame-interval", frameInterval, "data.frame_interval"),
                                     ("--num-clips", numClips, "data.num_clips")] {
            if let max = ConfigSchema.key(key)?.maximum, Double(value) > max { failUsage("\(option) must be at most \(Int(max)) (as \(key)), got \(value)") }
        }
        let maxSide = Int(ConfigSchema.key("data.short_side")?.maximum ?? 16384)
        guard size.isEmpty || (size.count == 2 && size.allSatisfy { $0 > 0 && $0 <= maxSide }) else {
            failUsage("--size takes two numbers H W from 1 to \(maxSide), got \(size.map(String.init).joined(separator: " "))")
        }
        let sampler = SampleFrames(clipLen: clipLen, frameInterval: frameInterval, numClips: numClips,
                                   testMode: testMode, frameUniform: frameUniform)
        do {
            let reader = try VideoReader(path: video)
            var rng = RandomGenerator(keys: seed)
            let idx = sampler.indices(totalFrames: reader.frameCount, rng: &rng)
            // Refused before decoding: the output is held in memory whole.
            let (outH, outW) = size.isEmpty ? (reader.height, reader.width) : (size[0], size[1])
            let bytes = Double(idx.count) * Double(outH) * Double(outW) * 3
            if bytes > Double(ProcessInfo.processInfo.physicalMemory) / 2 {
                fail(String(format: "%d frames of %dx%d would take %.1f GB, more than half of this machine's memory: fewer --num-clips / --clip-len or a smaller --size",
                            idx.count, outW, outH, bytes / 1e9))
            }
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

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the mmaction2 video list and label map of videos laid out one folder per class (ROOT/<class>/<video>), as mmaction2's build_file_list.py --level 2.",
        discussion: """
        bin/aim-data list my_videos/train --out my_videos/train_list.txt   # writes my_videos/classes.txt
        bin/aim-data list my_videos/val --out my_videos/val_list.txt       # reads it: the same labels
        Label i is the i-th class folder by name, or the i-th line of an existing label map.
        """)

    @Argument(help: "folder holding one folder of videos per class") var root: String
    @Option(help: "video list to write (lines `<class>/<video> <label>`, relative to ROOT)") var out: String
    @Option(help: "label map: read when it exists (a validation folder then gets the training labels), else written from the class folders (default: classes.txt beside --out)")
    var classes: String?

    func run() throws {
        let map = classes ?? ((out as NSString).deletingLastPathComponent as NSString).appendingPathComponent("classes.txt")
        if FileOutput.isFileNotFolder(root) { failUsage("\(root) is a file, not a folder of class folders") }
        // Checked before anything is written: a label map left by a failed run would be read by
        // the next one as the labels.
        let mapName = classes == nil ? "the label map \(map) (beside --out)" : "--classes \(map)"
        if let why = unwritableFile(out) { failUsage("--out \(out) \(why)") }
        if isFolder(map) { failUsage("\(mapName) is a directory, not a label map file (line i = name of label i)") }
        let existing = FileManager.default.fileExists(atPath: map)
        if !existing, let why = unwritableFile(map) { failUsage("\(mapName) \(why)") }
        do {
            let labelMap = existing ? try LabelMap.load(path: map) : nil
            let scan = try ClassFolders.scan(root: root, labelMap: labelMap)
            try FileOutput.write(scan.listText, to: out)
            // The map last, once the list is written.
            if !existing { try FileOutput.write(scan.classesText, to: map) }
            print("wrote \(out): \(scan.entries.count) videos in \(scan.classes.count - scan.classesWithoutVideos.count) classes; label map \(map) (\(existing ? "read" : "written"), \(scan.classes.count) classes)")
            if !scan.classesWithoutVideos.isEmpty {
                print("classes of the label map without videos here: \(scan.classesWithoutVideos.prefix(10).joined(separator: ", "))\(scan.classesWithoutVideos.count > 10 ? " … (\(scan.classesWithoutVideos.count) in all)" : "")")
            }
            if !scan.deeper.isEmpty {
                print("\(scan.deeper.count) file(s) deeper than ROOT/<class>/<video> not listed (as mmaction2's build_file_list.py --level 2), e.g. \(scan.deeper.prefix(3).joined(separator: ", "))")
            }
            if !scan.ignored.isEmpty {
                print("not listed (not a video by its extension, or outside a class folder): \(scan.ignored.count) file(s), e.g. \(scan.ignored.prefix(3).joined(separator: ", "))")
            }
            // One suggestion: both, pasted together, validated on the training videos.
            if existing {
                print("as validation data (the label map was read, so its labels match the training list's): --set data.val_root=\(root) --set data.val=\(out)")
            } else {
                print("as training data: --set data.root=\(root) --set data.train=\(out) --set data.classes=\(map) --set model.num_classes=\(scan.classes.count)")
                print("then list the validation videos with this label map: bin/aim-data list <val folder> --out <val list> --classes \(map)")
            }
        } catch {
            fail("\(error)")
        }
    }
}

func isFolder(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
}

/// Why a file cannot be written at `path` (nil when it can be tried): a folder is there, or the
/// folder to hold it is missing (the write's own error names only the system's reason).
func unwritableFile(_ path: String) -> String? {
    if isFolder(path) { return "is a directory: give the path of a file to write" }
    let parent = (path as NSString).deletingLastPathComponent
    if parent.isEmpty || isFolder(parent) { return nil }
    return FileManager.default.fileExists(atPath: parent) ? "cannot be written: \(parent) is a file, not a folder"
        : "cannot be written: its folder \(parent) does not exist"
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
        guard classes >= 2 && classes <= SynthDataset.classNames.count else { failUsage("--classes must be 2…\(SynthDataset.classNames.count)") }
        // Upper bounds keep one video in memory (frames × size² × 3 bytes ≤ 1 GB at the largest)
        // and the run finite; a synthetic set is for smoke tests and demos.
        guard size >= 16 && size % 2 == 0 && size <= 4096 else { failUsage("--size must be even, 16 to 4096, got \(size)") }
        guard (2...10_000).contains(frames) else { failUsage("--frames must be 2 to 10000, got \(frames)") }
        guard (1...100_000).contains(perClass) else { failUsage("--per-class must be 1 to 100000, got \(perClass)") }
        if let valPerClass, !(0...100_000).contains(valPerClass) { failUsage("--val-per-class must be 0 to 100000, got \(valPerClass)") }
        guard (0...100_000).contains(stillsPerClass) else { failUsage("--stills-per-class must be 0 to 100000, got \(stillsPerClass)") }
        if Double(frames) * Double(size * size * 3) > 1e9 { failUsage("--frames \(frames) at --size \(size) is over 1 GB a video: fewer frames or a smaller size") }
        if FileOutput.isFileNotFolder(out) { failUsage("\(out) is a file, not a folder") }
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
    @Option(help: "instead: time one epoch of the loader alone over this config's split (files or shards)") var config: String?
    @Option(name: .customLong("set"), help: "config override key=value (repeatable), with --config") var overrides: [String] = []
    @Option(help: "with --config: split train, val or test") var split: String = "train"
    @Option(help: "with --config: load the slice of this rank ...") var rank: Int = 0
    @Option(help: "... of this many ranks") var ranks: Int = 1
    @Option(help: "with --config: epochs to time (files opened are counted per epoch)") var epochs: Int = 1
    @Flag(help: "with --config: sync and drop the page cache, dentries and inodes before each epoch (after the split is opened; needs root: writes /proc/sys/vm/drop_caches)") var cold = false

    func run() throws {
        if let config { return try loaderEpochs(config) }
        guard (1...100_000).contains(clipsPerThread) else { failUsage("--clips-per-thread must be 1 to 100000, got \(clipsPerThread)") }
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

struct Shard: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a split's videos, bytes unchanged, into tar shards in the WebDataset layout (<key>.cls, <key>.json, <key>.<ext>) with an index per shard and DIR/<split>-manifest.json. Videos that do not open and decode are skipped and listed (exit 0, as `check`); exit 1 when the annotation is unusable, no video is usable or a write fails.")

    @Option(help: "experiment config (YAML)") var config: String
    @Option(name: .customLong("set"), help: "config override key=value (repeatable)") var overrides: [String] = []
    @Option(help: "split of the config: train, val or test") var split: String = "train"
    @Option(help: "output folder") var out: String
    @Option(name: .customLong("shard-size"), help: "largest shard (bytes; suffixes K, M, G, KiB, MiB, GiB, KB, MB, GB)") var shardSize: String = "1GiB"
    @Option(help: "source videos checked at once") var threads: Int = 2

    func run() throws {
        guard threads >= 1 else { failUsage("--threads must be at least 1, got \(threads)") }
        guard let size = parseByteSize(shardSize), (Int64(64 << 10)...Int64(1) << 40).contains(size) else {
            failUsage("--shard-size \(shardSize): give a size from 64KiB to 1TiB, e.g. 1GiB, 500MB, 1048576")
        }
        if FileOutput.isFileNotFolder(out) { failUsage("--out \(out) is a file, not a folder") }
        guard let s = DataSplit(rawValue: split) else { failUsage("--split must be train, val or test") }
        let samples: [VideoSample]
        do {
            let cfg = try Config.load(path: config, overrides: overrides)
            guard cfg.string("data.format") != "shards" else { fail("\(config): data.format is already shards") }
            samples = try annotationSamples(config: cfg, split: s)
        } catch {
            fail("\(error)")
        }
        let t0 = Date()
        var last = Date.distantPast
        // Rewritten in place on a terminal; into a log, a line every 10 s.
        let tty = isatty(STDERR_FILENO) != 0
        let manifest: ShardManifest
        do {
            manifest = try ShardWriter.write(samples: samples, split: split, to: out, shardSize: size, threads: threads) { p in
                let now = Date()
                guard now.timeIntervalSince(last) >= (tty ? 1 : 10) || p.done == p.total else { return }
                last = now
                let dt = now.timeIntervalSince(t0)
                let rate = Double(p.done) / max(dt, 1e-9)
                let eta = rate > 0 ? Double(p.total - p.done) / rate : 0
                let line = String(format: "shard %@: %d/%d videos, %d skipped, %d shard(s), %@, %.1f videos/s, ETA %@",
                                  split, p.done, p.total, p.skipped, p.shards, FileSpace.describe(p.bytes), rate, duration(eta))
                if tty { Console.errorRaw("\r" + line + "\u{1B}[K") } else { Console.error(line) }
            }
            if tty { Console.errorRaw("\n") }
        } catch let refusal as TarError where refusal.path == out {
            // --out already holds this split's shards: refused before writing, nothing removed.
            fail("\(refusal)")
        } catch {
            if tty { Console.errorRaw("\n") }
            // The writer removes only the files this attempt made (a split already there is refused above).
            fail("\(error) (the \(split) shard files this attempt had begun in \(out) were removed; nothing else there was touched)")
        }
        for k in manifest.skipped { Console.error("skipped: \(k.path): \(k.reason)") }
        if manifest.samples == 0 { fail("no video of \(config) split \(split) is usable: nothing written to \(out)") }
        let bytes = manifest.shards.reduce(Int64(0)) { $0 + $1.bytes }
        print("wrote \(manifest.samples) of \(samples.count) videos (\(manifest.skipped.count) skipped) into \(manifest.shards.count) shard(s), \(FileSpace.describe(bytes)), in \(duration(Date().timeIntervalSince(t0)))")
        print("manifest: \((out as NSString).appendingPathComponent(ShardManifest.fileName(split: split)))")
        if !manifest.pattern.isEmpty {
            print("train from them with: data.format: shards, data.\(split): \((out as NSString).appendingPathComponent(manifest.pattern))")
        }
    }
}

/// "1GiB" → 1073741824, "500MB" → 500000000, "64K" → 65536, "123" → 123; nil when malformed.
func parseByteSize(_ s: String) -> Int64? {
    let t = s.trimmingCharacters(in: .whitespaces)
    let digits = t.prefix(while: { $0.isNumber || $0 == "." })
    guard let v = Double(digits), v > 0 else { return nil }
    let units: [String: Double] = ["": 1, "B": 1, "K": 1024, "KIB": 1024, "M": 1_048_576, "MIB": 1_048_576, "G": 1_073_741_824, "GIB": 1_073_741_824,
                                   "T": 1_099_511_627_776, "TIB": 1_099_511_627_776, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12]
    guard let u = units[t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()] else { return nil }
    let bytes = v * u
    return bytes < 9e18 ? Int64(bytes) : nil
}

/// "1h02m", "3m05s", "12s".
func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

extension DecodeBench {
    /// One or more epochs of the config's loader (its pipeline, data.workers threads, this rank's
    /// slice): seconds, clips/s and the files the data layer opened in each.
    func loaderEpochs(_ path: String) throws {
        guard ranks >= 1, rank >= 0, rank < ranks, epochs >= 1 else { failUsage("need 0 <= --rank < --ranks and --epochs >= 1") }
        guard let s = DataSplit(rawValue: split) else { failUsage("--split must be train, val or test") }
        do {
            let cfg = try Config.load(path: path, overrides: overrides)
            let batch = cfg.int("train.batch_size")
            guard batch % ranks == 0 else { fail("train.batch_size \(batch) is not divisible by --ranks \(ranks)") }
            let opens0 = DataFileOpens.value
            let t0 = Date()
            let loader = try VideoLoader(config: cfg, split: s, rank: rank, ranks: ranks, batchSize: batch)
            print(String(format: "%@ (%@): %d videos, opened in %.2f s (%d files opened)", split, cfg.string("data.format"),
                         loader.samples.count, Date().timeIntervalSince(t0), DataFileOpens.value - opens0))
            for e in 0..<epochs {
                if cold {
                    sync()
                    // A plain write: FileOutput's temporary-file-and-rename cannot work in /proc.
                    let fd = open("/proc/sys/vm/drop_caches", O_WRONLY)
                    let ok = fd >= 0 && write(fd, "3\n", 2) == 2
                    let why = String(cString: strerror(errno))
                    if fd >= 0 { close(fd) }
                    if !ok { fail("--cold: cannot write /proc/sys/vm/drop_caches (\(why)); run as root or leave out --cold") }
                }
                let opens = DataFileOpens.value
                let t = Date()
                loader.start(at: LoaderPosition(epoch: e, step: 0))
                var clips = 0
                while let b = try loader.next() { clips += b.labels.count }
                let dt = Date().timeIntervalSince(t)
                print(String(format: "epoch %d, rank %d of %d: %d clips in %.2f s = %.1f clips/s, %d files opened, %d skip events",
                             e, rank, ranks, clips, dt, Double(clips) / dt, DataFileOpens.value - opens, loader.skipReport.events))
            }
            loader.stop()
        } catch {
            fail("\(error)")
        }
    }
}

// Library settings read at load time (OpenBLAS's kernels, idle-thread policy): may restart once.
ProcessEnvironment.prepare()
AimData.main()
