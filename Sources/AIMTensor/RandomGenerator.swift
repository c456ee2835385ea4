import Foundation

/// A small, seedable, splittable random generator (SplitMix64 seeding a xoshiro256**).
///
/// Every random choice in training (init, dropout masks, sampler offsets, crops) is drawn from
/// a generator derived from explicit keys such as (seed, epoch, sample index), never from a
/// shared global stream, so the result does not depend on threads or ranks.
public struct RandomGenerator: RandomNumberGenerator, Equatable, Sendable {
    public var state: (UInt64, UInt64, UInt64, UInt64) {
        get { (s0, s1, s2, s3) }
        set { (s0, s1, s2, s3) = newValue }
    }
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func next() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = next(); s1 = next(); s2 = next(); s3 = next()
    }

    /// A generator keyed by several integers, e.g. `RandomGenerator(keys: seed, epoch, index)`.
    public init(keys: UInt64...) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for k in keys {
            h ^= k
            h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
            h = (h ^ (h >> 33)) &* 0xC4CE_B9FE_1A85_EC53
            h ^= h >> 33
        }
        self.init(seed: h)
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (exact in Float).
    public mutating func uniformFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        var u1 = uniformDouble()
        while u1 <= 0 { u1 = uniformDouble() }
        let u2 = uniformDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// `count` normal values × `std` by Marsaglia's polar method (numpy's legacy `gauss`): a log
    /// and a square root for two values where `normal()` takes a log, a root and a cosine for one.
    /// `within`: values outside ±within are drawn again, as timm's trunc_normal_(std, a: -within,
    /// b: within) does.
    public mutating func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, std: Float, within: Float = .infinity) {
        var i = 0
        while i < count {
            let x = 2 * uniformDouble() - 1, y = 2 * uniformDouble() - 1, s = x * x + y * y
            guard s < 1 && s > 0 else { continue }
            let f = (-2 * _log(s) / s).squareRoot()
            let v0 = Float(x * f) * std, v1 = Float(y * f) * std
            if abs(v0) <= within { out[i] = v0; i += 1 }
            if i < count && abs(v1) <= within { out[i] = v1; i += 1 }
        }
    }

    /// Uniform integer in 0..<n.
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs n > 0")
        return Int(next(upperBound: UInt64(n)))
    }

    public static func == (a: RandomGenerator, b: RandomGenerator) -> Bool {
        a.s0 == b.s0 && a.s1 == b.s1 && a.s2 == b.s2 && a.s3 == b.s3
    }
}

@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
