import AIMConfig
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
        let report = try model.loadFrom(path: path)
        guard logs else { return }
        var parts = ["\(report.loaded.count) tunable tensors loaded"]
        if !report.misshapen.isEmpty { parts.append("\(report.misshapen.count) of another shape left as initialised (\(report.misshapen.prefix(3).joined(separator: "; ")))") }
        if !report.missing.isEmpty { parts.append("\(report.missing.count) not in the file left as initialised (\(report.missing.prefix(3).joined(separator: ", "))\(report.missing.count > 3 ? " …" : ""))") }
        if report.frozenMatched > 0 { parts.append("\(report.frozenMatched) frozen tensors in the file equal to model.pretrained's") }
        Console.errorRaw("load_from \(path): " + parts.joined(separator: "; ") + "\n")
    }
}
