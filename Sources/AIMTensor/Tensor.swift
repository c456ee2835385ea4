import Foundation

/// A contiguous, row-major Float32 array with a shape.
///
/// Storage is 64-byte aligned (one cache line, one AVX-512 vector) so kernels and BLAS see
/// aligned rows. A tensor either owns its storage or is a view into another tensor's storage
/// (for example one parameter inside the flat tunable-parameter buffer); a view keeps its
/// owner alive.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let owner: Tensor?
    private let owns: Bool

    /// A zero-filled tensor.
    public init(_ shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = Tensor.allocate(count)
        self.owner = nil
        self.owns = true
        // Mapped storage comes zeroed from the kernel; touching it here would only make it resident.
        if !Tensor.isMapped(count) { data.initialize(repeating: 0, count: count) }
    }

    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape)
        precondition(values.count == count, "Tensor: \(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    public convenience init(shape: [Int], repeating value: Float) {
        self.init(shape)
        data.update(repeating: value, count: count)
    }

    /// A view of `shape.product` floats starting at `offset` elements into `base`.
    public init(viewing base: Tensor, offset: Int = 0, shape: [Int]) {
        let n = shape.reduce(1, *)
        precondition(offset >= 0 && offset + n <= base.count,
                     "Tensor view [\(offset), \(offset + n)) out of range of \(base.count) elements")
        self.shape = shape
        self.count = n
        self.data = base.data + offset
        self.owner = base
        self.owns = false
    }

    deinit {
        guard owns else { return }
        if Tensor.isMapped(count) { munmap(data, Tensor.mappedBytes(count)) } else { free(data) }
    }

    /// Tensors from 1 MiB up get their own anonymous mapping, returned to the kernel when freed.
    /// Through malloc they would raise glibc's dynamic mmap threshold (up to 32 MiB) after the
    /// first free, land on the heap and keep freed memory resident: peak memory would then depend
    /// on the allocation history instead of the plan.
    static let mapThreshold = 1 << 20
    public static func isMapped(_ count: Int) -> Bool { count * MemoryLayout<Float>.stride >= mapThreshold }
    static func mappedBytes(_ count: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (count * MemoryLayout<Float>.stride + page - 1) / page * page
    }

    /// Out of memory is the machine's limit, not a bug: one clear line and exit status 1.
    static func outOfMemory(_ bytes: Int) -> Never {
        Console.exitWithError(String(format: "out of memory: a tensor of %.2f GB could not be allocated (%.1f GB physical memory); "
            + "lower train.micro_batch or train.batch_size, or the model size", Double(bytes) / 1e9,
            Double(ProcessInfo.processInfo.physicalMemory) / 1e9))
    }

    static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        if isMapped(count) {
            let bytes = mappedBytes(count)
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            if p == MAP_FAILED || p == nil { outOfMemory(bytes) }
            return p!.bindMemory(to: Float.self, capacity: count)   // page-aligned, so 64-byte aligned
        }
        var raw: UnsafeMutableRawPointer?
        let bytes = max(64, (count * MemoryLayout<Float>.stride + 63) & ~63)
        let rc = posix_memalign(&raw, 64, bytes)
        if rc != 0 || raw == nil { outOfMemory(bytes) }
        return raw!.bindMemory(to: Float.self, capacity: max(count, 16))
    }

    public var bytes: Int { count * MemoryLayout<Float>.stride }

    /// The same storage seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape): element counts differ")
        return Tensor(viewing: self, offset: 0, shape: newShape)
    }

    public subscript(i: Int) -> Float {
        get { precondition(i >= 0 && i < count, "index \(i) out of range \(count)"); return data[i] }
        set { precondition(i >= 0 && i < count, "index \(i) out of range \(count)"); data[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public func zero() { data.update(repeating: 0, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    public func clone() -> Tensor {
        let t = Tensor(shape)
        t.copy(from: self)
        return t
    }
}
