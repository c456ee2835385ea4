import AIMConfig
import Foundation

/// Whether a checkpoint may be resumed under the current config. Keys that change what the
/// checkpoint's numbers mean (the model's shape and kind, its classes, the tunable set, the global
/// batch, the training videos, the frozen weights model.pretrained gives back) must match; safe
/// changes (steps, intervals, rank count, threads, paths to the same data, ...) are allowed and
/// listed so the log says what differs.
struct ResumeCheck {
    /// Keys whose change makes the checkpoint another experiment.
    static let meaningKeys: Set<String> = [
        "model.backbone", "model.input_resolution", "model.patch_size", "model.width", "model.layers", "model.heads",
        "model.mlp_ratio", "model.num_frames", "model.num_classes", "model.adapters", "model.num_tadapter",
        "model.adapter_scale", "model.adapter_mlp_ratio", "model.adapter_layers", "model.tune", "model.divided_space_time",
        "train.batch_size",
    ]

    /// Human-readable safe changes ("train.max_steps: 100 → 200").
    let allowedChanges: [String]

    init(saved metadata: [String: String], current: Config, trainDataFingerprint: String, frozenFingerprint: String = "",
         worldSize: Int, path: String) throws {
        guard let text = metadata["config"], let saved = try? Config(dump: text) else {
            throw TrainingError.checkpoint(path: path, reason: "its recorded config cannot be read, so it cannot be checked against \(current.source)")
        }
        var refused: [String] = [], allowed: [String] = []
        for key in current.values.keys.sorted() {
            let old = saved.value(key), new = current.value(key)
            guard old != new else { continue }
            let change = "\(key): \(old) → \(new)"
            if Self.meaningKeys.contains(key) { refused.append(change) } else { allowed.append(change) }
        }
        // The data: same file names and labels in the same order, wherever they now live.
        if let before = metadata["train_data"], !before.isEmpty, !trainDataFingerprint.isEmpty, before != trainDataFingerprint {
            refused.append("the training videos or labels (\(current.string("data.train"))): \(before) → \(trainDataFingerprint)")
        }
        // The frozen weights: the checkpoint does not hold them, model.pretrained gives them back.
        if let before = metadata["frozen_weights"], !before.isEmpty, !frozenFingerprint.isEmpty, before != frozenFingerprint {
            let source = current.string("model.pretrained").isEmpty ? "drawn from train.seed" : "of model.pretrained \(current.string("model.pretrained"))"
            refused.append("the frozen weights (\(source)): \(before) → \(frozenFingerprint)")
        }
        if let ranks = metadata["world_size"], ranks != String(worldSize) {
            allowed.append("ranks: \(ranks) → \(worldSize) (the global batch is kept)")
        }
        guard refused.isEmpty else {
            throw TrainingError.checkpoint(path: path, reason: "was written by a run whose config differs in what the checkpoint means: "
                + refused.joined(separator: "; ") + ". Resume with those values, or start in another --work-dir")
        }
        allowedChanges = allowed.map { "changed since the checkpoint, allowed: \($0)" }
    }
}
