import AIMConfig
import AIMTensor
import Foundation

/// Which annotation of a config: `data.train`, `data.val` (validation during training) or
/// `data.test` (aim-eval; falls back to `data.val` as the official configs test on val).
public enum DataSplit: String, CaseIterable, Sendable {
    case train, val, test
}

public struct DataConfigError: Error, CustomStringConvertible {
    public let key: String
    public let message: String
    public var description: String { "config key \(key): \(message)" }
}

/// The annotation file and video root a split reads.
public func annotationLocation(config c: Config, split: DataSplit) throws -> (file: String, root: String) {
    let valRoot = c.string("data.val_root").isEmpty ? c.string("data.root") : c.string("data.val_root")
    switch split {
    case .train:
        guard !c.string("data.train").isEmpty else { throw DataConfigError(key: "data.train", message: "no training annotation file set") }
        return (c.string("data.train"), c.string("data.root"))
    case .val:
        guard !c.string("data.val").isEmpty else { throw DataConfigError(key: "data.val", message: "no validation annotation file set") }
        return (c.string("data.val"), valRoot)
    case .test:
        let f = c.string("data.test").isEmpty ? c.string("data.val") : c.string("data.test")
        guard !f.isEmpty else { throw DataConfigError(key: "data.test", message: "neither data.test nor data.val is set") }
        return (f, valRoot)
    }
}

/// The samples of a split, parsed in the format `data.format` names. Refused here, before any
/// training starts: an annotation that lists no videos, and a label the model cannot output
/// (outside 0..<`model.num_classes`), named by file and line.
/// With `data.format: shards` the split's key names tar shards (see `ShardDataset`); indexes
/// built for shards in read-only folders go to `indexCacheDir`.
public func annotationSamples(config c: Config, split: DataSplit, indexCacheDir: String? = nil,
                              log: (String) -> Void = { Console.error($0) }) throws -> [VideoSample] {
    let (file, root) = try annotationLocation(config: c, split: split)
    let samples: [VideoSample]
    if c.string("data.format") == "shards" {
        let (s, report) = try ShardDataset.open(spec: file, cacheDir: indexCacheDir)
        if report.indexesBuilt > 0 {
            let kept = report.indexesNotKept == 0 ? "kept for the next open"
                : "\(report.indexesNotKept) of them not kept: their folder is read-only and there is no index cache here (aim-train keeps them in <work dir>/shard-index)"
            log("data: built the index of \(report.indexesBuilt) of \(report.shards.count) shard(s) of \(file) from their tar headers (\(kept))")
        }
        for k in report.withoutVideo { log("data: skipping sample \(k): no video member") }
        samples = s
    } else {
        guard let format = AnnotationFormat(rawValue: c.string("data.format")) else {
            throw DataConfigError(key: "data.format", message: "unknown format \(c.string("data.format"))")
        }
        // Named by its key: a missing file, or the folder of videos given where its list belongs.
        var isDir: ObjCBool = false
        let key = annotationKey(config: c, split: split)
        if !FileManager.default.fileExists(atPath: file, isDirectory: &isDir) {
            throw DataConfigError(key: key, message: "\(file): no such file")
        }
        if isDir.boolValue {
            throw DataConfigError(key: key, message: "\(file) is a folder, not an annotation file (videos in one folder per class? bin/aim-data list \(file) --out LIST writes their list)")
        }
        let cl = c.string("data.class_list")
        samples = try loadAnnotations(format: format, file: file, root: root, classList: cl.isEmpty ? nil : cl,
                                      kineticsClasses: format == .kineticsCSV && cl.isEmpty ? try kineticsClassOrder(config: c, split: split, log: log) : nil)
    }
    guard !samples.isEmpty else {
        throw DataConfigError(key: annotationKey(config: c, split: split), message: "\(file) lists no videos")
    }
    try checkLabels(samples, file: file, numClasses: c.int("model.num_classes"))
    // A label map that cannot name the model's classes is found before a video is opened. (A
    // Kinetics/SSv2 class list already gave the labels; it may name more classes than are used.)
    if let classes = try LabelMap.fromConfig(c, orClassList: false) {
        try classes.check(numClasses: c.int("model.num_classes"))
        try classes.checkLabels(samples, file: file)
        try classes.checkNames(samples, file: file)
    }
    return samples
}

/// The index order of a Kinetics CSV's class names when `data.class_list` is empty: the label
/// map `data.classes` (mmaction2's label_map_k400 is the sorted names), else the training CSV's
/// names sorted, for every split. Why: each file's own sorted names would number a validation
/// CSV that lacks a class differently from training, every later label off by one, silently.
/// A training CSV that cannot be read (evaluating on another machine) leaves the file its own.
func kineticsClassOrder(config c: Config, split: DataSplit, log: (String) -> Void) throws -> [String]? {
    if let map = try LabelMap.fromConfig(c, orClassList: false) { return map.names }
    guard split != .train else { return nil }
    if let names = trainingKineticsNames(config: c) { return names }
    log("warning: the classes of \(c.string(split == .test && !c.string("data.test").isEmpty ? "data.test" : "data.val")) are numbered by its own names sorted, "
        + "as data.train \(c.string("data.train")) cannot be read: a class it lacks would shift the others; set data.classes to the label map")
    return nil
}

/// The training Kinetics CSV's class names, sorted (its labels' order); nil when unreadable.
/// Kept per file (path, size, modification time): a run asks several times (each split, the
/// label map, the checkpoint's names), and Kinetics-400's CSV takes seconds to parse.
func trainingKineticsNames(config c: Config) -> [String]? {
    guard let (file, root) = try? annotationLocation(config: c, split: .train),
          let attributes = try? FileManager.default.attributesOfItem(atPath: file) else { return nil }
    let key = "\(file)\t\(root)\t\((attributes[.size] as? Int) ?? -1)\t\((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
    if let known = KineticsNamesCache.shared.get(key) { return known }
    guard let data = FileManager.default.contents(atPath: file),
          let rows = try? parseKineticsCSV(data, file: file, root: root, classList: nil) else { return nil }
    let names = Array(Set(rows.compactMap(\.className))).sorted()
    KineticsNamesCache.shared.set(key, names)
    return names
}

final class KineticsNamesCache: @unchecked Sendable {
    static let shared = KineticsNamesCache()
    private let lock = NSLock()
    private var names: [String: [String]] = [:]
    func get(_ key: String) -> [String]? { lock.lock(); defer { lock.unlock() }; return names[key] }
    func set(_ key: String, _ value: [String]) { lock.lock(); names[key] = value; lock.unlock() }
}

/// A list whose paths are relative to another folder than the root the config gives (a wrong
/// `data.root`, a forgotten `data.val_root`) would be found missing video by video — for
/// validation only at the first evaluation, epochs into a run. Sixteen videos spread over the
/// list are looked up first: when none exists, the run stops now, naming the key to fix. Some
/// missing files are bad videos as any other (skipped and counted).
func checkSomeVideosExist(_ samples: [VideoSample], config c: Config, split: DataSplit, file: String, root: String) throws {
    let probes = Set((0..<min(16, samples.count)).map { $0 * samples.count / min(16, samples.count) }).sorted()
    guard !probes.contains(where: { FileManager.default.fileExists(atPath: samples[$0].path) }) else { return }
    let rootKey = split == .train || c.string("data.val_root").isEmpty ? "data.root" : "data.val_root"
    let hint = split != .train && c.string("data.val_root").isEmpty
        ? " (validation and test paths are relative to data.val_root, which is empty, so data.root is used)" : ""
    throw DataConfigError(key: rootKey, message: "none of the \(probes.count) videos looked up of the \(samples.count) that \(file) lists exists under \(rootKey) \"\(root)\"\(hint), e.g. \(samples[probes[0]].path): is \(rootKey) the folder its paths are relative to?")
}

/// The config key that named a split's annotation file (test falls back to `data.val`).
func annotationKey(config c: Config, split: DataSplit) -> String {
    split == .test && c.string("data.test").isEmpty ? "data.val" : "data.\(split.rawValue)"
}

extension ClipPipelineConfig {
    /// The official pipeline of a split (see `ClipPipelineConfig`): train with random crops;
    /// val = `val_num_clips` clips, `Resize(-1, short_side)` + CenterCrop; test = `test_num_clips`
    /// clips, `Resize(-1, test_short_side)` + `test_crop`.
    public init(config c: Config, split: DataSplit) throws {
        let mean = c.doubles("data.mean").map(Float.init), std = c.doubles("data.std").map(Float.init)
        let clipLen = c.int("data.clip_len"), interval = c.int("data.frame_interval")
        let uniform = c.bool("data.frame_uniform")
        switch split {
        case .train:
            self.init(sampler: SampleFrames(clipLen: clipLen, frameInterval: interval, numClips: c.int("data.num_clips"),
                                            testMode: false, frameUniform: uniform),
                      shortSide: c.int("data.short_side"), cropSize: c.int("data.crop_size"),
                      flipRatio: c.double("data.flip_ratio"),
                      colorJitter: c.bool("data.color_jitter") ? PCALighting() : nil,
                      randAugment: c.bool("data.rand_augment")
                        ? RandAugment(n: c.int("data.rand_augment_n"), m: c.int("data.rand_augment_m")) : nil,
                      randomErasing: c.double("data.random_erasing"), mean: mean, std: std)
        case .val:
            self.init(sampler: SampleFrames(clipLen: clipLen, frameInterval: interval, numClips: c.int("data.val_num_clips"),
                                            testMode: true, frameUniform: uniform),
                      shortSide: c.int("data.short_side"), cropSize: c.int("data.crop_size"), flipRatio: 0,
                      testCrop: .center, mean: mean, std: std)
        case .test:
            self.init(sampler: SampleFrames(clipLen: clipLen, frameInterval: interval, numClips: c.int("data.test_num_clips"),
                                            testMode: true, frameUniform: uniform),
                      shortSide: c.int("data.test_short_side"), cropSize: c.int("data.crop_size"), flipRatio: 0,
                      testCrop: c.string("data.test_crop") == "three" ? .three : .center, mean: mean, std: std)
        }
    }
}

extension VideoLoader {
    /// A loader for a split as the config describes it: global batch `train.batch_size` for
    /// training (shuffled), `batchSize` (default the same) for val/test (dataset order),
    /// seed `train.seed`, `data.workers` threads, `data.prefetch` batches ahead.
    public convenience init(config c: Config, split: DataSplit, rank: Int = 0, ranks: Int = 1,
                            batchSize: Int? = nil, indexCacheDir: String? = nil) throws {
        // Only rank 0 says what opening the shards found; every rank finds the same.
        let samples = try annotationSamples(config: c, split: split, indexCacheDir: indexCacheDir,
                                            log: rank == 0 ? { Console.error($0) } : { _ in })
        guard !samples.isEmpty else {
            throw DataConfigError(key: "data.\(split.rawValue)", message: "the annotation lists no videos")
        }
        if c.string("data.format") != "shards" {
            let (file, root) = try annotationLocation(config: c, split: split)
            try checkSomeVideosExist(samples, config: c, split: split, file: file, root: root)
        }
        self.init(samples: samples, pipeline: try ClipPipelineConfig(config: c, split: split),
                  globalBatch: batchSize ?? c.int("train.batch_size"), seed: UInt64(c.int("train.seed")),
                  shuffle: split == .train, rank: rank, ranks: ranks,
                  workers: c.int("data.workers"), prefetch: max(1, c.int("data.prefetch")))
    }
}
