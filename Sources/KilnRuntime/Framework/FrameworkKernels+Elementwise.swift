import KilnCore
import KilnGraph

/// Framework kernels of the elementwise family: oneDNN eltwise, binary, PReLU, softmax and sum
/// primitives built at bind, on float32 in plain layouts. Other dtypes and the few functions oneDNN
/// lacks fall back to Swift loops or to the reference kernels.
extension FrameworkKernels {
    static var elementwise: [String: KernelFactory] {
        var table: [String: KernelFactory] = [:]
        let pointwise: KernelFactory = { sig in
            guard ElementwiseDNNL.suits(sig) else { return try ElementwiseDNNL.reference(sig) }
            return try FrameworkKernels.pointwise(try Pointwise.of(sig), sig)
        }
        for op in ["Activation", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "square", "clip",
                   "_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar",
                   "_power_scalar", "_maximum_scalar", "_minimum_scalar"] {
            table[op] = pointwise
        }
        table["LeakyReLU"] = { sig in
            let kind = try LeakyReLUParameters(sig.attributes).kind
            guard ElementwiseDNNL.suits(sig, inputs: kind == .prelu ? [0, 1] : [0]) else { return try ElementwiseDNNL.reference(sig) }
            switch kind {
            case .prelu:
                return try PReLUKernel(dataShape: sig.inputShapes[0], gammaCount: sig.inputShapes[1].elementCount, node: sig.node.name)
            case .rrelu:
                return TrainingSwitchKernel(inference: try FrameworkKernels.pointwise(try Pointwise.of(sig), sig),
                                            training: try ElementwiseDNNL.reference(sig))
            case .leaky, .elu, .selu, .gelu:
                return try FrameworkKernels.pointwise(try Pointwise.of(sig), sig)
            }
        }
        for op in ["elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
                   "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"] {
            table[op] = { sig in try BinaryKernel.make(sig) }
        }
        table["add_n"] = { sig in
            guard ElementwiseDNNL.suits(sig, inputs: Array(sig.inputShapes.indices)) else { return try ElementwiseDNNL.reference(sig) }
            return try SumKernel(count: sig.inputShapes.count, shape: sig.outputShapes[0], node: sig.node.name)
        }
        table["softmax"] = { sig in try SoftmaxKernel.make(sig, lines: try SoftmaxLines.softmax(sig)) }
        table["log_softmax"] = table["softmax"]
        table["SoftmaxOutput"] = { sig in
            guard ElementwiseDNNL.suits(sig) else { return try ElementwiseDNNL.reference(sig) }
            let rule = try SoftmaxOutputRule(sig)
            return SoftmaxOutputKernel(softmax: try SoftmaxKernel.make(sig, lines: rule.lines), rule: rule)
        }
        // _copy, Cast and Dropout need no oneDNN: the reference kernels share buffers or loop in Swift.
        return table
    }

    /// A float32 pointwise function: oneDNN eltwise where it has the function, else a Swift loop;
    /// backward by ``Float32PointwiseGradient``.
    static func pointwise(_ function: Pointwise, _ sig: KernelSignature) throws -> any Kernel {
        if function == .identity { return CopyKernel() }
        let gradient = try Float32PointwiseGradient(function, shape: sig.inputShapes[0], node: sig.node.name)
        guard let steps = function.eltwiseSteps else { return Float32PointwiseKernel(function, gradient: gradient) }
        let kernel = try EltwiseKernel(steps, shape: sig.inputShapes[0], node: sig.node.name)
        kernel.gradient = gradient
        return kernel
    }
}
