import AIMTensor

/// What the recognizer needs of a video backbone: the ViT family (ViTBackbone) or the Swin family
/// (SwinBackbone). A backbone registers its parameters under `backbone.…` in the shared store, runs
/// a video `[B, 3, T, H, W]` to the pooled feature the I3D head reads (`[B, featureWidth]`), and
/// back from its gradient, accumulating the gradients of its tunable parameters.
protocol VideoBackbone: AnyObject {
    var featureWidth: Int { get }
    /// Whether each block's kept activations go back to the system right after its backward.
    var releaseKept: Bool { get set }
    /// Whether a training forward after `zeroGrads()` keeps activations in gradient memory.
    var lendsGradientMemory: Bool { get set }
    /// Bytes of kept activations held in lent gradient memory during the last pass.
    var lentBytes: Int { get }
    /// Whether rows that nothing after the blocks reads are left uncomputed (`Recognizer.skipsUnreadRows`).
    var skipsUnreadRows: Bool { get set }
    /// The pooled feature `[B, featureWidth]`, valid until the next forward.
    func forward(video: UnsafePointer<Float>, context: PassContext) -> UnsafePointer<Float>
    /// `gradientsReady` receives parameters whose gradients are final, last layer first.
    func backward(dPooled: UnsafePointer<Float>, gradientsReady: (([Parameter]) -> Void)?)
    /// Bytes kept between forward and backward / buffers no backward reads / temporaries.
    var keptBytes: Int { get }
    var unkeptBytes: Int { get }
    var scratchBytes: Int { get }
    /// Per-module parameter and FLOP counts of one view (fvcore convention), head excluded.
    func moduleCounts() -> [ModuleCount]
    /// Frozen linear weights read in fp32 in a bf16 model too (the projections `ProjectionFold` folds).
    var frozenWeightsReadInFP32: [Parameter] { get }
}
