/// What a configuration would need at another batch size, from the same accounting.
///
/// Basis: parameters, gradients and AdamW moments do not depend on the batch; the activations
/// kept for backward, the workspace and the input clips grow linearly with the clips per forward
/// (every arena buffer is sized B·T·N·(…)); whatever the accounting does not cover (the process
/// itself, BLAS buffers, allocator slack) is carried over unchanged from the measurement.
public struct MemoryPrediction: Sendable {
    public let batch: Int
    public let fixedBytes: Int        // parameters + gradients + optimizer state
    public let perClipBytes: Int      // activations + workspace + input per clip
    public let unaccountedBytes: Int  // measured RSS growth − accounted (≥ 0)
    public var predictedBytes: Int { fixedBytes + batch * perClipBytes + unaccountedBytes }
    /// The same with activations, workspace and input held in 16 bits (the official runs use
    /// apex fp16 mixed precision; parameters and AdamW state stay fp32).
    public var predictedHalfPrecisionBytes: Int { fixedBytes + batch * perClipBytes / 2 + unaccountedBytes }

    public init(_ m: EfficiencyMeasurement, batch: Int) {
        let a = m.memory
        self.batch = batch
        fixedBytes = a.frozenParameters + a.tunableParameters + a.gradients + a.optimizerState
        perClipBytes = (a.activations + a.workspace) / max(1, m.microBatch) + a.inputBatch / max(1, m.batchPerRank)
        unaccountedBytes = max(0, m.rssGrowthBytes - a.total)
    }

    /// The official recipe: 8 clips per GPU in one forward (videos_per_gpu = 8, 8 GPUs).
    public static let paperBatchPerGPU = 8
}
