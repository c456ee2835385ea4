import AIMData
import AIMModel
import AIMTensor
import Foundation

/// Video loading against the compute it feeds (issue 4): clips/s of the K400 training pipeline
/// (decode + sample 8 frames + Resize/RandomResizedCrop/Flip/Normalize to 8×224²) from 320p
/// H.264 with 1 and 2 loader threads, the extra cost of SSv2's RandAugment, and the time one
/// ViT-B/16 AIM training step spends on a clip, i.e. the rate the loader must sustain.
struct DecodeSection: BenchSection {
    let title = "Video loading: 8×224² clips from 320p H.264"
    let summary = """
        `DecodeBenchmark` (AIMData): 4 generated 568×320 H.264 files (250 frames, B-frames), the K400 \
        8-frame train pipeline (clip_len 8, interval 16, Resize(-1, 256), RandomResizedCrop, 224², flip, \
        normalise), each thread loading its own clips at once; rounds alternate the thread counts. \
        The step row is one forward + backward of ViT-B/16 AIM on one clip (batch 1) with the benchmark's \
        threads: the loader keeps up when its clips/s exceed 1 / step time.
        """

    func run(_ context: BenchContext) throws -> [BenchTable] {
        let dir = NSTemporaryDirectory() + "aim-decode-bench"
        context.log("decode: writing 320p H.264 files in \(dir) (kept between runs)")
        let paths = try DecodeBenchmark.makeVideos(in: dir)
        let rounds = max(1, min(context.repeats, 3)), clipsPerThread = 8
        var perThreads: [Int: [DecodeBenchmark.Result]] = [1: [], 2: []]
        for round in 0..<rounds {
            for t in round % 2 == 0 ? [1, 2] : [2, 1] {
                let r = try DecodeBenchmark.run(paths: paths, threads: t, clipsPerThread: clipsPerThread)
                context.log("  decode: \(t) thread(s), round \(round): \(fixed(r.clipsPerSecond, 2)) clips/s")
                perThreads[t]!.append(r)
            }
        }

        // RandAugment(n=4, m=7) on one decoded clip, apart from decoding.
        var stack = FrameStack(count: 8, height: 224, width: 224)
        var g = RandomGenerator(keys: 5)
        for i in 0..<stack.pixels.count { stack.pixels[i] = UInt8(truncatingIfNeeded: g.next()) }
        let ra = RandAugment(n: 4, m: 7)
        let plans = (0..<16).map { k -> RandAugment.Plan in var r = RandomGenerator(keys: 6, UInt64(k)); return ra.plan(rng: &r) }
        let augment = timeSideBySide(repeats: 1, [{ for p in plans { _ = ra.apply(p, to: stack) } }])[0]
        let augmentPerClip = augment.median / 16

        let step = try stepSeconds(context)
        var table = BenchTable(title: "Clips per second", columns: ["what", "clips/s (min / median / max)", "ms per clip (at the median rate)", "× one step's need"])
        for t in [1, 2] {
            let rates = perThreads[t]!.map(\.clipsPerSecond)
            let tm = Timing(samples: rates)
            table.rows.append(["decode + K400 train pipeline, \(t) loader thread\(t == 1 ? "" : "s")",
                               "\(fixed(tm.min, 2)) / \(fixed(tm.median, 2)) / \(fixed(tm.max, 2))",
                               fixed(1000 / tm.median, 1), fixed(tm.median * step, 1)])
        }
        table.rows.append(["RandAugment(n=4, m=7) alone on a decoded 8×224² clip, 1 thread", fixed(1 / augmentPerClip, 1),
                           fixed(augmentPerClip * 1000, 1), fixed(step / augmentPerClip, 1)])
        table.rows.append(["ViT-B/16 AIM training step (forward + backward), \(context.threads) thread(s)", fixed(1 / step, 3),
                           fixed(step * 1000, 0), "1.0"])
        table.notes.append("\(rounds) round(s) of \(clipsPerThread) clips per thread, after one warm-up clip; RandAugment over 16 sampled plans. " +
                           "“× one step's need” = loader clips/s × step seconds: above 1 the loader is not the bottleneck " +
                           "(with loader threads beside the training threads on the same cores, both slow down).")
        return [table]
    }

    /// Median seconds of one AIM ViT-B/16 8-frame training step on one clip (1 warm-up, 2 timed).
    func stepSeconds(_ context: BenchContext) throws -> Double {
        var c = ModelConfig()
        c.dropPathRate = 0; c.headDropout = 0
        let model = try Recognizer(config: c, seed: 1)
        let video = Buffer(3 * c.numFrames * c.inputResolution * c.inputResolution, seed: 7)
        let dLogits = Tensor([1, c.numClasses])
        let labels = [3]
        var times: [Double] = []
        for round in 0..<3 {
            let t = try seconds {
                let logits = try model.forward(video: video.data, context: PassContext(batch: 1, training: true, step: UInt64(round)))
                labels.withUnsafeBufferPointer {
                    crossEntropyBackward(dLogits: dLogits.data, logits: logits.data, labels: $0.baseAddress!, batch: 1, classes: c.numClasses)
                }
                model.store.zeroGrads()
                try model.backward(dLogits: dLogits.data)
            }
            context.log("  decode: training step round \(round): \(fixed(t, 2)) s")
            if round > 0 { times.append(t) }
        }
        return Timing(samples: times).median
    }
}
