import CDNNL
import KilnCore
import KilnGraph

/// One oneDNN eltwise operation: `algorithm` with its two parameters.
struct EltwiseStep {
    let algorithm: dnnl_alg_kind_t
    let alpha: Float
    let beta: Float

    init(_ algorithm: dnnl_alg_kind_t, _ alpha: Float = 0, _ beta: Float = 0) {
        self.algorithm = algorithm
        self.alpha = alpha
        self.beta = beta
    }
}

extension Pointwise {
    /// The function as a chain of oneDNN 2.6 eltwise operations, or nil where oneDNN has none
    /// (softsign; clip with a_min > a_max, whose MXNet result is not min(max(x, lo), hi)).
    ///
    /// Parameters oneDNN takes (`eltwise_linear`: αx + β; `eltwise_pow`: αx^β; `eltwise_clip`:
    /// min(β, max(α, x)); `eltwise_relu`: x > 0 ? x : αx; `soft_relu` in 2.6 is log(1 + e^x), no α):
    /// ```
    /// rsqrt        -> pow(1, -0.5)         x / s  -> linear(1/s, 0)     s / x -> pow(s, -1)
    /// selu         -> elu(α) ; linear(λ, 0)   max(x, s) -> clip(s, +inf)
    /// ```
    var eltwiseSteps: [EltwiseStep]? {
        switch self {
        case .identity: return [EltwiseStep(dnnl_eltwise_linear, 1, 0)]
        case .relu: return [EltwiseStep(dnnl_eltwise_relu)]
        case .sigmoid: return [EltwiseStep(dnnl_eltwise_logistic)]
        case .tanh: return [EltwiseStep(dnnl_eltwise_tanh)]
        case .exp: return [EltwiseStep(dnnl_eltwise_exp)]
        case .log: return [EltwiseStep(dnnl_eltwise_log)]
        case .sqrt: return [EltwiseStep(dnnl_eltwise_sqrt)]
        case .rsqrt: return [EltwiseStep(dnnl_eltwise_pow, 1, -0.5)]
        case .square: return [EltwiseStep(dnnl_eltwise_square)]
        case .softReLU: return [EltwiseStep(dnnl_eltwise_soft_relu)]
        case .softSign: return nil
        case let .leaky(slope): return [EltwiseStep(dnnl_eltwise_relu, Float(slope))]
        case let .elu(alpha): return [EltwiseStep(dnnl_eltwise_elu, Float(alpha))]
        case .selu:
            return [EltwiseStep(dnnl_eltwise_elu, Float(Pointwise.seluAlpha)), EltwiseStep(dnnl_eltwise_linear, Float(Pointwise.seluLambda), 0)]
        case .gelu: return [EltwiseStep(dnnl_eltwise_gelu_erf)]
        case let .linear(scale, shift): return [EltwiseStep(dnnl_eltwise_linear, Float(scale), Float(shift))]
        case let .divide(s): return [EltwiseStep(dnnl_eltwise_linear, Float(1 / s), 0)]
        case let .reverseDivide(s): return [EltwiseStep(dnnl_eltwise_pow, Float(s), -1)]
        case let .power(s):
            switch s {
            case 1: return [EltwiseStep(dnnl_eltwise_linear, 1, 0)]
            case 2: return [EltwiseStep(dnnl_eltwise_square)]
            case 0.5: return [EltwiseStep(dnnl_eltwise_sqrt)]
            default: return [EltwiseStep(dnnl_eltwise_pow, 1, Float(s))]
            }
        case let .maximum(s): return [EltwiseStep(dnnl_eltwise_clip, Float(s), .infinity)]
        case let .minimum(s): return [EltwiseStep(dnnl_eltwise_clip, -.infinity, Float(s))]
        case let .clip(lower, upper):
            guard lower <= upper else { return nil }
            return [EltwiseStep(dnnl_eltwise_clip, Float(lower), Float(upper))]
        }
    }

    /// The function on float32, for the few oneDNN lacks.
    var float32Function: @Sendable (Float) -> Float {
        switch self {
        case .softSign: return { $0 / (1 + abs($0)) }
        case let .clip(lower, upper):
            let lo = Float(lower), hi = Float(upper)
            return { $0 > hi ? hi : ($0 < lo ? lo : $0) }
        default:
            let f = self
            return { Float(f(Double($0))) }
        }
    }
}

/// A chain of eltwise primitives: the first reads the input and writes the output, the rest work in
/// place on the output. Its backward is the function's ``Float32PointwiseGradient``, when it has one.
final class EltwiseKernel: Kernel {
    let primitives: [DNNLPrimitive]
    var gradient: Float32PointwiseGradient?
    let source: DNNLMemory, destination: DNNLMemory
    /// Arguments of the first step and of the in-place steps after it.
    let firstArguments: [(Int32, DNNLMemory)], inPlaceArguments: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let node: String

    init(_ steps: [EltwiseStep], shape: Shape, node: String) throws {
        let desc = try ElementwiseDNNL.plainDesc(shape, node: node)
        primitives = try steps.map { try ElementwiseDNNL.eltwise($0, desc: desc, node: node) }
        source = try ElementwiseDNNL.memory(desc, node: node)
        destination = try ElementwiseDNNL.memory(desc, node: node)
        firstArguments = [(DNNLArg.src, source), (DNNLArg.dst, destination)]
        inPlaceArguments = [(DNNLArg.src, destination), (DNNLArg.dst, destination)]
        stream = try DNNLStream(node: node)
        self.node = node
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try run(source: inputs[0].sourcePointer, destination: outputs[0].destinationPointer)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        guard let gradient else { throw RuntimeError.invalidArgument("The eltwise kernel of node '\(node)' has no backward") }
        try gradient.run(x: inputs[0], y: outputs[0], dy: outputGradients[0], into: &inputGradients[0])
    }

    /// Runs the chain on raw buffers of the bound shape; they may be the same buffer (in place).
    func run(source from: UnsafeMutableRawPointer, destination to: UnsafeMutableRawPointer) throws {
        try source.setPointer(from, node: node)
        try destination.setPointer(to, node: node)
        for (k, p) in primitives.enumerated() {
            try p.execute(k == 0 ? firstArguments : inPlaceArguments, stream: stream)
        }
    }
}

/// A float32 loop for the pointwise functions oneDNN lacks.
final class Float32PointwiseKernel: Kernel {
    let function: Pointwise
    let gradient: Float32PointwiseGradient
    init(_ function: Pointwise, gradient: Float32PointwiseGradient) {
        self.function = function
        self.gradient = gradient
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        if needed[0] { try gradient.run(x: inputs[0], y: outputs[0], dy: outputGradients[0], into: &inputGradients[0]) }
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0]
        x.withUnsafeBufferPointer(as: Float.self) { src in
            outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { dst in
                if function == .softSign {
                    // Written out so the compiler can vectorize it.
                    for i in 0..<src.count { dst[i] = src[i] / (1 + abs(src[i])) }
                } else {
                    let f = function.float32Function
                    for i in 0..<src.count { dst[i] = f(src[i]) }
                }
            }
        }
    }
}

/// `LeakyReLU` with `act_type=prelu`: oneDNN's PReLU primitive with gamma as weights of shape
/// (1, C, 1, ...), or (1, 1, ...) for a one-element gamma. Backward is a Swift loop over the
/// (N, C, inner) blocks: dx = x > 0 ? dy : gamma[c] dy, and dgamma[c] sums x dy where x ≤ 0.
final class PReLUKernel: Kernel {
    let primitive: DNNLPrimitive
    let source: DNNLMemory, weights: DNNLMemory, destination: DNNLMemory
    let arguments: [(Int32, DNNLMemory)]
    let stream: DNNLStream
    let node: String

    let channels: Int, inner: Int, outer: Int

    init(dataShape: Shape, gammaCount: Int, node: String) throws {
        channels = dataShape[1]
        inner = dataShape.dims.dropFirst(2).reduce(1, *)
        outer = dataShape[0]
        var dataDesc = try ElementwiseDNNL.plainDesc(dataShape, node: node)
        var w = [Int](repeating: 1, count: dataShape.rank)
        w[1] = gammaCount == 1 ? 1 : dataShape[1]
        var weightsDesc = try ElementwiseDNNL.plainDesc(Shape(w), node: node)
        var d = dnnl_prelu_desc_t()
        try DNNL.check(dnnl_prelu_forward_desc_init(&d, dnnl_forward_inference, &dataDesc, &weightsDesc),
                       "dnnl_prelu_forward_desc_init", node: node)
        primitive = try withUnsafePointer(to: &d) { try DNNLPrimitive(opDesc: $0, node: node, what: "prelu") }
        source = try ElementwiseDNNL.memory(dataDesc, node: node)
        weights = try ElementwiseDNNL.memory(weightsDesc, node: node)
        destination = try ElementwiseDNNL.memory(dataDesc, node: node)
        arguments = [(DNNLArg.src, source), (DNNLArg.weights, weights), (DNNLArg.dst, destination)]
        stream = try DNNLStream(node: node)
        self.node = node
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        try source.setPointer(inputs[0].sourcePointer, node: node)
        try weights.setPointer(inputs[1].sourcePointer, node: node)
        try destination.setPointer(outputs[0].destinationPointer, node: node)
        try primitive.execute(arguments, stream: stream)
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let (channels, inner, outer) = (channels, inner, outer)
        let shared = inputs[1].elementCount == 1
        var dgamma = inputGradients[1]
        inputs[0].withUnsafeBufferPointer(as: Float.self) { x in
            inputs[1].withUnsafeBufferPointer(as: Float.self) { gamma in
                outputGradients[0].withUnsafeBufferPointer(as: Float.self) { g in
                    inputGradients[0].withUnsafeMutableBufferPointer(as: Float.self) { dx in
                        dgamma.withUnsafeMutableBufferPointer(as: Float.self) { dgamma in
                            for k in 0..<dgamma.count { dgamma[k] = 0 }
                            for o in 0..<outer {
                                for c in 0..<channels {
                                    let base = (o * channels + c) * inner
                                    let slope = gamma[shared ? 0 : c]
                                    var sum: Float = 0
                                    if needed[0] {
                                        for i in base..<(base + inner) { dx[i] = x[i] > 0 ? g[i] : slope * g[i] }
                                    }
                                    for i in base..<(base + inner) { sum += x[i] > 0 ? 0 : x[i] * g[i] }
                                    dgamma[shared ? 0 : c] += sum
                                }
                            }
                        }
                    }
                }
            }
        }
        if needed[1] { inputGradients[1] = dgamma }
    }
}
