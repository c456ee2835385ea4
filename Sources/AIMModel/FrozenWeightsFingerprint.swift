import AIMTensor

// A checkpoint holds the tunable weights only; the frozen ones come back from `model.pretrained`
// (or the seed) when the run resumes or is evaluated. Another backbone file there — a re-export, a
// ViT of other pretraining under the same name — would go unnoticed and give wrong numbers, so each
// checkpoint records a hash of the frozen values it was trained with, and loading compares it.

extension Recognizer {
    /// A hash of every frozen parameter's fp32 values, in registration order ("fnv1a64x4:<hex>").
    /// Nil for a model with nothing frozen (full finetuning: there is nothing to compare), and once
    /// any of them was given back (bf16): take it before `releaseFrozenFP32Weights`.
    public func frozenWeightsFingerprint() -> String? {
        store.parameters.contains { !$0.tunable } ? weightsFingerprint(tunable: false) : nil
    }

    /// What checkpoints written before a model without frozen weights recorded nil recorded: the
    /// hash of no parameters, which says nothing about the frozen weights of another model.
    public static let fingerprintOfNothing = "fnv1a64x4:cbf29ce484222325"

    /// The same hash over the frozen or over the tunable parameters.
    public func weightsFingerprint(tunable: Bool) -> String? {
        let params = store.parameters.filter { $0.tunable == tunable }
        guard !params.contains(where: \.fp32Released) else { return nil }
        var hashes = [UInt64](repeating: 0, count: params.count)
        hashes.withUnsafeMutableBufferPointer { out in
            let out = out
            Threads.parallelFor(params.count) { range in
                for i in range { out[i] = Self.hashWords(params[i].data, count: params[i].count) }
            }
        }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (p, ph) in zip(params, hashes) {
            for word in [fnv1a64(p.name.utf8), UInt64(p.count), ph] { h = (h ^ word) &* 0x100_0000_01b3 }
        }
        return "fnv1a64x4:" + String(h, radix: 16)
    }

    /// FNV-1a over 32-bit words in four interleaved lanes (one serial chain ran at a multiply's
    /// latency per word: 0.1 s for ViT-B/16's 86 M frozen values).
    static func hashWords(_ p: UnsafePointer<Float>, count n: Int) -> UInt64 {
        let prime: UInt64 = 0x100_0000_01b3
        var l0: UInt64 = 0xcbf2_9ce4_8422_2325, l1 = l0 ^ 1, l2 = l0 ^ 2, l3 = l0 ^ 3
        let words = UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self)
        var i = 0
        while i + 4 <= n {
            l0 = (l0 ^ UInt64(words[i])) &* prime; l1 = (l1 ^ UInt64(words[i + 1])) &* prime
            l2 = (l2 ^ UInt64(words[i + 2])) &* prime; l3 = (l3 ^ UInt64(words[i + 3])) &* prime
            i += 4
        }
        while i < n { l0 = (l0 ^ UInt64(words[i])) &* prime; i += 1 }
        return (((l0 ^ l1) &* prime ^ l2) &* prime ^ l3) &* prime
    }
}
