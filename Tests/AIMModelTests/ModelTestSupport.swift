import AIMModel
import AIMTensor

/// A model of `config` whose tunable values are moved off their initial values (zero adapter
/// up-projections would carry no gradient), and a batch of `batch` random clips for it.
func perturbedModelAndClips(_ c: ModelConfig, batch B: Int, seed: UInt64 = 3) throws -> (Recognizer, Tensor) {
    let model = try Recognizer(config: c, seed: seed)
    var g = RandomGenerator(seed: 9)
    for p in model.store.parameters where p.tunable { for i in 0..<p.count { p.data[i] += Float(g.normal()) * 0.05 } }
    let R = c.inputResolution
    let video = Tensor(shape: [B, 3, c.numFrames, R, R], values: (0..<(B * 3 * c.numFrames * R * R)).map { _ in Float(g.normal()) })
    return (model, video)
}
