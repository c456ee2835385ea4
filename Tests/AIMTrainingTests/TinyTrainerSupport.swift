import AIMConfig
import AIMTraining
import Foundation
import XCTest

/// In-process Trainer tests on QuadrantBatches: a tiny AIM (adapters on a frozen ViT drawn from
/// train.seed; 16², 2 frames, 4 classes), 8 clips a step, one epoch of 4 steps; `extra` overrides.
func tinyAIMConfig(_ name: String, _ extra: [String]) throws -> Config {
    var config = Config(name: name)
    for s in ["model.input_resolution=16", "model.patch_size=8", "model.width=32", "model.layers=1", "model.heads=4",
              "model.num_frames=2", "model.num_classes=4", "model.drop_path_rate=0", "model.head_dropout=0",
              "train.batch_size=8", "train.micro_batch=8", "train.epochs=1", "train.warmup_epochs=0", "train.lr=3e-3",
              "train.log_interval=1000"] + extra {
        try config.apply(overrides: [s])
    }
    return config
}

/// QuadrantBatches' clips as an evaluation set: dataset indices, and `views` clips per video.
final class IndexedViews: BatchSource {
    let videos: Int, views: Int
    let stepsPerEpoch = 2
    init(videos: Int, views: Int) { self.videos = videos; self.views = views }
    func batch(epoch: Int, step: Int) -> LocalBatch {
        let clips = QuadrantBatches(localBatch: videos * views, frames: 2, size: 16).batch(epoch: 7, step: step)
        return LocalBatch(video: clips.video, labels: (0..<videos).map { clips.labels[$0 * views] }, viewsPerSample: views,
                          isPadding: Array(repeating: false, count: videos), indices: (0..<videos).map { step * videos + $0 })
    }
    var skipped: [String: String] { [:] }
    var skipEvents: Int { 0 }
}

extension XCTestCase {
    /// A temporary folder for this test, empty at the start and removed at the end.
    func freshScratch(_ name: String) -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: d)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }
}
