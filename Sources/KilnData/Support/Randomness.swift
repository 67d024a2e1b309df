// Reproducible randomness for the data pipeline.
//
// Every random choice in KilnData comes from a SplitMix64 stream derived by hashing a user seed with
// a purpose, an epoch and, for per-sample work, the sample's index:
//
//     seed 7, epoch 2 ──> shuffle stream of epoch 2      (the order of the data set)
//     seed 7, epoch 2, index 41 ──> SampleGenerator      (sample 41's crop offset, flip, ...)
//
// A sample's stream depends on nothing else (not on the worker that loads it, nor on what was
// loaded before), so a DataLoader with 0 or 8 workers produces the same batches.
import KilnCore

/// The random-number generator a transform draws from for one sample.
///
/// It is derived from the loader's seed, the epoch and the sample's index, so a sample's random
/// choices are the same whichever worker thread loads it.
public struct SampleGenerator: RandomNumberGenerator, Sendable {
    private var base: SplitMix64

    /// The generator of sample `index` in `epoch` for a loader seeded with `seed`.
    public init(seed: UInt64, epoch: Int, index: Int) {
        base = SplitMix64(seed: mixSeed(seed, purpose: 0x5A4D_504C, UInt64(bitPattern: Int64(epoch)),
                                        UInt64(bitPattern: Int64(index))))
    }

    public mutating func next() -> UInt64 { base.next() }

    /// Uniform in [0, 1).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform in `0..<bound` (bound > 0), without modulo bias.
    public mutating func nextInt(below bound: Int) -> Int { uniformInt(below: bound, using: &self) }
}

/// Hashes a seed with a purpose tag and further values into a new seed.
func mixSeed(_ seed: UInt64, purpose: UInt64, _ values: UInt64...) -> UInt64 {
    var g = SplitMix64(seed: seed ^ (purpose &* 0xD6E8_FEB8_6659_FD93))
    var h = g.next()
    for v in values {
        g = SplitMix64(seed: h ^ (v &* 0x9E37_79B9_7F4A_7C15))
        h = g.next()
    }
    return h
}

/// Uniform in `0..<bound` by rejection, written out so that the stream of values does not depend on
/// the standard library's `Int.random(in:using:)`, whose algorithm is not promised to stay fixed.
func uniformInt<G: RandomNumberGenerator>(below bound: Int, using generator: inout G) -> Int {
    precondition(bound > 0, "uniformInt needs a positive bound")
    let n = UInt64(bound)
    let limit = UInt64.max - UInt64.max % n
    while true {
        let r = generator.next()
        if r < limit { return Int(r % n) }
    }
}

/// A uniformly random permutation of `0..<count` (Fisher-Yates), from the shuffle stream of
/// `seed` and `epoch`.
func shuffledIndices(count: Int, seed: UInt64, epoch: Int) -> [Int] {
    var order = Array(0..<count)
    var g = SplitMix64(seed: mixSeed(seed, purpose: 0x5348_5546, UInt64(bitPattern: Int64(epoch))))
    var i = count - 1
    while i > 0 {
        let j = uniformInt(below: i + 1, using: &g)
        order.swapAt(i, j)
        i -= 1
    }
    return order
}
