import AIMTensor

/// Named buffers allocated once per size and reused across layers and steps.
///
/// A block keeps what its backward reads in its own arena (the bytes "kept for backward");
/// temporaries live in one scratch arena shared by all blocks, since only one block runs at a time.
public final class Arena {
    private var slots: [String: Tensor] = [:]

    public init() {}

    /// A buffer of at least `count` floats under `key`; contents are undefined.
    public func buffer(_ key: String, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let t = slots[key], t.count >= count { return t.data }
        let t = Tensor([max(count, 1)])
        slots[key] = t
        return t.data
    }

    public var bytes: Int { slots.values.reduce(0) { $0 + $1.bytes } }
    public func release() { slots.removeAll() }
}

/// A block's activations for backward: its own arena while backward will reach the block, an
/// arena shared by all blocks backward will not reach (frozen prefix, evaluation) otherwise.
final class KeptActivations {
    private let own = Arena()
    private(set) var arena: Arena

    init() { arena = own }

    /// Chooses where the next forward keeps what backward reads.
    func select(keep: Bool, shared: Arena) {
        if keep { arena = own } else { own.release(); arena = shared }
    }

    var bytes: Int { arena === own ? own.bytes : 0 }
}
