import XCTest
import AIMModel
import AIMTensor

/// Activations that no backward reads are not kept: frozen blocks below the first tunable one,
/// and everything in a forward without backward (evaluation).
final class KeptActivationTests: XCTestCase {
    func kept(_ edit: (inout ModelConfig) -> Void, save: Bool = true) throws -> Int {
        Threads.set(1)
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 16; c.layers = 12; c.heads = 2; c.numFrames = 3; c.numClasses = 3
        edit(&c)
        let model = try Recognizer(config: c, seed: 1)
        let video = Tensor([2, 3, 3, 16, 16])
        _ = try model.forward(video: video.data, context: PassContext(batch: 2, training: false, saveForBackward: save))
        return model.keptBytes
    }

    func testOnlyWhatBackwardReadsIsKept() throws {
        // Without temporal adaptation there is no temporal_embedding, so backward can stop at block 6.
        let all = try kept { $0.adapters = [.spatial, .joint] }
        let top6 = try kept { $0.adapters = [.spatial, .joint]; $0.adapterLayers = .top6 }
        let frozen = try kept { $0.adapters = [] }
        let evaluation = try kept({ _ in }, save: false)
        XCTAssertLessThan(top6, all * 6 / 10, "blocks 0–5 of top6 are frozen: nothing of theirs is kept")
        XCTAssertGreaterThan(top6, all * 4 / 10)
        XCTAssertLessThan(frozen, all / 10, "frozen space-only backpropagates through ln_post and the head only")
        XCTAssertLessThan(evaluation, all / 10, "no backward, (almost) nothing kept")
    }

    func testBackwardAfterAForwardWithoutSavingIsRefused() throws {
        // A precondition failure cannot be caught in-process; check the flag's plumbing instead.
        let ctx = PassContext(batch: 1, training: false, saveForBackward: false)
        XCTAssertFalse(ctx.saveForBackward)
        XCTAssertTrue(PassContext(batch: 1, training: true).saveForBackward, "saving is the default")
    }
}
