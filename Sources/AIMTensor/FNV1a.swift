/// 64-bit FNV-1a over bytes: a stable, dependency-free fingerprint for names and lists (what a
/// cache or a checkpoint records to tell "the same" from "changed"), not a cryptographic hash.
public func fnv1a64<S: Sequence>(_ bytes: S, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where S.Element == UInt8 {
    var h = seed
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
