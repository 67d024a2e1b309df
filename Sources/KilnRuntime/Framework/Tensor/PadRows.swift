import KilnCore
import KilnGraph

/// Pad, row by row: an output row (all axes but the last fixed) either lies in the padding of some
/// outer axis, or reads one input row, chosen per axis by the mode. A row that reads input is its
/// left border, one contiguous copy of the input row, and its right border:
///
/// ```
/// reflect, last axis padded (2, 1):   input row  a b c d
///                                     output row c b | a b c d | c
/// ```
final class PadKernel: Kernel {
    let p: PadParameters
    let input: Shape
    let output: Shape
    let size: Int
    let fill: [UInt8]

    init(_ sig: KernelSignature) throws {
        input = sig.inputShapes[0]
        output = sig.outputShapes[0]
        p = try PadParameters(sig.node, input: input)
        size = sig.outputTypes[0].byteSize
        fill = ElementGather.elementBytes(p.value, sig.outputTypes[0])
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let rank = input.rank, last = rank - 1
        let n = input[last], width = output[last]
        let lead = p.before[last], rowBytes = width * size
        let inStrides = input.strides
        let rows = output.elementCount / max(width, 1)
        guard output.elementCount > 0 else { return }
        inputs[0].withUnsafeBytes { src in
            outputs[0].withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                // One row of the constant, copied wherever a whole row is padding.
                let constantRow = UnsafeMutableRawPointer.allocate(byteCount: max(rowBytes, 1), alignment: 64)
                defer { constantRow.deallocate() }
                fill.withUnsafeBytes { f in
                    for k in 0..<width { (constantRow + k * size).copyMemory(from: f.baseAddress ?? UnsafeRawPointer(emptyArrayBase), byteCount: size) }
                }
                var index = [Int](repeating: 0, count: last)
                for row in 0..<rows {
                    let out = d + row * rowBytes
                    var srcRow = 0
                    var inside = true
                    for axis in 0..<last {
                        guard let j = p.sourceIndex(index[axis], axis: axis, extent: input[axis]) else { inside = false; break }
                        srcRow += j * inStrides[axis]
                    }
                    if inside {
                        let from = s + srcRow * size
                        func border(_ k: Int) {
                            let element = p.sourceIndex(k, axis: last, extent: n).map { from + $0 * size } ?? UnsafeRawPointer(constantRow)
                            (out + k * size).copyMemory(from: element, byteCount: size)
                        }
                        for k in 0..<lead { border(k) }
                        (out + lead * size).copyMemory(from: from, byteCount: n * size)
                        for k in (lead + n)..<width { border(k) }
                    } else {
                        out.copyMemory(from: constantRow, byteCount: rowBytes)
                    }
                    var axis = last - 1
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < output[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}
