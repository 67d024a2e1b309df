import Foundation

/// The small set of whole-array helpers that tests and tools need. Kernels live in KilnRuntime.
extension NDArray {
    /// Elementwise combination of two float arrays of equal shape; the result is float32.
    public func zipMap(_ other: NDArray, _ op: (Float, Float) -> Float) throws -> NDArray {
        guard shape == other.shape else { throw KilnCoreError.shapeMismatch(operation: "An elementwise operation", shape, other.shape) }
        let a = floats(), b = other.floats()
        return NDArray(shape: shape, values: zip(a, b).map(op))
    }

    /// The array with `transform` applied to each element; the result is float32.
    public func map(_ transform: (Float) -> Float) -> NDArray {
        NDArray(shape: shape, values: floats().map(transform))
    }

    /// Sum of all elements.
    public func sum() -> Double { doubles().reduce(0, +) }
    /// Mean of all elements (0 for an empty array).
    public func mean() -> Double { elementCount == 0 ? 0 : sum() / Double(elementCount) }
    /// Largest element (nil for an empty array).
    public func max() -> Double? { doubles().max() }
    /// Smallest element (nil for an empty array).
    public func min() -> Double? { doubles().min() }
    /// Largest absolute value (0 for an empty array); NaN when any element is NaN, so that a summary
    /// never reports broken outputs as small ones (`Swift.max(0, .nan)` is 0).
    public func maxAbs() -> Double {
        var m = 0.0
        for v in doubles() {
            if v.isNaN { return .nan }
            m = Swift.max(m, abs(v))
        }
        return m
    }

    /// How many elements are NaN and how many infinite.
    public func nonFiniteCounts() -> (nan: Int, infinite: Int) {
        doubles().reduce(into: (nan: 0, infinite: 0)) { c, v in
            if v.isNaN { c.nan += 1 } else if v.isInfinite { c.infinite += 1 }
        }
    }

    /// Largest absolute elementwise difference to an array of the same shape.
    public func maxAbsDifference(_ other: NDArray) throws -> Double {
        guard shape == other.shape else { throw KilnCoreError.shapeMismatch(operation: "maxAbsDifference", shape, other.shape) }
        var m = 0.0
        for i in 0..<elementCount {
            let d = abs(element(i) - other.element(i))
            if d.isNaN { return .nan }
            m = Swift.max(m, d)
        }
        return m
    }

    /// Index of the largest element along the last axis, for each row of the leading axes.
    public func argmaxLastAxis() -> [Int] {
        guard let n = shape.dims.last, n > 0 else { return [] }
        let v = floats()
        return stride(from: 0, to: v.count, by: n).map { start in
            var best = start
            for j in start..<(start + n) where v[j] > v[best] { best = j }
            return best - start
        }
    }

    /// Normally distributed float32 values, reproducible for a given seed.
    public static func randomNormal(shape: Shape, mean: Float = 0, std: Float = 1, seed: UInt64) -> NDArray {
        var rng = SplitMix64(seed: seed)
        return NDArray(shape: shape, values: (0..<shape.elementCount).map { _ in mean + std * rng.nextGaussian() })
    }

    /// Uniformly distributed float32 values in `low..<high`, reproducible for a given seed.
    public static func randomUniform(shape: Shape, low: Float = 0, high: Float = 1, seed: UInt64) -> NDArray {
        var rng = SplitMix64(seed: seed)
        return NDArray(shape: shape, values: (0..<shape.elementCount).map { _ in low + (high - low) * rng.nextFloat() })
    }
}

/// A small, fast, seedable generator (SplitMix64); Kiln uses it wherever results must be reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
    /// Standard normal (Box-Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = Swift.max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

