import KilnCore
import KilnGraph

// What a supported node becomes, for every engine: one case per kind of computation (or none, for
// views and identities). An engine's capability table (EngineCapabilities) produces these from a
// node's typed parameters; passes read them; each engine's lowering (oneDNN primitives in KilnEngine,
// cuDNN calls and generated kernels in KilnCUDA) switches over them. Because the table's rule and the
// lowering share this type, every node an engine accepts has a lowering, and a new kind is a compile
// error in every lowering that does not handle it.
//
// ```
// Convolution(kernel=(3,3), num_filter=16)  -> .convolution(ConvolutionSpec(kernel: [3, 3], numFilter: 16, ...))
// Activation(act_type=relu)                 -> .eltwise(EltwiseSpec(algorithm: .relu))
// Pooling(global_pool) + FullyConnected     -> .averagePoolingDense(...)   (HeadFusion, the cuda engine's pipeline)
// ```

/// How an engine lowers one node (see the file's note).
public enum LoweringKind: Codable, Equatable, Sendable {
    /// A 2-D convolution, its bias fused.
    case convolution(ConvolutionSpec)
    /// A 2-D transposed convolution (MXNet's Deconvolution), its bias fused. Its weight holds one row
    /// per *input* channel, so a BatchNorm after it does not fold (``hasChannelWeights`` is false);
    /// post-ops still fuse (``takesPostOps``).
    case deconvolution(DeconvolutionSpec)
    /// An inner product on the data viewed as (rows, inputs).
    case innerProduct(InnerProductSpec)
    /// Inference batch normalization with the moving statistics (when not folded into a conv or FC).
    case batchNorm(BatchNormSpec)
    /// One elementwise function, or a post-op of a conv or FC.
    case eltwise(EltwiseSpec)
    /// Sum of two tensors of one shape, or a `sum` post-op.
    case add
    /// An elementwise product or sum of two tensors whose second operand may broadcast (axes of
    /// size 1 repeated, as a squeeze-excitation gate of shape (N, C, 1, 1) scales (N, C, H, W)).
    case binary(BinarySpec)
    /// Max or average pooling over a 2-D window.
    case pooling(PoolingSpec)
    /// A new shape for the same elements, in plain layout (no copy).
    case reshape
    /// Joins inputs along an axis (normalized, 0-based).
    case concat(axis: Int)
    /// Softmax along an axis (normalized, 0-based).
    case softmax(axis: Int)
    /// Its output is its first input (Dropout in inference, `_copy`).
    case identity
    /// Global average pooling then an inner product on the pooled (N, C) rows, as one kernel: a
    /// network's head (``HeadFusion``). Inputs: data (N, C, H, W), weight, bias when the spec has one.
    case averagePoolingDense(InnerProductSpec)

    /// A short name for reports (`convolution`, `eltwise(relu)`).
    public var summary: String {
        switch self {
        case .convolution: return "convolution"
        case .deconvolution: return "deconvolution"
        case .innerProduct: return "inner_product"
        case .batchNorm: return "batch_norm"
        case let .eltwise(e): return "eltwise(\(e.algorithm.rawValue))"
        case .add: return "add"
        case let .binary(b): return "binary(\(b.operation.rawValue))"
        case let .pooling(p): return "pooling(\(p.algorithm.rawValue))"
        case .reshape: return "reshape"
        case let .concat(axis): return "concat(axis \(axis))"
        case let .softmax(axis): return "softmax(axis \(axis))"
        case .identity: return "identity"
        case .averagePoolingDense: return "average_pooling+inner_product"
        }
    }

    /// Whether the op multiplies by weights with one row per output channel on axis 1 and adds a
    /// bias per channel (the conv and FC kinds): a BatchNorm after it folds into them.
    public var hasChannelWeights: Bool {
        switch self {
        case .convolution, .innerProduct: return true
        default: return false
        }
    }

    /// Whether the op is one whose kernel can apply post-ops as it writes (conv, deconv and FC).
    public var takesPostOps: Bool {
        switch self {
        case .convolution, .deconvolution, .innerProduct: return true
        default: return false
        }
    }
}

/// A convolution's geometry, MXNet's way (dilation 1 means none).
public struct ConvolutionSpec: Codable, Equatable, Sendable {
    public var kernel: [Int]
    public var stride: [Int]
    public var pad: [Int]
    public var dilate: [Int]
    public var groups: Int
    public var numFilter: Int
    public var hasBias: Bool
    /// The algorithm chosen at the first compile (timed there; see Lowering/ConvolutionChoice.swift);
    /// nil until then. Stored with cached plans so that a later process does not time again.
    public var algorithm: ConvolutionAlgorithm?

    public init(kernel: [Int], stride: [Int], pad: [Int], dilate: [Int], groups: Int, numFilter: Int, hasBias: Bool) {
        (self.kernel, self.stride, self.pad, self.dilate) = (kernel, stride, pad, dilate)
        (self.groups, self.numFilter, self.hasBias) = (groups, numFilter, hasBias)
    }
}

/// How a convolution computes: oneDNN's direct kernels in the layout they prefer, direct in the
/// producer's blocked layout (no reorder before it), or Winograd F(4x4, 3x3) (3x3, stride 1; fewer
/// multiplications, blocked layout).
public enum ConvolutionAlgorithm: String, Codable, Sendable, CaseIterable {
    case direct, directInPlace = "direct_producer_layout", winograd
}

/// A transposed convolution's geometry, MXNet's way: output = stride·(input - 1) + dilated kernel -
/// 2·pad + adj along each spatial axis.
public struct DeconvolutionSpec: Codable, Equatable, Sendable {
    public var kernel: [Int]
    public var stride: [Int]
    public var pad: [Int]
    public var dilate: [Int]
    public var adj: [Int]
    public var groups: Int
    public var numFilter: Int
    public var hasBias: Bool

    public init(kernel: [Int], stride: [Int], pad: [Int], dilate: [Int], adj: [Int], groups: Int, numFilter: Int, hasBias: Bool) {
        (self.kernel, self.stride, self.pad, self.dilate, self.adj) = (kernel, stride, pad, dilate, adj)
        (self.groups, self.numFilter, self.hasBias) = (groups, numFilter, hasBias)
    }
}

/// A FullyConnected node's parameters.
public struct InnerProductSpec: Codable, Equatable, Sendable {
    public var numHidden: Int
    public var hasBias: Bool
    /// MXNet's `flatten`: all axes after the first are one (else only the last axis is transformed).
    public var flatten: Bool

    public init(numHidden: Int, hasBias: Bool, flatten: Bool) {
        (self.numHidden, self.hasBias, self.flatten) = (numHidden, hasBias, flatten)
    }
}

/// An inference BatchNorm's parameters.
public struct BatchNormSpec: Codable, Equatable, Sendable {
    public var eps: Double
    /// Gamma is read as 1 whatever its value.
    public var fixGamma: Bool

    public init(eps: Double, fixGamma: Bool) {
        (self.eps, self.fixGamma) = (eps, fixGamma)
    }

    /// The per-channel factor of inference BatchNorm, in float64: `s = gamma / sqrt(var + eps)`, with
    /// gamma read as 1 under `fixGamma`. Folding (w' = w·s) and an unfolded scale-shift (y = x·s +
    /// beta - mean·s) both start from it.
    public func scale(gamma: [Double], variance: [Double]) -> [Double] {
        variance.indices.map { c in (fixGamma ? 1 : gamma[c]) / (variance[c] + eps).squareRoot() }
    }
}

/// An elementwise function, with its two parameters (oneDNN's eltwise algorithms, plus softsign).
public struct EltwiseSpec: Codable, Equatable, Sendable {
    public enum Algorithm: String, Codable, Sendable, CaseIterable {
        case relu, tanh, logistic, softRelu = "soft_relu", elu, geluErf = "gelu_erf"
        /// x / (1 + |x|) (MXNet's softsign; oneDNN 2.6 has no such eltwise function).
        case softSign = "soft_sign"
        /// alpha·x + beta: the scalar ops (`_plus_scalar`, `_mul_scalar`, `_div_scalar`, ...).
        case linear
        /// min(max(x, alpha), beta): `clip`, and ReLU6 as `clip(0, 6)`.
        case clip
        /// e^x.
        case exp
        /// x · min(max(x + 3, 0), 6) / 6: MobileNet v3's hard-swish, which ``HardSwishFusion`` finds
        /// as `x * (clip(x + 3, 0, 6) / 6)`.
        case hardSwish = "hard_swish"
    }

    public var algorithm: Algorithm
    /// relu: the negative slope; elu: the scale of the negative part; linear: the factor; clip: the
    /// lower bound.
    public var alpha: Float = 0
    /// linear: the offset; clip: the upper bound.
    public var beta: Float = 0

    public init(algorithm: Algorithm, alpha: Float = 0, beta: Float = 0) {
        (self.algorithm, self.alpha, self.beta) = (algorithm, alpha, beta)
    }
}

/// A pooling node's attributes; its geometry follows from the input shape (``geometry(input:)``).
public struct PoolingSpec: Codable, Equatable, Sendable {
    public enum Algorithm: String, Codable, Sendable {
        case max, avgIncludePad = "avg_include_pad", avgExcludePad = "avg_exclude_pad"
    }

    public var algorithm: Algorithm
    public var globalPool: Bool
    public var kernel: [Int]
    public var stride: [Int]
    public var pad: [Int]
    /// MXNet's `pooling_convention=full` (ceil) rather than `valid` (floor).
    public var ceilMode: Bool

    public init(algorithm: Algorithm, globalPool: Bool, kernel: [Int], stride: [Int], pad: [Int], ceilMode: Bool) {
        (self.algorithm, self.globalPool, self.kernel, self.stride, self.pad, self.ceilMode) = (algorithm, globalPool, kernel, stride, pad, ceilMode)
    }

    /// Window, strides and padding before and after along each spatial axis for an input of spatial
    /// size `input`, as oneDNN takes them; or the reason oneDNN would not compute MXNet's result.
    ///
    /// ```
    /// full convention, input 5, kernel 2, stride 2, pad 0 -> output 3 (ceil), pad after 1
    /// ```
    public func geometry(input: [Int]) -> Result<PoolingGeometry, PoolingRefusal> {
        if globalPool {
            return .success(PoolingGeometry(kernel: input, stride: input.map { _ in 1 }, padBefore: input.map { _ in 0 },
                                            padAfter: input.map { _ in 0 }, output: input.map { _ in 1 }))
        }
        guard kernel.count == input.count, stride.count == input.count, pad.count == input.count else {
            return .failure(PoolingRefusal("kernel", "it does not match the data's \(input.count) spatial axes"))
        }
        var output: [Int] = [], after: [Int] = []
        for i in input.indices {
            let padded = input[i] + 2 * pad[i]
            guard kernel[i] <= padded else {
                return .failure(PoolingRefusal("kernel", "larger than the padded input"))
            }
            guard pad[i] < kernel[i] else {
                return .failure(PoolingRefusal("pad", "as large as the kernel \(AttributeText.tuple(kernel))"))
            }
            let o = ceilMode ? 1 + (padded - kernel[i] + stride[i] - 1) / stride[i] : 1 + (padded - kernel[i]) / stride[i]
            output.append(o)
            // The padding after that makes oneDNN's floor formula give `o` windows.
            after.append(max(pad[i], (o - 1) * stride[i] + kernel[i] - input[i] - pad[i]))
        }
        if zip(after, kernel).contains(where: { $0 >= $1 }) {
            return .failure(PoolingRefusal("pooling_convention", "a last window would lie entirely in the padding"))
        }
        if algorithm == .avgIncludePad && after != pad {
            // MXNet divides the last window by the part inside input + pad; oneDNN by the whole kernel.
            return .failure(PoolingRefusal("pooling_convention", "with an average counting the padding, the last window runs past the padded input, which MXNet averages differently"))
        }
        return .success(PoolingGeometry(kernel: kernel, stride: stride, padBefore: pad, padAfter: after, output: output))
    }
}

/// A pooling window as oneDNN takes it.
public struct PoolingGeometry: Equatable, Sendable {
    public var kernel: [Int]
    public var stride: [Int]
    public var padBefore: [Int]
    public var padAfter: [Int]
    public var output: [Int]
}

/// Why a pooling window cannot be lowered: the attribute at fault and a sentence fragment.
public struct PoolingRefusal: Error, Equatable, Sendable {
    public let attribute: String
    public let reason: String
    public init(_ attribute: String, _ reason: String) {
        self.attribute = attribute
        self.reason = reason
    }
}

/// A binary elementwise op whose second operand may broadcast.
public struct BinarySpec: Codable, Equatable, Sendable {
    public enum Operation: String, Codable, Sendable, CaseIterable {
        case add, multiply
    }

    public var operation: Operation

    public init(operation: Operation) { self.operation = operation }
}
