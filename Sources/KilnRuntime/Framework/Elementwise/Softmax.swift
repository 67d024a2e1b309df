import CDNNL
import KilnCore
import KilnGraph

/// `softmax`, `log_softmax` and `SoftmaxOutput` on oneDNN's softmax and logsoftmax primitives.
///
/// Every case is a softmax along axis 1 of a plain (outer, n, inner) view of the array (see
/// ``SoftmaxLines``). A temperature T ≠ 1 first scales the input by 1/T into the output with an eltwise
/// linear step; the softmax then runs in place on the output.
final class SoftmaxKernel: Kernel {
    let scale: DNNLPrimitive?
    let softmax: DNNLPrimitive
    let source: DNNLMemory, destination: DNNLMemory
    let outOfPlace: [(Int32, DNNLMemory)], inPlace: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let node: String

    static func make(_ sig: KernelSignature, lines: SoftmaxLines) throws -> any Kernel {
        guard ElementwiseDNNL.suits(sig) else { return try ElementwiseDNNL.reference(sig) }
        return try SoftmaxKernel(lines, node: sig.node.name)
    }

    init(_ lines: SoftmaxLines, node: String) throws {
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
}
