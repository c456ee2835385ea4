import Foundation

/// One allreduce size measured on the current world, in nccl-tests' conventions.
public struct AllreduceFigure: Sendable {
    public let method: String
    public let floats: Int
    public let ranks: Int
    /// Seconds per allreduce (the slowest rank's time), median / min / max over the repeats.
    public let seconds: Double
    public let minSeconds: Double
    public let maxSeconds: Double

    public var bytes: Int { floats * MemoryLayout<Float>.stride }
    /// algbw = bytes / time.
    public var algbwGBps: Double { Double(bytes) / seconds / 1e9 }
    /// busbw = algbw · 2(n−1)/n: what each rank's link carried, comparable across world sizes.
    public var busbwGBps: Double { ranks > 1 ? algbwGBps * 2 * Double(ranks - 1) / Double(ranks) : 0 }
}

/// A simulated backward (work proportional to each gradient's size) followed by the bucket pass,
/// with the reductions overlapped or after it.
public struct OverlapFigure: Sendable {
    public let floats: Int
    public let buckets: Int
    public let bucketBytes: Int
    public let ranks: Int
    /// The simulated backward alone, no communication (median seconds).
    public let computeSeconds: Double
    /// Backward + reduction, median seconds per step (slowest rank).
    public let blockingStepSeconds: Double
    public let overlappedStepSeconds: Double
    /// Of which waiting in `finish()`.
    public let blockingWaitSeconds: Double
    public let overlappedWaitSeconds: Double
    public let bytesReducedPerStep: Int
}

public enum DistributedBenchmark {
    /// Times in-place allreduce-sum of `floats` floats, after one warm-up call: through the
    /// watchdog path (MPI_Iallreduce polled by MPI_Testall) and, on MPI, the blocking
    /// MPI_Allreduce for comparison.
    public static func allreduce(_ comm: any Communicator, floats: Int, repeats: Int = 5) -> [AllreduceFigure] {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        for i in 0..<floats { buffer[i] = Float(i % 7) }
        var methods: [(String, () -> Void)] = [
            ("MPI_Iallreduce+watchdog", { comm.allreduceSum(buffer, count: floats, label: "benchmark") }),
        ]
        if let mpi = comm as? MPICommunicator {
            methods.append(("MPI_Allreduce", { mpi.blockingAllreduceSum(buffer, count: floats, label: "benchmark") }))
        }
        return methods.map { name, run in
            run()  // warm-up: first-touch of buffers and connection setup
            let times = (0..<max(1, repeats)).map { _ in slowestRank(comm) { run() } }.sorted()
            return AllreduceFigure(method: name, floats: floats, ranks: comm.size,
                                   seconds: times[times.count / 2], minSeconds: times.first!, maxSeconds: times.last!)
        }
    }

    /// A layout shaped like AIM ViT-B/16's tunables: per block three adapters
    /// (768→192→768 with biases), then a 768×classes head; about 11M floats at 400 classes.
    public static func aimLikeLayout(blocks: Int = 12, width: Int = 768, bottleneck: Int = 192, classes: Int = 400) -> [GradientSlice] {
        var slices: [GradientSlice] = []
        var offset = 0
        func add(_ name: String, _ n: Int) { slices.append(GradientSlice(name: name, offset: offset, count: n)); offset += n }
        for b in 0..<blocks {
            for a in ["T_Adapter_in", "S_Adapter", "MLP_Adapter"] {
                add("backbone.transformer.resblocks.\(b).\(a).D_fc1.weight", bottleneck * width)
                add("backbone.transformer.resblocks.\(b).\(a).D_fc1.bias", bottleneck)
                add("backbone.transformer.resblocks.\(b).\(a).D_fc2.weight", width * bottleneck)
                add("backbone.transformer.resblocks.\(b).\(a).D_fc2.bias", width)
            }
        }
        add("cls_head.fc_cls.weight", classes * width)
        add("cls_head.fc_cls.bias", classes)
        return slices
    }

    /// Overlapped vs blocking bucket passes after a simulated backward doing `workPerFloat`
    /// multiply-adds per gradient element, last parameter first.
    public static func overlap(_ comm: any Communicator, layout: [GradientSlice],
                               bucketBytes: Int = GradientBucketer.defaultBucketBytes,
                               workPerFloat: Int = 32, repeats: Int = 3) throws -> OverlapFigure {
        let total = layout.last!.offset + layout.last!.count
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: total)
        defer { grads.deallocate() }
        grads.initialize(repeating: 0, count: total)
        let seed = Float(comm.rank + 1)

        func backward(_ bucketer: GradientBucketer?) {
            for p in layout.indices.reversed() {
                let s = layout[p]
                let g = grads + s.offset
                for j in 0..<s.count {
                    var v = seed + Float(j & 15)
                    for _ in 0..<workPerFloat { v = v * 0.999 + 0.001 }
                    g[j] = v
                }
                bucketer?.markReady(p)
            }
        }
        func step(_ bucketer: GradientBucketer) -> (Double, Double) {
            var wait = 0.0
            let t = slowestRank(comm) {
                bucketer.begin(gradients: grads)
                backward(bucketer)
                wait = bucketer.finish().waitSeconds
            }
            return (t, comm.allreduce([wait], op: .max, label: "benchmark wait")[0])
        }
        let blocking = try GradientBucketer(layout: layout, bucketBytes: bucketBytes, mode: .blocking, communicator: comm)
        let overlapped = try GradientBucketer(layout: layout, bucketBytes: bucketBytes, mode: .overlapped, communicator: comm)
        _ = step(blocking); _ = step(overlapped)  // warm-up
        var compute: [Double] = [], blockRuns: [(Double, Double)] = [], overRuns: [(Double, Double)] = []
        for _ in 0..<max(1, repeats) {
            compute.append(slowestRank(comm) { backward(nil) })
            blockRuns.append(step(blocking))
            overRuns.append(step(overlapped))
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        return OverlapFigure(floats: total, buckets: overlapped.buckets.count, bucketBytes: bucketBytes, ranks: comm.size,
                             computeSeconds: median(compute),
                             blockingStepSeconds: median(blockRuns.map(\.0)),
                             overlappedStepSeconds: median(overRuns.map(\.0)),
                             blockingWaitSeconds: median(blockRuns.map(\.1)),
                             overlappedWaitSeconds: median(overRuns.map(\.1)),
                             bytesReducedPerStep: total * MemoryLayout<Float>.stride)
    }

    /// Wall time of `body` on the slowest rank, all ranks starting together.
    static func slowestRank(_ comm: any Communicator, _ body: () -> Void) -> Double {
        comm.barrier(label: "benchmark start")
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return comm.allreduce([t], op: .max, label: "benchmark time")[0]
    }
}
