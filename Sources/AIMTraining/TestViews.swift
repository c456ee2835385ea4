import AIMConfig
import AIMData
import Foundation

/// `--views <clips>x<crops>` of aim-eval and aim-predict: sets the test sampler's temporal clips
/// and spatial crops (1 = CenterCrop, 3 = ThreeCrop) in the config.
public func applyTestViews(_ spec: String, to cfg: inout Config) throws {
    guard var parts = testViews(spec) else { throw TrainingError.config(testViewsProblem(spec)) }
    // The three-number form the result lines print (frames × clips × crops): the frames are the model's.
    if parts.count == 3 {
        guard parts[0] == cfg.int("model.num_frames") else {
            throw TrainingError.config("--views \(spec): the first of three numbers is the frames per clip, model.num_frames \(cfg.int("model.num_frames")) here; give <clips>x<crops>")
        }
        parts.removeFirst()
    }
    // The uniform (SSv2) sampler takes one clip per video and ignores num_clips, as the
    // official one does: more clips would silently be one.
    if parts[0] > 1 && cfg.bool("data.frame_uniform") {
        throw TrainingError.config("--views \(spec): data.frame_uniform samples one clip per video; use 1x\(parts[1]) or set data.frame_uniform=false")
    }
    try cfg.set("data.test_num_clips", .int(parts[0]))
    try cfg.set("data.test_crop", .string(parts[1] == 3 ? "three" : "center"))
}

/// The config of aim-eval and aim-predict: loaded with its overrides, relations checked, the
/// `--views` applied, and its label map (if any) checked against the model's classes — all
/// before any video is opened.
public func loadTestConfig(path: String, overrides: [String], views: String?) throws -> (config: Config, classes: LabelMap?) {
    var cfg = try Config.load(path: path, overrides: overrides)
    try cfg.checkRelations()
    if let views { try applyTestViews(views, to: &cfg) }
    let classes = try LabelMap.fromConfig(cfg)
    try classes?.check(numClasses: cfg.int("model.num_classes"))
    return (cfg, classes)
}

/// `--views` as [clips, crops], or [frames, clips, crops] as the result lines print them; nil
/// when malformed (the tools refuse it before anything runs, status 64, as other malformed options).
public func testViews(_ spec: String) -> [Int]? {
    let fields = spec.lowercased().replacingOccurrences(of: "×", with: "x").split(separator: "x", omittingEmptySubsequences: false)
    let parts = fields.compactMap { Int($0) }
    guard parts.count == fields.count, parts.count == 2 || (parts.count == 3 && parts[0] >= 1) else { return nil }
    let clips = parts[parts.count - 2], crops = parts[parts.count - 1]
    return (1...1000).contains(clips) && (crops == 1 || crops == 3) ? parts : nil
}

public func testViewsProblem(_ spec: String) -> String {
    "--views \(spec): expected <clips>x<crops> with 1 to 1000 clips and crops 1 or 3, e.g. 3x1 (or <frames>x<clips>x<crops>, as results print them)"
}
