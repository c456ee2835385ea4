import AIMTensor

/// Named buffers allocated once per size and reused across layers and steps.
///
/// A block keeps what its backward reads in its own arena (the bytes "kept for backward").
/// Temporaries live in a *transient* arena shared by all blocks: its buffers live for one cycle
/// (one block's forward or backward, `beginCycle()` between them), so a forward's temporaries and
/// a backward's share the same bytes and the arena is as large as the largest single call.
public final class Arena {
    private var slots: [String: Tensor] = [:]
    private let transient: Bool
    // Transient mode: one region handed out front to back within a cycle; what does not fit in
    // this cycle gets its own tensor, and the next cycle's region is grown to the high-water mark.
    private var region = Tensor([1])
    private var overflow: [Tensor] = []
    private var cycle: [String: (pointer: UnsafeMutablePointer<Float>, count: Int)] = [:]
    private var top = 0, highWater = 0

    /// `transient`: buffers are valid until the next `beginCycle()`.
    public init(transient: Bool = false) { self.transient = transient }

    /// A buffer of at least `count` floats under `key`; contents are undefined.
    public func buffer(_ key: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if transient { return transientBuffer(key, count) }
        if let t = slots[key], t.count >= count { return t.data }
        if let backing {
            if let c = carved[key], c.count >= count { return backing.data + c.offset }
            let n = (max(count, 1) + 15) & ~15
            if carved[key] == nil && carveTop + n <= backing.count {
                carved[key] = (carveTop, count); carveTop += n
                return backing.data + carveTop - n
            }
            carved[key] = nil
        }
        let t = Tensor([max(count, 1)])
        slots[key] = t
        return t.data
    }

    // Non-transient mode: buffers are carved front to back from `backing` while it has room, at
    // the same offsets every pass (so a new backing of the same size keeps the layout), then get
    // tensors of their own.
    private var backing: Tensor?
    private var carved: [String: (offset: Int, count: Int)] = [:]
    private var carveTop = 0

    /// Carve the next buffers from `span` (nil: none). A span of another size starts the layout over.
    public func carve(from span: Tensor?) {
        precondition(!transient, "carve(from:) on a transient arena")
        if span?.count != backing?.count { carved.removeAll(); carveTop = 0 }
        backing = span
    }
    /// Floats of the buffers carved from the backing span (as asked for, without alignment padding).
    public var carvedCount: Int { backing == nil ? 0 : carved.values.reduce(0) { $0 + $1.count } }
    /// Floats of the backing span (its size, whether used or not).
    public var backingCount: Int { backing?.count ?? 0 }

    /// A buffer of at least `count` bf16 values under `key` (half as many floats' bytes): kept
    /// bf16 operands take 2 bytes a value instead of 4 (why: autocast keeps these inputs in bf16 too).
    public func bf16Buffer(_ key: String, _ count: Int) -> UnsafeMutablePointer<UInt16> {
        UnsafeMutableRawPointer(buffer(key, (count + 1) / 2)).bindMemory(to: UInt16.self, capacity: count)
    }

    private func transientBuffer(_ key: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = cycle[key], b.count >= count { return b.pointer }
        let n = (max(count, 1) + 15) & ~15   // 64-byte steps keep every buffer vector-aligned
        let p: UnsafeMutablePointer<Float>
        if top + n <= region.count { p = region.data + top } else {
            let t = Tensor([n]); overflow.append(t); p = t.data
        }
        top += n; highWater = max(highWater, top)
        cycle[key] = (p, count); order.append(key)
        return p
    }

    /// A point in the current cycle to `rewind(to:)` (transient mode).
    public struct Mark { fileprivate let top: Int, keys: Int }
    private var order: [String] = []

    public func mark() -> Mark { Mark(top: top, keys: order.count) }

    /// Releases every buffer handed out since `mark` (their names may be asked for again), so a
    /// later section of the same call reuses their bytes.
    public func rewind(to mark: Mark) {
        precondition(transient, "rewind on a non-transient arena")
        for key in order[mark.keys...] { cycle[key] = nil }
        order.removeSubrange(mark.keys...)
        top = mark.top
    }

    /// Ends the current cycle (transient mode): every buffer handed out so far may be reused.
    public func beginCycle() {
        precondition(transient, "beginCycle on a non-transient arena")
        cycle.removeAll(keepingCapacity: true); order.removeAll(keepingCapacity: true)
        if highWater > region.count { region = Tensor([highWater]); overflow.removeAll() }
        top = 0
    }

    public var bytes: Int {
        transient ? region.bytes + overflow.reduce(0) { $0 + $1.bytes }
            : slots.values.reduce(0) { $0 + $1.bytes } + carvedCount * MemoryLayout<Float>.stride
    }
    /// Drops one buffer (its pages go back to the system); asking for `key` again allocates anew.
    public func release(_ key: String) {
        precondition(!transient, "release(key) on a transient arena")
        slots[key] = nil
    }

    public func release() {
        slots.removeAll(); cycle.removeAll(); order.removeAll(); overflow.removeAll(); region = Tensor([1]); top = 0; highWater = 0
        carved.removeAll(); carveTop = 0
    }
}

/// A block's activations for backward: its own arena while backward will reach the block, an
/// arena shared by all blocks backward will not reach (frozen prefix, evaluation) otherwise.
final class KeptActivations {
    private let own = Arena()
    private(set) var arena: Arena

    /// What the own arena held when `releaseAfterBackward` emptied it (still this pass's kept bytes).
    private var releasedBytes = 0

    init() { arena = own }

    /// Chooses where the next forward keeps what backward reads. `lent`: gradient memory this
    /// block's kept buffers may use first (`ParameterStore.lend`), zero until its owner's
    /// backward needs it back.
    func select(keep: Bool, shared: Arena, lent: Tensor?) {
        releasedBytes = 0
        guard keep else { own.release(); arena = shared; lentSpan = false; return }
        arena = own
        lentSpan = lent != nil
        if let lent { own.carve(from: lent); return }
        // Nothing lent this pass (gradients already hold values, e.g. a second micro-batch): a span
        // of our own with the layout of the lent one, kept for such passes, so the carved
        // buffers keep their offsets and nothing is remapped every pass.
        if own.backingCount > 0 {
            if spare?.count != own.backingCount { spare = Tensor([own.backingCount]) }
            own.carve(from: spare)
        }
    }
    private var spare: Tensor?
    private var lentSpan = false

    /// Bytes of kept buffers that live in lent gradient memory this pass (not memory of their own).
    var lentBytes: Int { arena === own && lentSpan ? own.carvedCount * MemoryLayout<Float>.stride : 0 }

    /// After this block's backward: its kept buffers are dead until the next forward, so their pages
    /// go back to the system (why: the gradients written during the rest of backward take their place).
    func releaseAfterBackward() {
        guard arena === own else { return }
        releasedBytes = max(releasedBytes, own.bytes)
        own.release()
    }

    var bytes: Int { arena === own ? max(own.bytes, releasedBytes) : 0 }
}
