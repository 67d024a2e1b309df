import Foundation

/// A histogram of |x| over `[0, range]` in ``binCount`` equal bins, whose range can grow between
/// batches without going back to the data.
///
/// ```
/// range 4:  | 5 | 3 | 1 | 0 |         a value of 6 arrives: merge pairs, double the range
/// range 8:  | 8 | 1 | 0 | 0 |  then count 6 in bin 3 ->  | 8 | 1 | 0 | 1 |
/// ```
///
/// Growing merges adjacent pairs of bins, so counts stay exact (each old bin falls wholly in one new
/// bin) at the cost of halving the resolution each time. The first batch sets the range to its own
/// largest |x|, which most later batches do not exceed by much.
public struct AbsHistogram: Sendable, Equatable {
    /// The number of bins (TensorRT's 2048).
    public static let binCount = 2048

    /// Counts per bin; bin k holds |x| in `[k, k+1) * range / binCount` (the last one includes `range`).
    public private(set) var counts: [Int]
    /// The upper end of the last bin; 0 while only zeros have been seen (they are in bin 0).
    public private(set) var range: Float

    public init() {
        counts = [Int](repeating: 0, count: Self.binCount)
        range = 0
    }

    /// A histogram with these counts over `[0, range]` (for tests and for tables made elsewhere).
    /// `counts` must have ``binCount`` entries.
    public init(counts: [Int], range: Float) {
        precondition(counts.count == Self.binCount, "an AbsHistogram has \(Self.binCount) bins")
        self.counts = counts
        self.range = range
    }

    /// The width of one bin.
    public var binWidth: Float { range / Float(Self.binCount) }

    /// Makes the range at least `maxAbs`, merging pairs of bins as often as needed.
    public mutating func grow(toCover maxAbs: Float) {
        guard maxAbs.isFinite, maxAbs > range else { return }
        if range == 0 {
            // Only zeros so far, all in bin 0, which stays bin 0 at any range.
            range = maxAbs
            return
        }
        while range < maxAbs {
            for k in 0..<(Self.binCount / 2) { counts[k] = counts[2 * k] + counts[2 * k + 1] }
            for k in (Self.binCount / 2)..<Self.binCount { counts[k] = 0 }
            range *= 2
        }
    }

    /// Counts the finite elements of `values`; the range must already cover them (``grow(toCover:)``).
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let last = Self.binCount - 1
        guard range > 0 else {
            counts[0] += values.reduce(0) { $1 == 0 ? $0 + 1 : $0 }
            return
        }
        let perUnit = Float(Self.binCount) / range
        counts.withUnsafeMutableBufferPointer { c in
            for v in values where v.isFinite {
                // |v| <= range, so the index is at most binCount (rounding) and clamps to the last bin.
                c[Swift.min(Int(abs(v) * perUnit), last)] += 1
            }
        }
    }

    /// The number of values counted.
    public var total: Int { counts.reduce(0, +) }
}

/// The entropy (Kullback-Leibler) calibration of TensorRT ("8-bit inference with TensorRT", GTC 2017)
/// and MXNet's `_get_optimal_threshold`, on a histogram of |x|.
///
/// For each candidate threshold of `i` bins (i from the number of quantized levels to all 2048):
/// - P: the first `i` bins, with every count beyond them added to bin `i - 1` (clipping);
/// - Q: the first `i` bins (without the clipped counts) merged into `levels` groups of `i / levels`
///   bins (the last takes the remainder), each group's sum spread evenly over its bins that are
///   non-zero in P: what the quantized tensor can express;
/// - both smoothed as MXNet does (zeros get 1e-4, the others give it back), normalized, and
///   KL(P || Q) = sum p log(p / q).
///
/// The threshold is the upper edge of bin `i - 1` for the `i` of least divergence (the first on ties).
/// `levels` is 128 for signed values (s8 holds |x| in 0...127) and 256 for values known non-negative
/// (u8 holds 0...255): MXNet's `num_quantized_bins` 255 over a signed histogram, and its
/// 2 x 255 + 1 for uint8.
public enum EntropyCalibration {
    /// MXNet's `num_quantized_bins`: the number of int8 levels over the signed range.
    public static let quantizedBins = 255

    /// The number of levels |x| gets: 128 for s8, 256 for u8.
    public static func levels(unsigned: Bool) -> Int { unsigned ? quantizedBins + 1 : quantizedBins / 2 + 1 }

    /// The KL-optimal clipping threshold of the values counted in `histogram`, for values quantized
    /// to u8 (`unsigned`) or s8. 0 for an empty histogram or one of zeros only.
    public static func optimalThreshold(_ histogram: AbsHistogram, unsigned: Bool) -> Float {
        let counts = histogram.counts
        let bins = counts.count
        let levels = levels(unsigned: unsigned)
        guard histogram.range > 0, histogram.total > 0 else { return 0 }
        // Counts beyond bin i-1, for every i: suffix[i] = sum(counts[i...]).
        var suffix = [Int](repeating: 0, count: bins + 1)
        for k in stride(from: bins - 1, through: 0, by: -1) { suffix[k] = suffix[k + 1] + counts[k] }

        var best = (divergence: Double.infinity, bins: bins)
        var p = [Double](repeating: 0, count: bins)
        var q = [Double](repeating: 0, count: bins)
        for i in levels...bins {
            for k in 0..<i { p[k] = Double(counts[k]) }
            p[i - 1] += Double(suffix[i])

            let merged = i / levels
            for j in 0..<levels {
                let start = j * merged, stop = j == levels - 1 ? i : start + merged
                var sum = 0.0, nonZero = 0
                for k in start..<stop {
                    sum += Double(counts[k])
                    if p[k] != 0 { nonZero += 1 }
                }
                let share = nonZero == 0 ? 0 : sum / Double(nonZero)
                for k in start..<stop { q[k] = p[k] == 0 ? 0 : share }
            }
            guard let d = divergence(p, q, count: i) else { continue }
            if d < best.divergence { best = (d, i) }
        }
        let threshold = Float(best.bins) * histogram.binWidth
        return threshold
    }

    /// KL(P || Q) over the first `count` entries after MXNet's smoothing (`_smooth_distribution`,
    /// eps 1e-4); nil when Q has no mass (the candidate is skipped, as MXNet's infinite divergence).
    static func divergence(_ p: [Double], _ q: [Double], count: Int) -> Double? {
        let eps = 0.0001
        func smoothed(_ x: [Double]) -> (zeros: Double, minus: Double, sum: Double)? {
            var zeros = 0, sum = 0.0
            for k in 0..<count { if x[k] == 0 { zeros += 1 } else { sum += x[k] } }
            let nonZeros = count - zeros
            guard nonZeros > 0 else { return nil }
            let minus = eps * Double(zeros) / Double(nonZeros)
            // After smoothing the total is unchanged: zeros gain eps each, the others lose `minus`.
            return (eps, minus, sum)
        }
        guard let sp = smoothed(p), let sq = smoothed(q) else { return nil }
        var kl = 0.0
        for k in 0..<count {
            let pk = (p[k] == 0 ? sp.zeros : p[k] - sp.minus) / sp.sum
            let qk = (q[k] == 0 ? sq.zeros : q[k] - sq.minus) / sq.sum
            // MXNet asserts smoothing leaves nothing at or below zero; a bin below eps1 could, and
            // scipy's entropy would then be undefined: such a candidate is skipped.
            guard pk > 0, qk > 0 else { return nil }
            kl += pk * log(pk / qk)
        }
        return kl
    }
}
