import KilnCore
import KilnGraph

// Fast byte copies for the framework's data-movement kernels.
//
// Slicing, splitting and concatenating along an axis of a C-ordered array move contiguous runs: seen
// as (outer, axis, inner), each of the `outer` blocks contributes one run of `extent * inner`
// elements. A transposition is a strided gather; after merging axes that stay adjacent it is often a
// set of contiguous runs too (0,2,1,3 keeps the last axis whole), and otherwise an element loop.
enum RunCopy {
    /// Copies `count` runs of `runBytes`, run k from `src + k*srcStride` to `dst + k*dstStride`.
    static func runs(count: Int, runBytes: Int, from src: UnsafeRawPointer, srcStride: Int,
                     to dst: UnsafeMutableRawPointer, dstStride: Int) {
        guard runBytes > 0 else { return }
        for k in 0..<count {
            (dst + k * dstStride).copyMemory(from: src + k * srcStride, byteCount: runBytes)
        }
    }

    /// Writes the strided view of `src` with extents `dims` and element strides `strides` into `dst`
    /// in C order.
    static func gather(dims: [Int], strides: [Int], elementSize: Int, from src: UnsafeRawPointer,
                       to dst: UnsafeMutableRawPointer) {
        let (d, s) = coalesce(dims: dims, strides: strides)
        let total = d.reduce(1, *)
        guard total > 0 else { return }
        guard let innerExtent = d.last, let innerStride = s.last else {
            dst.copyMemory(from: src, byteCount: elementSize)
            return
        }
        // The odometer walks the outer axes; the innermost axis is one run or one strided row.
        let outerDims = Array(d.dropLast()), outerStrides = Array(s.dropLast())
        var index = [Int](repeating: 0, count: outerDims.count)
        var srcOffset = 0
        var out = dst
        let rows = total / innerExtent
        for _ in 0..<rows {
            let row = src + srcOffset * elementSize
            if innerStride == 1 {
                out.copyMemory(from: row, byteCount: innerExtent * elementSize)
            } else {
                stridedRow(row, stride: innerStride, count: innerExtent, elementSize: elementSize, to: out)
            }
            out += innerExtent * elementSize
            var axis = outerDims.count - 1
            while axis >= 0 {
                index[axis] += 1
                srcOffset += outerStrides[axis]
                if index[axis] < outerDims[axis] { break }
                srcOffset -= outerStrides[axis] * outerDims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Drops axes of extent 1 and merges neighbours whose strides make them one axis.
    static func coalesce(dims: [Int], strides: [Int]) -> ([Int], [Int]) {
        var d: [Int] = [], s: [Int] = []
        for (n, st) in zip(dims, strides) where n != 1 {
            if let lastN = d.last, let lastS = s.last, lastS == st * n {
                d[d.count - 1] = lastN * n
                s[s.count - 1] = st
            } else {
                d.append(n)
                s.append(st)
            }
        }
        return (d, s)
    }

    @inline(__always)
    static func stridedRow(_ src: UnsafeRawPointer, stride: Int, count: Int, elementSize: Int, to dst: UnsafeMutableRawPointer) {
        switch elementSize {
        case 4: copy(UInt32.self, src, stride, count, dst)
        case 2: copy(UInt16.self, src, stride, count, dst)
        case 8: copy(UInt64.self, src, stride, count, dst)
        case 1: copy(UInt8.self, src, stride, count, dst)
        default:
            for i in 0..<count { (dst + i * elementSize).copyMemory(from: src + i * stride * elementSize, byteCount: elementSize) }
        }
    }

    @inline(__always)
    static func copy<T>(_: T.Type, _ src: UnsafeRawPointer, _ stride: Int, _ count: Int, _ dst: UnsafeMutableRawPointer) {
        let s = src.assumingMemoryBound(to: T.self), d = dst.assumingMemoryBound(to: T.self)
        for i in 0..<count { d[i] = s[i * stride] }
    }
}

/// Pieces of a C-ordered array along one axis, piece k covering `[start_k, start_k + extent_k)` of
/// it: Concat's inputs, SliceChannel's outputs, slice_axis's one output. Each piece is, in each of
/// the `outer` blocks of the whole, one contiguous run, so moving a piece out of the whole or back
/// in is `outer` copies:
///
/// ```
/// whole (2, 5, 3) along axis 1, pieces [0, 2) and [2, 5):
///   block 0: | piece 0: 6 elements | piece 1: 9 elements |
///   block 1: | piece 0: 6 elements | piece 1: 9 elements |
/// ```
///
/// Forward of one op is the backward of the other: Concat joins forward and splits its gradient;
/// SliceChannel and slice_axis split forward and join theirs.
struct AxisPieces {
    /// Product of the whole's dims before the axis.
    let outer: Int
    /// Bytes of one outer block of the whole.
    let blockBytes: Int
    /// Byte offset of each piece's run inside a block.
    let offsets: [Int]
    /// Bytes of each piece's run.
    let runBytes: [Int]

    init(whole: Shape, axis: Int, ranges: [(start: Int, extent: Int)], elementSize: Int) {
        let split = AxisSplit(whole, axis: axis)
        outer = split.outer
        blockBytes = split.extent * split.inner * elementSize
        offsets = ranges.map { $0.start * split.inner * elementSize }
        runBytes = ranges.map { $0.extent * split.inner * elementSize }
    }

    /// Pieces of the given extents laid end to end along the axis.
    init(whole: Shape, axis: Int, extents: [Int], elementSize: Int) {
        let starts = extents.reduce(into: [0]) { $0.append(($0.last ?? 0) + $1) }
        self.init(whole: whole, axis: axis, ranges: extents.indices.map { (starts[$0], extents[$0]) }, elementSize: elementSize)
    }

    /// Copies piece `k` out of `whole` into its own array.
    func copyOut(_ k: Int, from whole: UnsafeRawPointer, to piece: UnsafeMutableRawPointer) {
        RunCopy.runs(count: outer, runBytes: runBytes[k], from: whole + offsets[k], srcStride: blockBytes,
                     to: piece, dstStride: runBytes[k])
    }

    /// Copies piece `k` from its own array into its place in `whole`.
    func copyIn(_ k: Int, from piece: UnsafeRawPointer, to whole: UnsafeMutableRawPointer) {
        RunCopy.runs(count: outer, runBytes: runBytes[k], from: piece, srcStride: runBytes[k],
                     to: whole + offsets[k], dstStride: blockBytes)
    }

    /// `copyOut` between arrays.
    func copyOut(_ k: Int, from whole: NDArray, to piece: inout NDArray) {
        whole.withUnsafeBytes { src in
            piece.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                copyOut(k, from: s, to: d)
            }
        }
    }

    /// `copyIn` between arrays.
    func copyIn(_ k: Int, from piece: NDArray, to whole: inout NDArray) {
        piece.withUnsafeBytes { src in
            whole.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                copyIn(k, from: s, to: d)
            }
        }
    }
}
