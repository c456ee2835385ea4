import AIMTensor
import Foundation

/// How a parameter is initialised when no pretrained weight overwrites it (official init_weights).
public enum Initialization: Sendable, Equatable {
    case zeros, ones
    case truncatedNormal(std: Float)   // timm trunc_normal_: N(0, std) cut at ±2 (absolute)
    case normal(std: Float)            // mmcv normal_init
    case uniform(bound: Float)         // PyTorch's Conv2d default (kaiming-uniform a=√5): U(±1/√fan_in)
}

/// One named parameter: a view into the flat tunable or frozen buffer, and its gradient view.
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let tunable: Bool
    public let initialization: Initialization
    fileprivate var storage: Tensor!
    /// The fp32 values. Not to be read once `fp32Released` (a precondition says which weight).
    public var value: Tensor {
        precondition(!fp32Released, "\(name): its fp32 values were given back after its bf16 copy was made "
                     + "(model.precision bf16, ParameterStore.releaseFrozenFP32); only the bf16 copy holds it now")
        return storage
    }
    /// model.precision bf16: this frozen weight's fp32 pages went back to the system once its bf16
    /// copy was made (`ParameterStore.releaseFrozenFP32`); bf16 products read the copy.
    public fileprivate(set) var fp32Released = false
    /// nil for frozen parameters: they never get a gradient.
    public fileprivate(set) var grad: Tensor?
    /// Offset into the flat tunable buffer (tunable only).
    public fileprivate(set) var offset = 0

    init(name: String, shape: [Int], tunable: Bool, initialization: Initialization) {
        self.name = name; self.shape = shape; self.tunable = tunable; self.initialization = initialization
    }

    public var count: Int { shape.reduce(1, *) }
    public var data: UnsafeMutablePointer<Float> { value.data }
    public var gradData: UnsafeMutablePointer<Float>? { grad?.data }

    /// model.precision bf16: a linear weight multiplies in bf16 (fp32 accumulation). A frozen
    /// weight's bf16 copy is made at its first use, so after weights are loaded, and kept;
    /// `ParameterStore.dropBF16Copies()` must follow any other change of frozen values. A tunable
    /// weight keeps no copy: each product rounds its current fp32 value (why: a kept copy would
    /// have to be re-rounded after every update anyway, and would hold 2 bytes per weight all step).
    public internal(set) var reducedPrecision = false
    fileprivate var bf16Copy: BF16Weight?
    func bf16() -> BF16Weight {
        if let c = bf16Copy { return c }
        let N = shape[0], K = count / shape[0]
        let c = tunable ? BF16Weight(roundingPerUse: data, outFeatures: N, inFeatures: K) : BF16Weight(data, outFeatures: N, inFeatures: K)
        bf16Copy = c
        return c
    }
}

/// All parameters of a recognizer in registration order (the order of PyTorch's
/// `named_parameters()`), with tunable ones in one contiguous buffer and their gradients in
/// another of the same layout — so allreduce, clipping, AdamW and checkpoints are each one
/// loop over one buffer (llm.c).
public final class ParameterStore {
    public private(set) var parameters: [Parameter] = []
    private var byName: [String: Parameter] = [:]
    public private(set) var tunableValues = Tensor([0])
    public private(set) var tunableGrads = Tensor([0])
    public private(set) var frozenValues = Tensor([0])
    private let isTunable: (String) -> Bool
    private var finalized = false

    public init(isTunable: @escaping (String) -> Bool) { self.isTunable = isTunable }

    @discardableResult
    func register(_ name: String, _ shape: [Int], _ initialization: Initialization) -> Parameter {
        precondition(!finalized, "register \(name) after finalize")
        precondition(byName[name] == nil, "duplicate parameter \(name)")
        let p = Parameter(name: name, shape: shape, tunable: isTunable(name), initialization: initialization)
        parameters.append(p); byName[name] = p
        return p
    }

    /// Allocates the flat buffers and points every parameter into them.
    func finalize() {
        let tunableCount = parameters.filter(\.tunable).reduce(0) { $0 + $1.count }
        let frozenCount = parameters.filter { !$0.tunable }.reduce(0) { $0 + $1.count }
        tunableValues = Tensor([tunableCount]); tunableGrads = Tensor([tunableCount])
        frozenValues = Tensor([frozenCount])
        var t = 0, f = 0
        for p in parameters {
            if p.tunable {
                p.storage = Tensor(viewing: tunableValues, offset: t, shape: p.shape)
                p.grad = Tensor(viewing: tunableGrads, offset: t, shape: p.shape)
                p.offset = t; t += p.count
            } else {
                p.storage = Tensor(viewing: frozenValues, offset: f, shape: p.shape)
                f += p.count
            }
        }
        finalized = true
        gradientsAreZero = true   // fresh zero pages
    }

    public subscript(name: String) -> Parameter? { byName[name] }
    public var names: [String] { parameters.map(\.name) }
    public var tunableParameters: [Parameter] { parameters.filter(\.tunable) }
    public var totalCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public var tunableCount: Int { tunableValues.count }

    /// When set, `zeroGrads()` returns the gradient buffer's pages to the system instead of writing
    /// zeros (they come back zero-filled as backward first writes them), so gradients hold no memory
    /// between an optimizer step and the next backward (why: as PyTorch's `zero_grad(set_to_none=True)`;
    /// the forward's activations then use those pages). Costs a page fault per 4 KiB in backward.
    public var releasesGradientPages = false

    public func zeroGrads() {
        gradientsAreZero = true
        guard lent.isEmpty else {
            // Lent spans hold a forward's kept activations; they read as zero once returned.
            var at = 0
            for r in lent.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if r.lowerBound > at { (tunableGrads.data + at).update(repeating: 0, count: r.lowerBound - at) }
                at = max(at, r.upperBound)
            }
            if at < tunableCount { (tunableGrads.data + at).update(repeating: 0, count: tunableCount - at) }
            return
        }
        let bytes = tunableGrads.bytes
        guard releasesGradientPages, bytes >= 1 << 20 else { tunableGrads.zero(); return }
        let start = UnsafeMutableRawPointer(tunableGrads.data), end = start + bytes
        let (lo, hi) = wholePages(start, bytes: bytes)
        start.initializeMemory(as: UInt8.self, repeating: 0, count: lo - start)
        hi.initializeMemory(as: UInt8.self, repeating: 0, count: end - hi)
        // Private anonymous memory (tensors from 1 MiB up are their own mappings) reads as zeros after this.
        if !dropPages(lo, hi) { tunableGrads.zero() }
    }

    /// The whole pages inside [start, start + bytes): the partial pages at either end hold neighbours.
    private func wholePages(_ start: UnsafeMutableRawPointer, bytes: Int) -> (lo: UnsafeMutableRawPointer, hi: UnsafeMutableRawPointer) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE))), s = Int(bitPattern: start)
        let lo = (s + page - 1) / page * page, hi = max(lo, (s + bytes) / page * page)
        return (UnsafeMutableRawPointer(bitPattern: lo)!, UnsafeMutableRawPointer(bitPattern: hi)!)
    }

    /// Gives the pages [lo, hi) of private anonymous memory back to the system (they read as zeros
    /// afterwards); false when nothing was given back.
    private func dropPages(_ lo: UnsafeMutableRawPointer, _ hi: UnsafeMutableRawPointer) -> Bool {
        hi > lo && madvise(lo, hi - lo, Int32(MADV_DONTNEED)) == 0
    }

    // MARK: - Gradient memory lent to activations

    /// True from `zeroGrads()` until a backward writes gradients: only then may a forward lend
    /// gradient memory to kept activations (why: gradients and activations then never hold values
    /// at the same time in those bytes, so a step's peak counts them once, without page faults;
    /// PyTorch gets the same from `zero_grad(set_to_none=True)` and its caching allocator).
    public internal(set) var gradientsAreZero = false

    /// Gradient spans currently holding activations (zero as far as any reader is concerned).
    private(set) var lent: [Range<Int>] = []

    /// The gradients of `parameters` as one span, if they are contiguous and all tunable.
    func gradientSpan(of parameters: [Parameter]) -> Range<Int>? {
        let ps = parameters.filter(\.tunable).sorted { $0.offset < $1.offset }
        guard let first = ps.first else { return nil }
        var end = first.offset
        for p in ps { guard p.offset == end else { return nil }; end += p.count }
        return first.offset..<end
    }

    /// Lends `span` of the gradient buffer (zero now) as scratch memory until `reclaim(span)`.
    func lend(_ span: Range<Int>) -> Tensor {
        precondition(gradientsAreZero, "lend: gradients hold values")
        if !lent.contains(span) { lent.append(span) }
        return Tensor(viewing: tunableGrads, offset: span.lowerBound, shape: [span.count])
    }

    /// Takes a lent span back: zeroes it (backward accumulates into it next).
    func reclaim(_ span: Range<Int>) {
        guard let i = lent.firstIndex(of: span) else { return }
        (tunableGrads.data + span.lowerBound).update(repeating: 0, count: span.count)
        lent.remove(at: i)
    }

    func reclaimAll() {
        for span in lent { (tunableGrads.data + span.lowerBound).update(repeating: 0, count: span.count) }
        lent.removeAll()
    }

    /// Forget the bf16 copies of frozen weights (after their fp32 values changed). A weight whose
    /// fp32 values were released keeps its copy: the copy is all there is of it.
    public func dropBF16Copies() { for p in parameters where !p.fp32Released { p.bf16Copy = nil } }

    /// Bytes of fp32 frozen values given back by `releaseFrozenFP32`.
    public private(set) var releasedFP32Bytes = 0
    /// Bytes of fp32 frozen values still held.
    public var frozenFP32Bytes: Int { frozenValues.bytes - releasedFP32Bytes }

    /// model.precision bf16: makes the bf16 copy of every frozen linear weight now and gives its
    /// fp32 pages back to the system, except for `keeping` (frozen weights something still reads
    /// in fp32). Why: nothing else reads them once the copies exist, and they were the largest
    /// block of a bf16 AIM run's memory (344 MB of ViT-B/16's 1.47 GB peak, beside the bf16 copies).
    /// Call after the last load of frozen weights; loading into a released weight is refused.
    /// Returns the bytes given back.
    @discardableResult
    public func releaseFrozenFP32(keeping: Set<ObjectIdentifier>) -> Int {
        // Tensors from 1 MiB up are private anonymous mappings of their own: released pages read as
        // zeros (never read: `value` refuses) and nothing else can be placed in them.
        guard Tensor.isMapped(frozenValues.count) else { return 0 }
        var released = 0
        for p in parameters where !p.tunable && p.reducedPrecision && !p.fp32Released && !keeping.contains(ObjectIdentifier(p)) {
            _ = p.bf16()
            let (lo, hi) = wholePages(UnsafeMutableRawPointer(p.storage.data), bytes: p.count * MemoryLayout<Float>.stride)
            guard dropPages(lo, hi) else { continue }
            p.fp32Released = true
            released += hi - lo
        }
        releasedFP32Bytes += released
        return released
    }

    /// Bytes of the bf16 weight copies made so far, of tunable or of frozen parameters.
    public func bf16CopyBytes(tunable: Bool) -> Int {
        parameters.filter { $0.tunable == tunable }.reduce(0) { $0 + ($1.bf16Copy?.bytes ?? 0) }
    }

    /// Re-rounds the bf16 copies of tunable weights from their current fp32 values (the optimizer,
    /// a checkpoint or a test may have changed them), as autocast re-casts weights on every forward.
    /// Tunable weights are now rounded per use (`bf16()`), so this finds no kept copy to refresh.
    func refreshTunableBF16Copies() {
        for p in parameters where p.tunable { p.bf16Copy?.refresh(from: p.data) }
    }

    /// The official initialisation (normal, truncated normal, uniform, zeros, ones per parameter).
    /// Each block of `initBlock` values of a parameter draws from its own generator, keyed by the
    /// seed, the parameter's name and the block: a parameter's values do not depend on which
    /// others are drawn, so the ones a pretrained file will overwrite are `skipping`-ed (a
    /// ViT-L/14 drew 341 M values, 10.8 s, before its backbone replaced them), and the blocks are
    /// drawn in parallel with the same values on any thread count.
    public func initialize(seed: UInt64, skipping: Set<String> = []) {
        var work: [(Parameter, Int)] = []
        for p in parameters where !skipping.contains(p.name) {
            switch p.initialization {
            case .zeros: p.data.update(repeating: 0, count: p.count)
            case .ones: p.data.update(repeating: 1, count: p.count)
            default: for b in 0..<((p.count + Self.initBlock - 1) / Self.initBlock) { work.append((p, b)) }
            }
        }
        Threads.parallelFor(work.count) { items in
            for (p, b) in work[items] {
                let lo = b * Self.initBlock, n = min(Self.initBlock, p.count - lo), d = p.data + lo
                var rng = RandomGenerator(keys: seed, fnv1a64(p.name.utf8), UInt64(b))
                switch p.initialization {
                case .zeros, .ones: break
                case let .normal(std): rng.fillNormal(d, count: n, std: std)
                case let .uniform(bound): for i in 0..<n { d[i] = (2 * rng.uniformFloat() - 1) * bound }
                case let .truncatedNormal(std): rng.fillNormal(d, count: n, std: std, within: 2)
                }
            }
        }
    }

    static let initBlock = 1 << 16
}
