// aim-mpi-check: checks and measures the distributed layer under mpirun (or alone).
//   aim-mpi-check                 correctness checks; prints PASS/FAIL lines, exit 0 iff all pass
//   aim-mpi-check --bench [--floats 11000000,86000000] [--repeats 5] [--work 32] [--bucket-mb 25] [--allreduce-only]
//   aim-mpi-check --die-rank R    rank R kills itself during an allreduce (others must not hang)
//   aim-mpi-check --hang-rank R [--hang-seconds 120]
//                                 rank R never joins; the others' watchdog must abort the job
import AIMDistributed
import AIMTensor
import Foundation

func fail(_ message: String) -> Never {
    Console.errorRaw("aim-mpi-check: \(message)\n")
    exit(2)
}

let usage = """
USAGE: aim-mpi-check [--bench [options]] [--die-rank R] [--hang-rank R [--hang-seconds S]]

Checks and measures the distributed layer (allreduce, broadcast, allgather, gradient buckets), one
process alone or every rank under mpirun, e.g. `mpirun -n 2 bin/aim-mpi-check`.

MODES:
  (none)                  correctness checks: a PASS/FAIL line; exit 0 iff every check passes on every rank
  --bench                 allreduce time and bandwidth per method, then blocking vs overlapped bucketed
                          gradient passes after a simulated backward (markdown tables)
  --die-rank R            rank R kills itself during an allreduce: the others must not hang
  --hang-rank R           rank R never joins a barrier: the others' watchdog (AIM_COLLECTIVE_TIMEOUT,
                          default 300 s) must abort the job

OPTIONS:
  --floats N,N,...        with --bench: allreduce sizes in floats (default 11000000,86000000)
  --repeats N             with --bench: timed rounds per measurement (default 5)
  --work N                with --bench: multiply-adds per gradient float of the simulated backward (default 32)
  --bucket-mb N           with --bench: gradient bucket size in MiB (default \(GradientBucketer.defaultBucketBytes / 1_048_576))
  --allreduce-only        with --bench: only the allreduce table
  --hang-seconds S        with --hang-rank: how long that rank sleeps (default 120)
  -h, --help              show this help

"""

var args = Array(CommandLine.arguments.dropFirst())
// Help before the communicator starts; under mpirun rank 0 alone prints it.
if args.contains("--help") || args.contains("-h") {
    if launchedProcessRank() == 0 { print(usage, terminator: "") }
    exit(0)
}
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name) else { return nil }
    guard i + 1 < args.count else { fail("\(name) needs a value") }
    let v = args[i + 1]
    args.removeSubrange(i...(i + 1))
    return v
}
func flag(_ name: String) -> Bool {
    guard let i = args.firstIndex(of: name) else { return false }
    args.remove(at: i)
    return true
}
func intOption(_ name: String) -> Int? {
    guard let v = option(name) else { return nil }
    guard let n = Int(v) else { fail("\(name) expects an integer, got '\(v)'") }
    return n
}

let bench = flag("--bench")
let allreduceOnly = flag("--allreduce-only")
let floatsList: [Int]? = option("--floats").map { list in
    list.split(separator: ",").map { item in
        guard let n = Int(item) else { fail("--floats expects comma-separated integers, got '\(list)'") }
        return n
    }
}
let repeats = intOption("--repeats") ?? 5
let work = intOption("--work") ?? 32
let bucketMB = intOption("--bucket-mb") ?? GradientBucketer.defaultBucketBytes / 1_048_576
let dieRank = intOption("--die-rank")
let hangRank = intOption("--hang-rank")
let hangSeconds = intOption("--hang-seconds") ?? 120
guard args.isEmpty else { fail("unknown arguments: \(args.joined(separator: " ")) (see --help)") }

let comm = makeCommunicator()
func say(_ line: String) {
    if comm.rank == 0 { print(line); fflush(stdout) }
}

if let dead = dieRank {
    var buffer = [Float](repeating: 1, count: 1 << 20)
    if comm.rank == dead {
        buffer.withUnsafeMutableBufferPointer { p in
            _ = comm.startAllreduceSum(p.baseAddress!, count: p.count, label: "dying allreduce")
        }
        Console.errorRaw("rank \(comm.rank): killing myself mid-collective\n")
        kill(getpid(), SIGKILL)
    }
    buffer.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: $0.count, label: "allreduce with a dead peer") }
    say("FAIL: the allreduce completed although rank \(dead) died")
    comm.finalize()
    exit(1)
}

if let hung = hangRank {
    if comm.rank == hung {
        Console.errorRaw("rank \(comm.rank): hanging for \(hangSeconds) s instead of joining\n")
        sleep(UInt32(hangSeconds))
        exit(0)
    }
    comm.barrier(label: "barrier with a hung peer")
    say("FAIL: the barrier completed although rank \(hung) never joined")
    comm.finalize()
    exit(1)
}

if bench {
    say("aim-mpi-check --bench: \(comm.size) ranks, \(comm.localSize) on this node")
    say("| method | floats | MB | time ms (median) | min | max | algbw GB/s | busbw GB/s |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in floatsList ?? [11_000_000, 86_000_000] {
        for f in DistributedBenchmark.allreduce(comm, floats: n, repeats: repeats) {
            say(String(format: "| %@ | %d | %.1f | %.2f | %.2f | %.2f | %.3f | %.3f |", f.method, f.floats,
                       Double(f.bytes) / 1e6, f.seconds * 1e3, f.minSeconds * 1e3, f.maxSeconds * 1e3, f.algbwGBps, f.busbwGBps))
        }
    }
    if allreduceOnly { comm.finalize(); exit(0) }
    let layout = DistributedBenchmark.aimLikeLayout()
    do {
        let o = try DistributedBenchmark.overlap(comm, layout: layout, bucketBytes: bucketMB * 1_048_576,
                                             workPerFloat: work, repeats: repeats)
        say("")
        say("bucketed gradient pass: \(o.floats) floats (AIM ViT-B/16-like layout, \(layout.count) tensors), \(o.buckets) buckets of ≤ \(o.bucketBytes / 1_048_576) MiB, \(o.bytesReducedPerStep) bytes reduced per step")
        say("| schedule | step ms | of which wait in finish() ms |")
        say("|---|---:|---:|")
        say(String(format: "| simulated backward alone | %.1f | – |", o.computeSeconds * 1e3))
        say(String(format: "| blocking (allreduce per bucket after backward) | %.1f | %.1f |", o.blockingStepSeconds * 1e3, o.blockingWaitSeconds * 1e3))
        say(String(format: "| overlapped (MPI_Iallreduce per bucket during backward) | %.1f | %.1f |", o.overlappedStepSeconds * 1e3, o.overlappedWaitSeconds * 1e3))
    } catch {
        comm.abort(code: 1, message: "\(error)")
    }
    comm.finalize()
    exit(0)
}

// MARK: correctness checks

var failures: [String] = []
var checks = 0
func check(_ name: String, _ ok: Bool, _ detail: @autoclosure () -> String = "") {
    checks += 1
    if !ok { failures.append("\(name): \(detail())") }
}

let rank = comm.rank, size = comm.size
let rankSum = Float(size * (size - 1) / 2)

// The world.
let ranksSeen = comm.allgather([UInt8(truncatingIfNeeded: rank)], label: "rank gather").map { $0.first ?? 255 }
check("world", ranksSeen == (0..<size).map { UInt8(truncatingIfNeeded: $0) } && comm.localRank < comm.localSize,
      "ranks \(ranksSeen), local \(comm.localRank)/\(comm.localSize)")

// Blocking-style (watchdog) in-place sums, odd sizes.
for n in [1, 7, 1_000_003] {
    var x = (0..<n).map { Float(rank) + Float($0 % 5) }
    x.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: n, label: "check sum \(n)") }
    let bad = x.indices.first { x[$0] != rankSum + Float(size * ($0 % 5)) }
    check("allreduce-sum \(n)", bad == nil, "element \(bad ?? -1) = \(bad.map { x[$0] } ?? 0)")
}

// Non-blocking in place (libnbc; Open MPI #9385 broke MPI_IN_PLACE in its ring algorithm),
// several requests in flight at once, advanced by progress() before the wait.
do {
    let sizes = [3_000_001, 17, 65_536]
    var bufs = sizes.map { n in (0..<n).map { Float(rank * 3) + Float($0 % 11) } }
    var pending: [PendingCollective] = []
    for i in bufs.indices {
        bufs[i].withUnsafeMutableBufferPointer { pending.append(comm.startAllreduceSum($0.baseAddress!, count: $0.count, label: "check iallreduce \(i)")) }
    }
    for _ in 0..<10 { comm.progress(pending) }
    comm.wait(pending)
    for (i, x) in bufs.enumerated() {
        let bad = x.indices.first { x[$0] != 3 * rankSum + Float(size * ($0 % 11)) }
        check("iallreduce in place \(sizes[i])", bad == nil, "element \(bad ?? -1) = \(bad.map { x[$0] } ?? 0)")
    }
}

// Average.
do {
    var x = (0..<1001).map { _ in Float(rank * 2) }
    x.withUnsafeMutableBufferPointer { comm.allreduceAverage($0.baseAddress!, count: $0.count, label: "check average") }
    let want = 2 * rankSum / Float(size)
    check("allreduce-average", x.allSatisfy { $0 == want }, "got \(x[0]), want \(want)")
}

// Metrics.
do {
    let v = [Double(rank), 1, -Double(rank)]
    let s = comm.allreduce(v, op: .sum, label: "check metrics sum")
    let mx = comm.allreduce(v, op: .max, label: "check metrics max")
    let mn = comm.allreduce(v, op: .min, label: "check metrics min")
    check("metrics", s == [Double(rankSum), Double(size), -Double(rankSum)] && mx == [Double(size - 1), 1, 0] && mn == [0, 1, -Double(size - 1)],
          "sum \(s) max \(mx) min \(mn)")
    check("metrics empty", comm.allreduce([], op: .sum, label: "check metrics empty").isEmpty)
}

// Broadcast from rank 0 (other ranks pass something else, which must be ignored).
do {
    let payload = (0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let got = comm.broadcast(rank == 0 ? payload : [1, 2, 3], label: "check broadcast")
    check("broadcast", got == payload, "got \(got.count) bytes")
    let empty = comm.broadcast(rank == 0 ? [] : [9], label: "check broadcast empty")
    check("broadcast empty", empty.isEmpty, "got \(empty.count) bytes")
}

// Variable-length allgather, rank 0's blob empty.
do {
    let mine = [UInt8](repeating: UInt8(truncatingIfNeeded: rank), count: rank * 1001)
    let all = comm.allgather(mine, label: "check allgather")
    let ok = all.count == size && all.enumerated().allSatisfy { r, b in b.count == r * 1001 && b.allSatisfy { $0 == UInt8(truncatingIfNeeded: r) } }
    check("allgather variable", ok, "lengths \(all.map(\.count))")
    let none = comm.allgather([], label: "check allgather empty")
    check("allgather empty", none.count == size && none.allSatisfy(\.isEmpty))
}

// Bucketed gradient passes: odd parameter sizes, small buckets, and a marking order that
// differs between ranks (even ranks last-to-first, odd ranks first-to-last, some never marked).
do {
    let counts = [5, 1000, 3, 777, 4096, 1, 2500, 64, 9999, 12]
    var layout: [GradientSlice] = []
    var off = 0
    for (i, n) in counts.enumerated() { layout.append(GradientSlice(name: "p\(i)", offset: off, count: n)); off += n }
    let total = off
    for mode in [BucketMode.overlapped, .blocking] {
        let bucketer: GradientBucketer
        do { bucketer = try GradientBucketer(layout: layout, bucketBytes: 4 * 3000, mode: mode, communicator: comm) } catch { fail("\(error)") }
        var g = (0..<total).map { Float(rank) + Float($0 % 13) }
        let stats: BucketPassStats = g.withUnsafeMutableBufferPointer { p in
            bucketer.markReady(0)  // outside a pass: ignored
            bucketer.begin(gradients: p.baseAddress!)
            let order = rank % 2 == 0 ? Array(layout.indices.reversed()) : Array(layout.indices)
            for i in order where i != 4 { bucketer.markReady(i) }
            return bucketer.finish()
        }
        let bad = g.indices.first { g[$0] != (rankSum + Float(size * ($0 % 13))) / Float(size) }
        check("buckets \(mode.rawValue)", bad == nil, "element \(bad ?? -1) = \(bad.map { g[$0] } ?? 0)")
        check("buckets \(mode.rawValue) bytes", stats.bytesReduced == 4 * total && stats.buckets == bucketer.buckets.count,
              "\(stats.bytesReduced) bytes in \(stats.buckets) buckets, want \(4 * total)")
    }
}

let failed = comm.allreduce([Double(failures.count)], op: .sum, label: "check summary")[0]
for f in failures { Console.errorRaw("FAIL rank \(rank): \(f)\n") }
say(failed == 0 ? "PASS: \(checks) checks on \(size) ranks" : "FAIL: \(Int(failed)) failed checks over \(size) ranks")
comm.finalize()
exit(failed == 0 ? 0 : 1)
