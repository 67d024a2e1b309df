import KilnCore

/// The reference kernels' one way of moving data: every output element, by its coordinates, names
/// the input and the coordinates it copies, or nothing for a fill value.
///
/// It works on raw bytes of `dtype.byteSize`, so data-movement ops handle every dtype, and it is
/// deliberately naive (coordinates unravelled and ravelled per element) so that it shares no index
/// arithmetic with the framework's contiguous-run copies it checks.
///
/// ```
/// transpose (2,3) -> (3,2):  out[i, j] = in[j, i]
///   output coords (i, j) --source--> (input 0, coords (j, i))
/// ```
enum ElementGather {
    /// Where an output element comes from: an input and its coordinates there.
    struct Source {
        var input: Int
        var coordinates: [Int]
    }

    /// Fills `output` element by element; `source` returns nil where `fill` (one element's bytes)
    /// goes instead.
    static func run(_ inputs: [NDArray], into output: inout NDArray, fill: [UInt8] = [],
                    source: ([Int]) -> Source?) {
        let size = output.dtype.byteSize
        let outDims = output.shape.dims
        let count = output.elementCount
        let inputStrides = inputs.map(\.shape.strides)
        let filler = fill.count == size ? fill : [UInt8](repeating: 0, count: size)
        withRawPointers(inputs) { sources in
            output.withUnsafeMutableBytes { out in
                guard let base = out.baseAddress else { return }
                for flat in 0..<count {
                    let target = base + flat * size
                    if let s = source(unravel(flat, outDims)) {
                        let offset = zip(s.coordinates, inputStrides[s.input]).reduce(0) { $0 + $1.0 * $1.1 }
                        target.copyMemory(from: sources[s.input] + offset * size, byteCount: size)
                    } else {
                        for k in 0..<size { target.storeBytes(of: filler[k], toByteOffset: k, as: UInt8.self) }
                    }
                }
            }
        }
    }

    /// The adjoint of ``run(_:into:fill:source:)``, for gradients: every element of every output
    /// gradient adds into the input element its `source` names (fill elements add nowhere). Where
    /// several output elements read one input element (Pad's edge and reflect borders) their
    /// gradients sum.
    ///
    /// Sums run in Double and replace `gradients[i]` for each input with `needed[i]`.
    ///
    /// ```
    /// edge pad (1, 1) of a row:   forward  a b c  ->  a | a b c | c
    ///                             backward ga = g0 + g1, gb = g2, gc = g3 + g4
    /// ```
    static func scatterAdd(_ outputGradients: [NDArray], into gradients: inout [NDArray], needed: [Bool],
                           source: (_ output: Int, _ coordinates: [Int]) -> Source?) {
        var totals = gradients.indices.map { needed[$0] ? [Double](repeating: 0, count: gradients[$0].elementCount) : [] }
        let strides = gradients.map(\.shape.strides)
        for (k, g) in outputGradients.enumerated() {
            let outDims = g.shape.dims
            for flat in 0..<g.elementCount {
                guard let s = source(k, unravel(flat, outDims)), needed[s.input] else { continue }
                let offset = zip(s.coordinates, strides[s.input]).reduce(0) { $0 + $1.0 * $1.1 }
                totals[s.input][offset] += g.element(flat)
            }
        }
        for i in gradients.indices where needed[i] {
            for (k, v) in totals[i].enumerated() { gradients[i].setElement(k, v) }
        }
    }

    /// C-order coordinates of flat index `flat` in an array of dims `dims`.
    static func unravel(_ flat: Int, _ dims: [Int]) -> [Int] {
        var c = [Int](repeating: 0, count: dims.count)
        var rest = flat
        for axis in stride(from: dims.count - 1, through: 0, by: -1) where dims[axis] > 0 {
            c[axis] = rest % dims[axis]
            rest /= dims[axis]
        }
        return c
    }

    /// One element of `dtype` holding `value`, as bytes (Pad's fill value).
    static func elementBytes(_ value: Double, _ dtype: DType) -> [UInt8] {
        let one = NDArray(shape: [1], dtype: dtype, values: [value])
        return one.withUnsafeBytes { Array($0) }
    }
}

/// Calls `body` with the base addresses of all arrays' element bytes.
func withRawPointers<R>(_ arrays: [NDArray], _ body: ([UnsafeRawPointer]) throws -> R) rethrows -> R {
    func step(_ i: Int, _ acc: [UnsafeRawPointer]) throws -> R {
        if i == arrays.count { return try body(acc) }
        return try arrays[i].withUnsafeBytes { buffer in
            // An NDArray's storage has at least one byte, so its base address is never nil.
            try step(i + 1, acc + [buffer.baseAddress ?? UnsafeRawPointer(emptyArrayBase)])
        }
    }
    return try step(0, [])
}

/// Stands in for the base address of an empty buffer, which is never read.
nonisolated(unsafe) let emptyArrayBase = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
