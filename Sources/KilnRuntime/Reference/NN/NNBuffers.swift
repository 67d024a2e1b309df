import KilnCore
import KilnGraph

// Buffer plumbing the neural-network kernels share, reference and framework: the wanted input
// gradients as writable float32 buffers (nil where not wanted), and an optional input (an absent
// bias) as an optional buffer.

extension ReferenceNN {
    /// Calls `body` with writable float32 buffers of the input gradients, nil where `needed` is false
    /// (those arrays are left as they are). The arrays are taken out of `gradients` for the call so
    /// that writing them does not copy them.
    static func withWantedGradients<R>(_ gradients: inout [NDArray], _ needed: [Bool],
                                       _ body: ([UnsafeMutableBufferPointer<Float>?]) throws -> R) rethrows -> R {
        var taken: [NDArray?] = gradients.indices.map { $0 < needed.count && needed[$0] ? gradients[$0] : nil }
        for i in gradients.indices where taken[i] != nil { gradients[i] = NDArray(zeros: []) }
        defer { for (i, t) in taken.enumerated() { if let t { gradients[i] = t } } }
        return try withMutableFloats(&taken, from: 0, [], body)
    }

    private static func withMutableFloats<R>(_ arrays: inout [NDArray?], from i: Int, _ collected: [UnsafeMutableBufferPointer<Float>?],
                                             _ body: ([UnsafeMutableBufferPointer<Float>?]) throws -> R) rethrows -> R {
        guard i < arrays.count else { return try body(collected) }
        guard var a = arrays[i] else { return try withMutableFloats(&arrays, from: i + 1, collected + [nil], body) }
        arrays[i] = nil
        defer { arrays[i] = a }
        return try a.withUnsafeMutableBufferPointer(as: Float.self) { try withMutableFloats(&arrays, from: i + 1, collected + [$0], body) }
    }
}

/// Calls `body` with an array's float32 elements, or with nil when there is no array (an absent bias).
func withOptionalFloats<R>(_ array: NDArray?, _ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
    guard let array else { return try body(nil) }
    return try array.withUnsafeBufferPointer(as: Float.self) { try body($0) }
}
