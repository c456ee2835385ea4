import XCTest
import AIMModel
import AIMTensor

/// The parity fixtures run without randomness; these check the backward with drop-path and head
/// dropout active (masks keyed by the pass context, so the same context gives the same masks)
/// against central finite differences of the loss, for every architecture.
final class TrainingModeGradientTests: XCTestCase {
    func check(_ edit: (inout ModelConfig) -> Void, file: StaticString = #filePath, line: UInt = #line) throws {
        Threads.set(1)
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        c.dropPathRate = 0.6; c.headDropout = 0.3
        edit(&c)
        // Non-zero adapters and temporal embedding, so every path carries gradient.
        let B = 2
        let (model, video) = try perturbedModelAndClips(c, batch: B)
        let labels = [0, 2]
        let ctx = PassContext(batch: B, training: true, seed: 5, step: 11, sampleKeys: [7, 8])
        func loss() throws -> Double {
            let logits = try model.forward(video: video.data, context: ctx)
            return Double(labels.withUnsafeBufferPointer { crossEntropyForward(logits: logits.data, labels: $0.baseAddress!, batch: B, classes: c.numClasses) })
        }
        let logits = try model.forward(video: video.data, context: ctx)
        let d = Tensor([B, c.numClasses])
        labels.withUnsafeBufferPointer { crossEntropyBackward(dLogits: d.data, logits: logits.data, labels: $0.baseAddress!, batch: B, classes: c.numClasses) }
        model.store.zeroGrads()
        try model.backward(dLogits: d.data)
        var checked = 0
        for p in model.store.tunableParameters {
            // A few coordinates per tensor: the largest-gradient one and two fixed ones.
            let grad = p.grad!
            var idx = [0, p.count / 2]
            if let m = (0..<p.count).max(by: { abs(grad[$0]) < abs(grad[$1]) }) { idx.append(m) }
            for i in idx {
                let old = p.data[i], h: Float = 1e-2
                p.data[i] = old + h; let lp = try loss()
                p.data[i] = old - h; let lm = try loss()
                p.data[i] = old
                let numeric = (lp - lm) / Double(2 * h), analytic = Double(grad[i])
                XCTAssertEqual(analytic, numeric, accuracy: 2e-3 + 2e-2 * abs(numeric), "\(p.name)[\(i)]", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 10, file: file, line: line)
    }

    func testCLIPAIM() throws { try check { _ in } }
    func testCLIPAIMTwoTemporalAdapters() throws { try check { $0.numTAdapter = 2; $0.adapterScale = 1 } }
    func testImageNetAIM() throws { try check { $0.backbone = .imagenet } }
    /// Block 0 frozen and no temporal_embedding: backward stops above block 0, whose activations
    /// are not kept.
    func testFrozenPrefixIsNotKept() throws { try check { $0.layers = 7; $0.adapterLayers = .top6; $0.adapters = [.spatial, .joint] } }
    func testCLIPTimeSformer() throws { try check { $0.backbone = .timesformer; $0.adapters = []; $0.tune = .all } }
    func testImageNetTimeSformer() throws { try check { $0.backbone = .imagenet; $0.dividedSpaceTime = true; $0.adapters = []; $0.tune = .all } }

    /// Masks depend on (seed, step, sample key), not on the batch a sample sits in.
    func testMasksFollowTheSampleNotTheBatch() throws {
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 2; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        c.backbone = .imagenet; c.dropPathRate = 0.6; c.headDropout = 0.3
        let model = try Recognizer(config: c, seed: 3)
        var g = RandomGenerator(seed: 1)
        let per = 3 * 3 * 16 * 16
        let video = Tensor(shape: [2, 3, 3, 16, 16], values: (0..<(2 * per)).map { _ in Float(g.normal()) })
        let both = try model.forward(video: video.data, context: PassContext(batch: 2, training: true, seed: 1, step: 4, sampleKeys: [10, 11])).array
        let second = try model.forward(video: video.data + per, context: PassContext(batch: 1, training: true, seed: 1, step: 4, sampleKeys: [11])).array
        for k in 0..<3 { XCTAssertEqual(both[3 + k], second[k], accuracy: 1e-5) }
        let other = try model.forward(video: video.data + per, context: PassContext(batch: 1, training: true, seed: 1, step: 5, sampleKeys: [11])).array
        XCTAssertNotEqual(other, second, "another step draws other masks")
    }

    /// The CLIP blocks run sequence-first in the official code, where timm's DropPath draws one
    /// decision per token (or frame) shared by the 8 clips of a GPU's forward: clips 0–7 of the
    /// global batch share masks, clip 8 draws its own, and splitting the batch changes nothing.
    func testSequenceFirstMasksAreSharedByTheClipsOfOneOfficialForward() throws {
        for backbone in [ModelConfig.Backbone.clip, .timesformer] {
            var c = ModelConfig()
            c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 3; c.heads = 2; c.numFrames = 3; c.numClasses = 3
            c.backbone = backbone; c.dropPathRate = 0.6; c.headDropout = 0
            if backbone == .timesformer { c.adapters = []; c.tune = .all }
            let (model, video) = try perturbedModelAndClips(c, batch: 2)
            let per = video.count / 2
            let twice = Tensor(shape: video.shape, values: Array(video.array[0..<per]) + Array(video.array[0..<per]))
            func logits(_ v: UnsafePointer<Float>, _ keys: [UInt64]) throws -> [Float] {
                try model.forward(video: v, context: PassContext(batch: keys.count, training: true, seed: 2, step: 6, sampleKeys: keys)).array
            }
            let same = try logits(twice.data, [3, 4])
            XCTAssertEqual(Array(same[0..<3]), Array(same[3..<6]), "\(backbone): one clip twice in one group of 8")
            let apart = try logits(twice.data, [7, 8])
            XCTAssertNotEqual(Array(apart[0..<3]), Array(apart[3..<6]), "\(backbone): clips 7 and 8 are in two forwards")
            let whole = try logits(video.data, [0, 1])
            let split = try logits(video.data, [0]) + logits(video.data + per, [1])
            for k in 0..<6 { XCTAssertEqual(whole[k], split[k], accuracy: 1e-5, "\(backbone): a micro-batch split keeps the masks") }
        }
    }
}
