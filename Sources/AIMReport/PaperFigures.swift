/// The AIM paper's own figures (Yang et al., "AIM: Adapting Image Models for Efficient Video
/// Action Recognition", ICLR 2023), copied here as data so the report can print them beside what
/// it measures. Each row names the paper table it comes from.
public struct PaperRow: Sendable, Equatable {
    public let table: String          // which paper table
    public let dataset: String
    public let model: String          // as the paper names it
    public var params: Double? = nil      // M
    public var tunable: Double? = nil     // M
    public var gflops: Double? = nil      // per test (all views)
    public var views: String? = nil
    public var memoryGB: Double? = nil    // training memory per GPU, batch 8 per GPU (8 V100s)
    public var timeHours: Double? = nil   // wall-clock training time on 8 GPUs
    public var top1: Double? = nil
}

public enum PaperFigures {
    static let k400 = "Table: Kinetics-400 comparison"
    static let eff = "Table: different pre-trained models (efficiency, K400)"
    static let ssv2 = "Table: ablation on Something-Something-v2"
    static let position = "Table: position of adapters (K400)"

    /// Kinetics-400 main table (ViT-B/16 and ViT-L/14, CLIP).
    public static let kinetics: [PaperRow] = [
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-B/16 CLIP 8f", params: 97, tunable: 11, gflops: 606, views: "8×3×1", top1: 83.9),
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-B/16 CLIP 16f", params: 97, tunable: 11, gflops: 1214, views: "16×3×1", top1: 84.5),
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-B/16 CLIP 32f", params: 97, tunable: 11, gflops: 2428, views: "32×3×1", top1: 84.7),
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-L/14 CLIP 8f", params: 341, tunable: 38, gflops: 2802, views: "8×3×1", top1: 86.8),
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-L/14 CLIP 16f", params: 341, tunable: 38, gflops: 5604, views: "16×3×1", top1: 87.3),
        PaperRow(table: k400, dataset: "K400", model: "AIM ViT-L/14 CLIP 32f", params: 341, tunable: 38, gflops: 11208, views: "32×3×1", top1: 87.5),
    ]

    /// "Different pre-trained models": tunable parameters, memory, training time, accuracy (K400, 8 frames).
    public static let efficiency: [PaperRow] = [
        PaperRow(table: eff, dataset: "K400", model: "TimeSformer ViT-B IN-21K", tunable: 121, memoryGB: 10, timeHours: 20, top1: 78.5),
        PaperRow(table: eff, dataset: "K400", model: "AIM ViT-B IN-21K", tunable: 11, memoryGB: 7, timeHours: 15, top1: 78.8),
        PaperRow(table: eff, dataset: "K400", model: "TimeSformer ViT-B CLIP", tunable: 121, memoryGB: 10, timeHours: 20, top1: 82.0),
        PaperRow(table: eff, dataset: "K400", model: "AIM ViT-B CLIP", tunable: 11, memoryGB: 7, timeHours: 15, top1: 83.9),
        PaperRow(table: eff, dataset: "K400", model: "VideoSwin-B IN-21K", tunable: 88, memoryGB: 18, timeHours: 64, top1: 82.7),
        PaperRow(table: eff, dataset: "K400", model: "AIM Swin-B IN-21K", tunable: 9.2, memoryGB: 9, timeHours: 37, top1: 82.1),
    ]

    /// SSv2 ablation (ViT-B, IN-21K unless noted; 8×1×3 views).
    public static let ablation: [PaperRow] = [
        PaperRow(table: ssv2, dataset: "SSv2", model: "Frozen space-only", params: 86, tunable: 0.1, top1: 15.1),
        PaperRow(table: ssv2, dataset: "SSv2", model: "Finetuned space-only", params: 86, tunable: 86, top1: 36.2),
        PaperRow(table: ssv2, dataset: "SSv2", model: "Finetuned space-time (TimeSformer)", params: 121, tunable: 121, top1: 59.5),
        PaperRow(table: ssv2, dataset: "SSv2", model: "Frozen + spatial adaptation", params: 89, tunable: 3.7, top1: 36.7),
        PaperRow(table: ssv2, dataset: "SSv2", model: "+ temporal adaptation", params: 97, tunable: 10.8, top1: 61.2),
        PaperRow(table: ssv2, dataset: "SSv2", model: "+ joint adaptation (AIM)", params: 100, tunable: 14.3, top1: 62.0),
        PaperRow(table: ssv2, dataset: "SSv2", model: "AIM, CLIP pretrain", params: 100, tunable: 14.3, top1: 66.4),
    ]

    /// Position of adapters (K400, ViT-B/16 CLIP).
    public static let positions: [PaperRow] = [
        PaperRow(table: position, dataset: "K400", model: "AIM bottom 6 layers", tunable: 5.6, top1: 80.7),
        PaperRow(table: position, dataset: "K400", model: "AIM top 6 layers", tunable: 5.6, top1: 83.3),
        PaperRow(table: position, dataset: "K400", model: "AIM every second layer", tunable: 5.6, top1: 83.2),
    ]

    public static var all: [PaperRow] { kinetics + efficiency + ablation + positions }

    static func row(_ rows: [PaperRow], _ model: String) -> PaperRow? { rows.first { $0.model == model } }

    /// The paper rows that describe the same model as a measured configuration (most specific
    /// first), or [] when the paper has no such model. Sizes must be the paper's (ViT-B/16 224²
    /// or ViT-L/14 224²); the dataset comes from the class count.
    public static func matching(_ m: EfficiencyMeasurement) -> [PaperRow] {
        if m.architecture == "swinAIM" || m.architecture == "videoSwin" { return matchingSwin(m) }
        let vitB = m.width == 768 && m.layers == 12 && m.patchSize == 16 && m.inputResolution == 224
        let vitL = m.width == 1024 && m.layers == 24 && m.patchSize == 14 && m.inputResolution == 224
        guard vitB || vitL else { return [] }
        let allAdapters = Set(m.adapters) == ["temporal", "spatial", "joint"]
        let k400 = m.numClasses == 400, ssv2 = m.numClasses == 174
        let frames = [8: 0, 16: 1, 32: 2][m.numFrames]
        switch (m.architecture, m.tune) {
        case ("clipAIM", "adapters") where allAdapters && m.adapterLayers == "all":
            if k400, let f = frames {
                return [kinetics[(vitL ? 3 : 0) + f]] + (vitB && f == 0 ? [row(efficiency, "AIM ViT-B CLIP")!] : [])
            }
            if ssv2 && vitB { return [row(ablation, "AIM, CLIP pretrain")!] }
        case ("clipAIM", "adapters") where allAdapters && k400 && vitB && m.numFrames == 8:
            let name = ["bottom6": "AIM bottom 6 layers", "top6": "AIM top 6 layers", "skip": "AIM every second layer"][m.adapterLayers]
            return name.flatMap { row(positions, $0) }.map { [$0] } ?? []
        case ("imagenetAIM", "adapters") where allAdapters && vitB && m.adapterLayers == "all":
            if k400 && m.numFrames == 8 { return [row(efficiency, "AIM ViT-B IN-21K")!] }
            if ssv2 { return [row(ablation, "+ joint adaptation (AIM)")!] }
        case ("imagenetAIM", "adapters") where vitB && m.adapterLayers == "all" && ssv2:
            if m.adapters == ["spatial"] { return [row(ablation, "Frozen + spatial adaptation")!] }
            if Set(m.adapters) == ["spatial", "temporal"] { return [row(ablation, "+ temporal adaptation")!] }
        case ("clipTimeSformer", "all") where vitB && k400 && m.numFrames == 8:
            return [row(efficiency, "TimeSformer ViT-B CLIP")!]
        case ("imagenetTimeSformer", "all") where vitB:
            if k400 && m.numFrames == 8 { return [row(efficiency, "TimeSformer ViT-B IN-21K")!] }
            if ssv2 { return [row(ablation, "Finetuned space-time (TimeSformer)")!] }
        case (_, "all") where m.adapters.isEmpty && vitB && (m.architecture == "clipAIM" || m.architecture == "imagenetAIM"):
            // The paper reports space-only baselines only in its SSv2 ablation (IN-21K).
            return [row(ablation, "Finetuned space-only")!]
        case (_, "adapters") where m.adapters.isEmpty && vitB && (m.architecture == "clipAIM" || m.architecture == "imagenetAIM"):
            return [row(ablation, "Frozen space-only")!]
        default: break
        }
        return []
    }

    /// The Swin pair of the "different pre-trained models" table: Swin-B (embed 128, 24 blocks, patch 4)
    /// at 224², 32 frames, K400 — AIM with the official tunable filter, VideoSwin-B fully tuned.
    /// (For Swin configs the measurement's width / layers / patchSize hold embed_dim / Σ depths / patch h.)
    static func matchingSwin(_ m: EfficiencyMeasurement) -> [PaperRow] {
        let swinB = m.width == 128 && m.layers == 24 && m.patchSize == 4 && m.inputResolution == 224
        guard swinB && m.numClasses == 400 && m.numFrames == 32 else { return [] }
        if m.architecture == "swinAIM" && m.tune == "adapters" { return [row(efficiency, "AIM Swin-B IN-21K")!] }
        if m.architecture == "videoSwin" && m.tune == "all" { return [row(efficiency, "VideoSwin-B IN-21K")!] }
        return []
    }

    /// The first non-nil value of a field over the matching rows, with the row it came from.
    public static func figure(_ rows: [PaperRow], _ field: KeyPath<PaperRow, Double?>) -> (Double, PaperRow)? {
        for r in rows { if let v = r[keyPath: field] { return (v, r) } }
        return nil
    }
}
