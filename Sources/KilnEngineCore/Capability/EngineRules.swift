import KilnCore
import KilnGraph
import KilnRuntime

// The capability rules both engines share: what a node's typed parameters mean as a lowering kind,
// and the refusals every engine gives (a 1-D convolution, NHWC, a BatchNorm on another axis,
// Dropout that drops at inference). One rule per op, so two engines cannot disagree about what a
// node computes: `Dropout(mode="always")` is refused here, for every engine.
//
// ```
// Activation(act_type=relu)          -> .eltwise(relu)
// Dropout(mode=training)             -> .identity
// Dropout(mode=always)               -> "attribute mode=always (it drops at inference too) is not supported"
// Pooling(pool_type=lp)              -> "attribute pool_type=lp (only max and avg are lowered) is not supported"
// ```

/// The shared capability rules (see the file's note); an engine's table picks the ops it lowers.
public enum EngineRules {
    public static let convolution = EngineLowering { f in
        let p = try ConvolutionParameters(f.attributes)
        guard p.kernel.count == 2 else { return f.refuse("kernel", "only 2-D convolutions are lowered") }
        guard p.layout == .nchw else { return f.refuse("layout", "only NCHW is lowered") }
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.convolution(ConvolutionSpec(kernel: p.kernel, stride: p.stride, pad: p.pad, dilate: p.dilate,
                                                   groups: p.numGroup, numFilter: p.numFilter, hasBias: !p.noBias)))
    }

    /// `Deconvolution`: 2-D, NCHW, without `target_shape` (which only moves the padding), and with
    /// `adj` at most `pad` (the padding after, pad - adj, cannot be negative in the engine's kernels).
    public static let deconvolution = EngineLowering { f in
        let p = try DeconvolutionParameters(f.attributes)
        guard p.kernel.count == 2 else { return f.refuse("kernel", "only 2-D deconvolutions are lowered") }
        guard p.layout == .nchw else { return f.refuse("layout", "only NCHW is lowered") }
        guard p.targetShape.allSatisfy({ $0 == 0 }) else { return f.refuse("target_shape", "only the output size from pad and adj is lowered") }
        guard zip(p.adj, p.pad).allSatisfy({ $0 <= $1 }) else { return f.refuse("adj", "larger than pad") }
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.deconvolution(DeconvolutionSpec(kernel: p.kernel, stride: p.stride, pad: p.pad, dilate: p.dilate, adj: p.adj,
                                                       groups: p.numGroup, numFilter: p.numFilter, hasBias: !p.noBias)))
    }

    public static let fullyConnected = EngineLowering { f in
        let p = try FullyConnectedParameters(f.attributes)
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.innerProduct(InnerProductSpec(numHidden: p.numHidden, hasBias: !p.noBias, flatten: p.flatten)))
    }

    public static let batchNorm = EngineLowering { f in
        let p = try BatchNormParameters(f.attributes)
        if p.outputMeanVar { return f.refuse("output_mean_var", "the engine computes only the normalized output") }
        let channelAxis: Int? = f.inputShapes.map { $0.first?.normalizedAxis(p.axis) } ?? (p.axis == 1 ? 1 : nil)
        guard channelAxis == 1 else { return f.refuse("axis", "only the channel axis 1 is lowered") }
        if let refusal = f.unknownWeight() { return refusal }
        return .lower(.batchNorm(BatchNormSpec(eps: p.eps, fixGamma: p.fixGamma)))
    }

    /// `Activation`: every kind has an eltwise algorithm (an engine refuses those it lacks).
    public static let activation = EngineLowering { f in
        .lower(.eltwise(EltwiseSpec(algorithm: algorithm(try ActivationParameters(f.attributes).kind))))
    }

    /// The eltwise algorithm of an activation kind.
    public static func algorithm(_ kind: ActivationKind) -> EltwiseSpec.Algorithm {
        switch kind {
        case .relu: return .relu
        case .sigmoid: return .logistic
        case .tanh: return .tanh
        case .softReLU: return .softRelu
        case .softSign: return .softSign
        }
    }

    /// A standalone activation op (`relu`, `sigmoid`, `tanh`), whose function is the op itself: the
    /// engine's table entry for the op names the kind.
    public static func activationOp(_ kind: ActivationKind) -> EngineLowering {
        EngineLowering { _ in .lower(.eltwise(EltwiseSpec(algorithm: algorithm(kind)))) }
    }

    public static let leakyReLU = EngineLowering { f in
        let p = try LeakyReLUParameters(f.attributes)
        switch p.kind {
        case .leaky: return .lower(.eltwise(EltwiseSpec(algorithm: .relu, alpha: Float(p.slope))))
        case .elu: return .lower(.eltwise(EltwiseSpec(algorithm: .elu, alpha: Float(p.slope))))
        case .gelu: return .lower(.eltwise(EltwiseSpec(algorithm: .geluErf)))
        case .selu, .prelu, .rrelu: return f.refuse("act_type", "only leaky, elu and gelu are lowered")
        }
    }

    public static let add = EngineLowering { _ in .lower(.add) }

    /// `clip(a_min, a_max)`: ReLU6 is `clip(0, 6)`.
    public static let clip = EngineLowering { f in
        let p = try ClipParameters(f.attributes)
        guard p.min <= p.max else { return f.refuse("a_min", "larger than a_max") }
        return .lower(.eltwise(EltwiseSpec(algorithm: .clip, alpha: Float(p.min), beta: Float(p.max))))
    }

    /// A scalar op as `alpha·x + beta`, from its `scalar` attribute: `_plus_scalar` is
    /// `scalarLinear { s in (1, s) }`, `_div_scalar` `scalarLinear { s in (1 / s, 0) }`.
    /// Refused where the factor or offset is not a finite float32 (`_div_scalar(0)`).
    public static func scalarLinear(_ coefficients: @escaping @Sendable (Double) -> (alpha: Double, beta: Double)) -> EngineLowering {
        EngineLowering { f in
            let (alpha, beta) = coefficients(try f.attributes.float("scalar"))
            guard Float(alpha).isFinite, Float(beta).isFinite else { return f.refuse("scalar", "it makes no finite float32 line") }
            return .lower(.eltwise(EltwiseSpec(algorithm: .linear, alpha: Float(alpha), beta: Float(beta))))
        }
    }

    /// `exp`.
    public static let exp = EngineLowering { _ in .lower(.eltwise(EltwiseSpec(algorithm: .exp))) }

    /// A product or sum of two tensors: `elemwise_mul` (one shape), `broadcast_mul` and
    /// `broadcast_add` where one operand's shape repeats along axes of size 1 to the other's, of
    /// the same rank. The operand that broadcasts is taken second (both operations commute); a
    /// pair where each operand repeats along some axis is refused (its output is neither shape).
    public static func binary(_ operation: BinarySpec.Operation) -> EngineLowering {
        EngineLowering { f in
            guard let shapes = f.inputShapes, shapes.count == 2 else { return .lower(.binary(BinarySpec(operation: operation))) }
            let a = shapes[0], b = shapes[1]
            guard a.rank == b.rank else {
                return .refuse("operands of shapes \(a) and \(b) have different ranks (only a broadcast within one rank is lowered)")
            }
            let bFits = zip(a.dims, b.dims).allSatisfy { $0 == $1 || $1 == 1 }
            let aFits = zip(a.dims, b.dims).allSatisfy { $0 == $1 || $0 == 1 }
            guard bFits || aFits else {
                return .refuse("operands of shapes \(a) and \(b) both repeat along some axis (only one operand may broadcast)")
            }
            return .lower(.binary(BinarySpec(operation: operation)))
        }
    }
    public static let reshape = EngineLowering { _ in .lower(.reshape) }
    public static let identity = EngineLowering { _ in .lower(.identity) }

    public static let pooling = EngineLowering { f in
        let p = try PoolingParameters(f.attributes)
        let algorithm: PoolingSpec.Algorithm
        switch p.poolType {
        case .max: algorithm = .max
        case .avg: algorithm = p.countIncludePad ? .avgIncludePad : .avgExcludePad
        case .sum, .lp: return f.refuse("pool_type", "only max and avg are lowered")
        }
        if p.convention == .same { return f.refuse("pooling_convention", "only valid and full are lowered") }
        if let layout = p.layout, layout != .nchw { return f.refuse("layout", "only NCHW is lowered") }
        if !p.globalPool && p.kernel.count != 2 { return f.refuse("kernel", "only 2-D pooling is lowered") }
        let spec = PoolingSpec(algorithm: algorithm, globalPool: p.globalPool, kernel: p.kernel, stride: p.stride, pad: p.pad,
                               ceilMode: p.convention == .full)
        if let data = f.inputShapes?.first {
            guard data.rank == 4 else { return .refuse("data of shape \(data) is not 4-D (only 2-D pooling is lowered)") }
            if case let .failure(refusal) = spec.geometry(input: Array(data.dims[2...])) {
                return f.refuse(refusal.attribute, refusal.reason)
            }
        }
        return .lower(.pooling(spec))
    }

    /// Dropout is a copy at inference unless it drops then too (`mode=always`), which no engine does.
    public static let dropout = EngineLowering { f in
        if try !DropoutParameters(f.attributes).isIdentityAtInference { return f.refuse("mode", "it drops at inference too") }
        return .lower(.identity)
    }

    public static let concat = EngineLowering { f in
        let dim = try f.attributes.int("dim")
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.concat(axis: dim)) }
        guard let axis = Shape([Int](repeating: 1, count: rank)).normalizedAxis(dim) else { return f.refuse("dim", "out of range") }
        return .lower(.concat(axis: axis))
    }

    public static let softmax = EngineLowering { f in
        let p = try SoftmaxParameters(f.attributes)
        if p.useLength { return f.refuse("use_length", "per-row lengths are not lowered") }
        if let t = p.temperature, t != 1 { return f.refuse("temperature", "only 1 is lowered") }
        if let d = p.dtype, d != .float32 { return f.refuse("dtype", "the engine runs float32") }
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.softmax(axis: p.axis)) }
        guard let k = Shape([Int](repeating: 1, count: rank)).normalizedAxis(p.axis) else { return f.refuse("axis", "out of range") }
        return .lower(.softmax(axis: k))
    }

    /// In inference SoftmaxOutput is a softmax: over axis 1 with `multi_output`, else over the last axis
    /// (as MXNet 1.9.1's default CPU path and Kiln's kernels compute it). The label is not read.
    public static let softmaxOutput = EngineLowering(ignoredInputs: [1]) { f in
        let multi = try SoftmaxOutputParameters(f.attributes).multiOutput
        guard let rank = f.inputShapes?.first?.rank else { return .lower(.softmax(axis: multi ? 1 : -1)) }
        guard rank >= 2 else { return .refuse("data of rank \(rank) (SoftmaxOutput needs rank 2 or more)") }
        return .lower(.softmax(axis: multi ? 1 : rank - 1))
    }
}
