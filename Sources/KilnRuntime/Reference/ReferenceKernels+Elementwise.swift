import KilnCore
import KilnGraph

/// Reference kernels of the elementwise family: plain loops in Double over any dtype, MXNet's formulas,
/// forward and backward.
extension ReferenceKernels {
    static var elementwise: [String: KernelFactory] {
        var table: [String: KernelFactory] = [:]
        let pointwise: KernelFactory = { sig in PointwiseReferenceKernel(try Pointwise.of(sig)) }
        for op in ["Activation", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "square", "clip",
                   "_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar",
                   "_power_scalar", "_maximum_scalar", "_minimum_scalar"] {
            table[op] = pointwise
        }
        table["LeakyReLU"] = { sig in
            let p = try LeakyReLUParameters(sig.attributes)
            switch p.kind {
            case .prelu: return PReLUReferenceKernel(dataShape: sig.inputShapes[0])
            case .rrelu: return RReLUReferenceKernel(lower: p.lowerBound, upper: p.upperBound, seed: randomSeed(forNode: sig.node.name))
            case .leaky, .elu, .selu, .gelu: return PointwiseReferenceKernel(try Pointwise.of(sig))
            }
        }
        for op in ["elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div",
                   "broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"] {
            table[op] = { sig in
                guard let operation = BinaryReferenceKernel.operation(for: sig.node.op),
                      let partials = BinaryReferenceKernel.partials(for: sig.node.op) else {
                    throw sig.unsupported("no arithmetic is known for this op")
                }
                return BinaryReferenceKernel(operation, partials: partials, lhs: sig.inputShapes[0], rhs: sig.inputShapes[1],
                                             output: sig.outputShapes[0])
            }
        }
        table["add_n"] = { _ in AddNReferenceKernel() }
        table["_copy"] = { _ in CopyKernel() }
        table["Cast"] = { sig in CastKernel(from: sig.inputTypes[0], to: sig.outputTypes[0]) }
        table["Dropout"] = { sig in try DropoutKernel(sig) }
        table["softmax"] = { sig in SoftmaxReferenceKernel(try SoftmaxLines.softmax(sig)) }
        table["log_softmax"] = table["softmax"]
        table["SoftmaxOutput"] = { sig in SoftmaxOutputReferenceKernel(try SoftmaxOutputRule(sig)) }
        return table
    }
}
