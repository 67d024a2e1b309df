import CDNNL
import Foundation
import KilnCore
import KilnGraph

/// `softmax`, `log_softmax` and `SoftmaxOutput` on oneDNN's softmax and logsoftmax primitives.
///
/// Every case is a softmax along axis 1 of a plain (outer, n, inner) view of the array (see
/// ``SoftmaxLines``). A temperature T ≠ 1 first scales the input by 1/T into the output with an eltwise
/// linear step; the softmax then runs in place on the output.
///
/// oneDNN 2.6 has a fast softmax only along a dense last axis (inner = 1); along other axes it picks
/// its reference implementation. Measured on 1x21x256x256 (2 cores, release build): 121 ms along
/// axis 1 against 3.7 ms along the last axis; ``StridedSoftmaxKernel`` does axis 1 in 10 ms, so
/// strided lines run there.
///
/// Backward runs oneDNN's softmax backward on dense lines (``SoftmaxBackward``, made on the first
/// backward so inference binds do not pay for it) and Swift loops on strided ones.
final class SoftmaxKernel: Kernel {
    let lines: SoftmaxLines
    var gradient: SoftmaxBackward?
    let scale: DNNLPrimitive?
    let softmax: DNNLPrimitive
    let source: DNNLMemory, destination: DNNLMemory
    let outOfPlace: [(Int32, DNNLMemory)], inPlace: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let node: String

    static func make(_ sig: KernelSignature, lines: SoftmaxLines) throws -> any Kernel {
        guard ElementwiseDNNL.suits(sig) else { return try ElementwiseDNNL.reference(sig) }
        if lines.inner > 1 { return try StridedSoftmaxKernel(lines, node: sig.node.name) }
        return try SoftmaxKernel(lines, node: sig.node.name)
    }

    init(_ lines: SoftmaxLines, node: String) throws {
        self.lines = lines
        var desc = try ElementwiseDNNL.plainDesc([lines.outer, lines.n, lines.inner], node: node)
        scale = lines.temperature == 1 ? nil
            : try ElementwiseDNNL.eltwise(EltwiseStep(dnnl_eltwise_linear, Float(1 / lines.temperature), 0), desc: desc, node: node)
        if lines.logarithm {
            var d = dnnl_logsoftmax_desc_t()
            try DNNL.check(dnnl_logsoftmax_forward_desc_init(&d, dnnl_forward_inference, &desc, 1), "dnnl_logsoftmax_forward_desc_init", node: node)
            softmax = try withUnsafePointer(to: &d) { try DNNLPrimitive(opDesc: $0, node: node, what: "logsoftmax") }
        } else {
            var d = dnnl_softmax_desc_t()
            try DNNL.check(dnnl_softmax_forward_desc_init(&d, dnnl_forward_inference, &desc, 1), "dnnl_softmax_forward_desc_init", node: node)
            softmax = try withUnsafePointer(to: &d) { try DNNLPrimitive(opDesc: $0, node: node, what: "softmax") }
        }
        source = try ElementwiseDNNL.memory(desc, node: node)
        destination = try ElementwiseDNNL.memory(desc, node: node)
        outOfPlace = [(DNNLArg.src, source), (DNNLArg.dst, destination)]
        inPlace = [(DNNLArg.src, destination), (DNNLArg.dst, destination)]
        stream = try DNNLStream(node: node)
        self.node = node
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try source.setPointer(inputs[0].sourcePointer, node: node)
        try destination.setPointer(outputs[0].destinationPointer, node: node)
        if let scale {
            try scale.execute(outOfPlace, stream: stream)
            try softmax.execute(inPlace, stream: stream)
        } else {
            try softmax.execute(outOfPlace, stream: stream)
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        if gradient == nil { gradient = try SoftmaxBackward(lines, node: node) }
        try gradient?.run(output: outputs[0], gradient: outputGradients[0], into: &inputGradients[0])
    }
}

/// Softmax along a strided axis (inner > 1), vectorized across the inner positions. For each outer
/// block of n rows of `inner` contiguous elements:
/// ```
/// m    = max over rows            (row by row, each a contiguous loop over inner)
/// y    = (x - m) / T              then y = exp(y) by one oneDNN eltwise over the whole output
/// s    = sum over rows of y
/// y    = y / s                    or, for log_softmax, (x - m) / T - log s
/// ```
/// The per-position maxima and sums are buffers of `inner` floats made at bind.
final class StridedSoftmaxKernel: Kernel {
    let lines: SoftmaxLines
    let exponential: EltwiseKernel
    var maxima: [Float], sums: [Float]

    init(_ lines: SoftmaxLines, node: String) throws {
        self.lines = lines
        exponential = try EltwiseKernel([EltwiseStep(dnnl_eltwise_exp)], shape: [lines.outer * lines.n * lines.inner], node: node)
        maxima = [Float](repeating: 0, count: lines.inner)
        sums = [Float](repeating: 0, count: lines.inner)
    }

    /// The maximum over the n rows of the block at `base`, for each inner position, into `m`.
    @inline(__always)
    func blockMaxima(_ x: UnsafeBufferPointer<Float>, _ base: Int, _ m: UnsafeMutableBufferPointer<Float>) {
        let (n, inner) = (lines.n, lines.inner)
        for i in 0..<inner { m[i] = x[base + i] }
        for j in 1..<max(n, 1) {
            let row = base + j * inner
            for i in 0..<inner { m[i] = max(m[i], x[row + i]) }
        }
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let (n, inner) = (lines.n, lines.inner)
        let scale = Float(1 / lines.temperature)
        let x = inputs[0]
        let y = outputs[0].destinationPointer
        // y = (x - m) / T, block by block.
        x.withUnsafeBufferPointer(as: Float.self) { src in
            outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { dst in
                maxima.withUnsafeMutableBufferPointer { m in
                    for o in 0..<lines.outer {
                        let base = o * n * inner
                        blockMaxima(src, base, m)
                        for j in 0..<n {
                            let row = base + j * inner
                            for i in 0..<inner { dst[row + i] = (src[row + i] - m[i]) * scale }
                        }
                    }
                }
            }
        }
        try exponential.run(source: y, destination: y)
        x.withUnsafeBufferPointer(as: Float.self) { src in
            outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { dst in
                maxima.withUnsafeMutableBufferPointer { m in
                    sums.withUnsafeMutableBufferPointer { s in
                        for o in 0..<lines.outer {
                            let base = o * n * inner
                            for i in 0..<inner { s[i] = 0 }
                            for j in 0..<n {
                                let row = base + j * inner
                                for i in 0..<inner { s[i] += dst[row + i] }
                            }
                            if lines.logarithm {
                                // log_softmax needs (x - m) / T again, which the exponentials replaced.
                                blockMaxima(src, base, m)
                                for i in 0..<inner { s[i] = Foundation.log(s[i]) }
                                for j in 0..<n {
                                    let row = base + j * inner
                                    for i in 0..<inner { dst[row + i] = (src[row + i] - m[i]) * scale - s[i] }
                                }
                            } else {
                                for i in 0..<inner { s[i] = 1 / s[i] }
                                for j in 0..<n {
                                    let row = base + j * inner
                                    for i in 0..<inner { dst[row + i] *= s[i] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
