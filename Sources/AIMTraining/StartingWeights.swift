import AIMConfig
import AIMData
import AIMModel
import AIMTensor
import Foundation

extension Trainer {
    /// `load_from`: the tunable weights a new run starts from (a resume then replaces them). Every
    /// rank reads the file, as it reads model.pretrained; the ranks' initial weights are compared next.
    static func applyLoadFrom(config: Config, to model: Recognizer, logs: Bool) throws {
        let path = config.string("load_from")
        guard !path.isEmpty else { return }
        // An aim-swift checkpoint holds no frozen weights, only the fingerprint of those it was trained on.
        let header = try SafetensorsFile(path: path)
        try Launch.checkFrozenWeights(of: model, against: path, metadata: header.metadata, pretrained: config.string("model.pretrained"),
                                      seed: config.int("train.seed"))
        // A damaged checkpoint of ours is refused here as --resume and aim-eval refuse it.
        if header.metadata["format"] == CheckpointStore.format { try CheckpointStore.verifyChecksum(header, model: model) }
        let report = try model.loadFrom(path: path)
        // A head trained for the same classes in another label-map order is reordered to this one
        // (a label map sorted by aim-data list against the one a model was trained with).
        var headNote = ""
        if report.loaded.contains("cls_head.fc_cls.weight"), let trained = header.metadata["classes"].flatMap(classNames(json:)) {
            if let wanted = try LabelMap.fromConfig(config).map({ Array($0.names.prefix(model.config.numClasses)) }) {
                if trained != wanted { headNote = headChange(model: model, trained: trained, wanted: wanted) }
            } else {
                // Without a label map the new run's labels are bare numbers: the head can only be taken as it is.
                headNote = "; warning: the file's head was trained for named classes (\(firstThree(trained))) and data.classes is empty, "
                    + "so its rows are taken in the file's order: set data.classes to the label map of your lists to match them by name"
            }
        }
        guard logs else { return }
        var parts = ["\(report.loaded.count) tunable tensors loaded"]
        if !report.misshapen.isEmpty { parts.append("\(report.misshapen.count) of another shape left as initialised (\(report.misshapen.prefix(3).joined(separator: "; ")))") }
        if !report.missing.isEmpty { parts.append("\(report.missing.count) not in the file left as initialised (\(firstThree(report.missing)))") }
        if report.frozenMatched > 0 { parts.append("\(report.frozenMatched) frozen tensors in the file equal to model.pretrained's") }
        if !report.unused.isEmpty { parts.append("\(report.unused.count) of the file not in this model, not read (\(firstThree(report.unused)))") }
        Console.errorRaw("load_from \(path): " + parts.joined(separator: "; ") + headNote + "\n")
    }

    /// The head trained for `trained` (a file's classes) made to serve `wanted` (data.classes'):
    /// reordered when they are the same names, else left as it is with a warning naming the class
    /// one side lacks (or the first place the lists differ).
    static func headChange(model: Recognizer, trained: [String], wanted: [String]) -> String {
        if model.reorderHead(trained: trained, wanted: wanted) { return "; the head's rows reordered from the file's class order to data.classes'" }
        return "; warning: the file's head was trained for other classes than data.classes names (\(classDifference(trained: trained, wanted: wanted))), loaded as it is"
    }

    /// The class one list lacks, or the first place two lists of class names differ.
    static func classDifference(trained: [String], wanted: [String]) -> String {
        let i = (0..<min(trained.count, wanted.count)).first { trained[$0] != wanted[$0] } ?? min(trained.count, wanted.count)
        return trained.first { !wanted.contains($0) }.map { "`\($0)` there, not here" }
            ?? wanted.first { !trained.contains($0) }.map { "`\($0)` here, not there" }
            ?? "class \(i): `\(i < trained.count ? trained[i] : "none")` there, `\(i < wanted.count ? wanted[i] : "none")` here"
    }

    /// The first three names, then "…" when there are more.
    static func firstThree(_ names: [String]) -> String { names.prefix(3).joined(separator: ", ") + (names.count > 3 ? " …" : "") }

    /// The class names a checkpoint records (a JSON array), nil when unreadable.
    static func classNames(json: String) -> [String]? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String]
    }

    /// What a checkpoint records of the classes its head was trained for: the label map's names
    /// for labels 0..<num_classes as a JSON array, "" without a label map.
    static func classNamesMetadata(config: Config, numClasses: Int) -> String {
        guard let map = try? LabelMap.fromConfig(config),
              let data = try? JSONSerialization.data(withJSONObject: Array(map.names.prefix(numClasses))) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
