import AIMTensor

/// What one forward/backward pass needs to know besides the data.
public struct PassContext: Sendable {
    public var batch: Int
    /// Training mode: dropout and drop-path active.
    public var training: Bool
    /// Keys for every random choice of this pass (dropout, drop-path): the run's seed, the
    /// optimizer step, and one key per sample — its position in the global batch — so a sample
    /// gets the same masks however the batch is split over ranks and micro-batches.
    public var seed: UInt64
    public var step: UInt64
    public var sampleKeys: [UInt64]
    /// False when no backward follows (evaluation): nothing is kept for it.
    public var saveForBackward: Bool

    public init(batch: Int, training: Bool, seed: UInt64 = 0, step: UInt64 = 0, sampleKeys: [UInt64]? = nil,
                saveForBackward: Bool = true) {
        self.batch = batch; self.training = training; self.seed = seed; self.step = step
        self.saveForBackward = saveForBackward
        self.sampleKeys = sampleKeys ?? (0..<batch).map(UInt64.init)
        precondition(self.sampleKeys.count == batch, "PassContext: \(self.sampleKeys.count) sample keys for a batch of \(batch)")
    }

    /// A generator for one random site and one sample (plus a sub-key, e.g. the frame).
    func rng(site: UInt64, sample b: Int, sub: UInt64 = 0) -> RandomGenerator {
        RandomGenerator(keys: seed, step, site, sampleKeys[b], sub)
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
    /// Whether the next forward keeps what backward reads (own arena) or writes it into `shared`,
    /// an arena reused by every block that will not run backward.
    /// `lent`: gradient memory (zero until this block's backward is done) to keep buffers in first.
    func keepActivations(_ keep: Bool, shared: Arena, lent: Tensor?)
    /// Bytes of the kept buffers that sit in lent gradient memory.
    var keptLentBytes: Int { get }
    /// Returns the kept buffers' pages to the system once backward has read them (`Recognizer.releasesStepMemory`).
    func releaseKept()
    func forward(out: FloatPtr, input: UnsafePointer<Float>, dims: Dims, context: PassContext, scratch: Arena)
    /// `dInput` receives the gradient of the block input (overwritten).
    func backward(dInput: FloatPtr, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dims: Dims, scratch: Arena)
    /// Multiply-accumulates of one forward (fvcore convention, LayerNorm counted as 5 per element).
    func flops(dims: Dims) -> Int
}

/// A block that can run its last per-row layers on the class tokens alone (one per frame, or per
/// video in the IN-21K TimeSformer's layout): set on the last block of a ViT backbone, after which
/// nothing reads another row. `out` then holds those rows only.
protocol ClassRowsBlock: AnyObject {
    var classRowsOnly: Bool { get set }
}

/// Clips of one forward in the official training: `videos_per_gpu=8`, `update_interval=1` in every
/// ViT config.
let officialClipsPerForward: UInt64 = 8

/// Drop-path scales where the official block runs sequence-first ([N, B·T, D] or [T, B·N, D]):
/// timm's DropPath there draws one decision per index of the first axis (`indexOf(row)`, one of
/// `count`), shared by the clips of one GPU's forward. Here those are `officialClipsPerForward`
/// consecutive places of the global batch, so neither the rank count nor `train.micro_batch`
/// changes a mask. Rows are sample-major (`rows / batch` per sample).
func sequenceFirstDropPathScales(rows: Int, count: Int, p: Float, context: PassContext, site: UInt64,
                                 indexOf: (Int) -> Int) -> [Float] {
    var groups: [UInt64] = [], slotOf: [UInt64: Int] = [:]
    let slotOfSample = context.sampleKeys.map { key -> Int in
        let group = key / officialClipsPerForward
        if let s = slotOf[group] { return s }
        slotOf[group] = groups.count; groups.append(group)
        return groups.count - 1
    }
    let rowsPerSample = rows / max(1, context.batch)
    return dropPathRowScales(rows: rows, groups: groups.count * count, p: p,
                             rngFor: { RandomGenerator(keys: context.seed, context.step, site, UInt64.max - groups[$0 / count], UInt64($0 % count)) },
                             groupOf: { slotOfSample[$0 / rowsPerSample] * count + indexOf($0) })
}

/// Per-row scales for drop-path: `groupOf(row)` picks which keep decision a row uses.
/// Decisions of one group come from `rngFor(group)`, so they do not depend on the other groups.
func dropPathRowScales(rows: Int, groups: Int, p: Float, rngFor: (Int) -> RandomGenerator, groupOf: (Int) -> Int) -> [Float] {
    let s: [Float] = (0..<groups).map { g in
        var rng = rngFor(g)
        return dropPathScales(samples: 1, p: p, rng: &rng)[0]
    }
    return (0..<rows).map { s[groupOf($0)] }
}

/// The scales of rows 0, every, 2·every … (the class rows) of `rows` rows; empty stays empty.
func classRowScales(_ scales: [Float], rows: Int, every: Int) -> [Float] {
    scales.isEmpty ? scales : stride(from: 0, to: rows, by: every).map { scales[$0] }
}

/// out = x · rowScale (or += with `accumulate`); no scales means 1 (drop-path off).
func applyRowScales(_ scales: [Float], out: FloatPtr, _ x: UnsafePointer<Float>, rows: Int, cols: Int, accumulate: Bool = false) {
    if scales.isEmpty {
        if accumulate { addInPlace(out, x, count: rows * cols) } else { copyParallel(out, x, count: rows * cols) }
    } else {
        scaleRows(out: out, input: x, rowScales: scales, rows: rows, cols: cols, accumulate: accumulate)
    }
}

/// out = base + x · scales (per row; empty: 1) in one pass (why: a copy of base and then an
/// in-place add read and write out twice).
func addRowScaled(_ scales: [Float], out: FloatPtr, base: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, cols: Int) {
    if scales.isEmpty { add(out: out, base, x, count: rows * cols) }
    else { scaleRows(out: out, input: x, rowScales: scales, rows: rows, cols: cols, base: base) }
}
