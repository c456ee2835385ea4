import AIMTensor

/// What one forward/backward pass needs to know besides the data.
public struct PassContext: Sendable {
    public var batch: Int
    /// Training mode: dropout and drop-path active.
    public var training: Bool
    /// Keys for every random choice of this pass (dropout, drop-path): (seed, step, micro-step).
    public var seed: UInt64
    public var step: UInt64
    public var microStep: UInt64

    public init(batch: Int, training: Bool, seed: UInt64 = 0, step: UInt64 = 0, microStep: UInt64 = 0) {
        self.batch = batch; self.training = training; self.seed = seed; self.step = step; self.microStep = microStep
    }

    /// A generator for one random site (layer, branch) of this pass.
    func rng(site: UInt64) -> RandomGenerator {
        RandomGenerator(keys: seed, step, microStep, site)
    }
}

/// Sizes of one pass through a frame-batched ViT.
struct Dims {
    let B: Int, T: Int, N: Int, D: Int
    var frames: Int { B * T }
    var rows: Int { B * T * N }
}

/// One transformer block: forward on `[rows, D]`, backward to the block input.
protocol TransformerBlock: AnyObject {
    var parameters: [Parameter] { get }
    /// Bytes this block keeps between forward and backward.
    var keptBytes: Int { get }
    func forward(out: FloatPtr, input: UnsafePointer<Float>, dims: Dims, context: PassContext, scratch: Arena)
    /// `dInput` receives the gradient of the block input (overwritten).
    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dims: Dims, scratch: Arena)
    /// Multiply-accumulates of one forward (fvcore convention, LayerNorm counted as 5 per element).
    func flops(dims: Dims) -> Int
}

/// Per-row scales for drop-path: `groupOf(row)` picks which sample's keep decision a row uses.
func dropPathRowScales(rows: Int, groups: Int, p: Float, rng: inout RandomGenerator, groupOf: (Int) -> Int) -> [Float] {
    let s = dropPathScales(samples: groups, p: p, rng: &rng)
    return (0..<rows).map { s[groupOf($0)] }
}
