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
