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
///
/// Backward walks the same rows the other way. In constant mode each input row is read by exactly
/// one output row, so its gradient is a copy of that row's middle (the crop). In edge and reflect
/// modes border elements and whole border rows were copies too, and their gradients add into the
/// elements they copied (as MXNet's pad.cc does): `ga += g1 + g0` for the reflected `c b` above.
final class PadKernel: Kernel {
    let p: PadParameters
    let input: Shape
    let output: Shape
    let size: Int
    let fill: [UInt8]
    let type: DType
    /// Edge and reflect gradients of dtypes other than float32 go through the reference kernel.
    let referenceBackward: (any Kernel)?

    init(_ sig: KernelSignature) throws {
        input = sig.inputShapes[0]
        output = sig.outputShapes[0]
        p = try PadParameters(sig.node, input: input)
        type = sig.outputTypes[0]
        size = type.byteSize
        fill = ElementGather.elementBytes(p.value, type)
        referenceBackward = p.mode != .constant && type != .float32 ? try ReferenceKernels.pad(sig) : nil
    }

    /// Calls `body(outputRow, inputRowStart)` for every output row, with the element offset of the
    /// input row it reads, or nil for a row of the constant.
    private func forEachRow(_ body: (Int, Int?) -> Void) {
        let last = input.rank - 1
        let width = output[last]
        guard output.elementCount > 0, width > 0 else { return }
        let inStrides = input.strides
        var index = [Int](repeating: 0, count: last)
        for row in 0..<(output.elementCount / width) {
            var srcRow: Int? = 0
            for axis in 0..<last {
                guard let j = p.sourceIndex(index[axis], axis: axis, extent: input[axis]) else { srcRow = nil; break }
                srcRow? += j * inStrides[axis]
            }
            body(row, srcRow)
            var axis = last - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < output[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let last = input.rank - 1
        let n = input[last], width = output[last]
        let lead = p.before[last], rowBytes = width * size, size = self.size
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
                forEachRow { row, srcRow in
                    let out = d + row * rowBytes
                    guard let srcRow else {
                        out.copyMemory(from: constantRow, byteCount: rowBytes)
                        return
                    }
                    let from = s + srcRow * size
                    func border(_ k: Int) {
                        let element = p.sourceIndex(k, axis: last, extent: n).map { from + $0 * size } ?? UnsafeRawPointer(constantRow)
                        (out + k * size).copyMemory(from: element, byteCount: size)
                    }
                    for k in 0..<lead { border(k) }
                    (out + lead * size).copyMemory(from: from, byteCount: n * size)
                    for k in (lead + n)..<width { border(k) }
                }
            }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        if let reference = referenceBackward {
            return try reference.backward(inputs, outputs, outputGradients, &inputGradients, needed: needed)
        }
        let last = input.rank - 1
        let n = input[last], width = output[last], lead = p.before[last], size = self.size
        if p.mode == .constant {
            // The crop: the middle of every row that read input, copied back; any dtype.
            outputGradients[0].withUnsafeBytes { g in
                inputGradients[0].withUnsafeMutableBytes { dx in
                    guard let gs = g.baseAddress, let d = dx.baseAddress else { return }
                    forEachRow { row, srcRow in
                        guard let srcRow else { return }
                        (d + srcRow * size).copyMemory(from: gs + (row * width + lead) * size, byteCount: n * size)
                    }
                }
            }
            return
        }
        outputGradients[0].withUnsafeBufferPointer(as: Float.self) { g in
            inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                forEachRow { row, srcRow in
                    // Edge and reflect map every row to an input row.
                    guard let srcRow else { return }
                    let out = row * width
                    for j in 0..<n { dx[srcRow + j] += g[out + lead + j] }
                    func border(_ k: Int) {
                        if let j = p.sourceIndex(k, axis: last, extent: n) { dx[srcRow + j] += g[out + k] }
                    }
                    for k in 0..<lead { border(k) }
                    for k in (lead + n)..<width { border(k) }
                }
            }
        }
    }
}
