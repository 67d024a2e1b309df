import KilnCore
import KilnGraph
import KilnRuntime

/// The variable a traced block reads a parameter from.
func variable(_ p: Parameter) -> Symbol { Symbol.variable(p.name) }

/// A 2-D convolution (Gluon's `nn.Conv2D`), named `convN_`; weight (channels, inChannels / groups, kh, kw).
public final class Conv2D: HybridBlock {
    /// The output channels (MXNet's num_filter).
    public let channels: Int
    /// The kernel size per spatial axis.
    public let kernel: [Int]
    /// The stride per spatial axis.
    public let strides: [Int]
    /// The symmetric zero padding per spatial axis.
    public let padding: [Int]
    /// The dilation per spatial axis.
    public let dilation: [Int]
    /// The channel groups (MXNet's num_group).
    public let groups: Int
    /// Whether the layer has a bias.
    public let useBias: Bool
    /// `weight`, of shape (channels, inChannels / groups, kernel...); inChannels 0 is inferred.
    public let weight: Parameter
    /// `bias`, of shape (channels), when `useBias`.
    public let bias: Parameter?

    /// - Parameters:
    ///   - inChannels: 0 to infer from the first input (deferred shape).
    public init(channels: Int, kernel: [Int], strides: [Int] = [1, 1], padding: [Int] = [0, 0],
                dilation: [Int] = [1, 1], groups: Int = 1, useBias: Bool = true, inChannels: Int = 0,
                prefix: String? = nil) {
        self.channels = channels
        self.kernel = kernel
        self.strides = strides
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.useBias = useBias
        weight = Parameter("weight", shape: Shape([channels, inChannels / max(groups, 1)] + kernel))
        bias = useBias ? Parameter("bias", shape: [channels]) : nil
        super.init(prefix: prefix, hint: "conv")
        registerParameter(weight)
        if let bias { registerParameter(bias) }
    }

    /// A square kernel, stride and padding (Gluon's `Conv2D(channels, 3, 1, 1)`).
    public convenience init(channels: Int, kernel: Int, strides: Int = 1, padding: Int = 0, dilation: Int = 1,
                            groups: Int = 1, useBias: Bool = true, inChannels: Int = 0, prefix: String? = nil) {
        self.init(channels: channels, kernel: [kernel, kernel], strides: [strides, strides], padding: [padding, padding],
                  dilation: [dilation, dilation], groups: groups, useBias: useBias, inChannels: inChannels, prefix: prefix)
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.convolution(x, weight: variable(weight), bias: bias.map(variable), kernel: kernel, numFilter: channels,
                           stride: strides, dilate: dilation, pad: padding, numGroup: groups, noBias: !useBias,
                           name: OpNamer.name("fwd"))
    }
}

/// A fully connected layer (Gluon's `nn.Dense`), named `denseN_`; weight (units, inUnits).
public final class Dense: HybridBlock {
    /// The output units (MXNet's num_hidden).
    public let units: Int
    /// Whether the layer has a bias.
    public let useBias: Bool
    /// Whether inputs of rank above 2 are read as (batch, rest); otherwise only the last axis is transformed.
    public let flatten: Bool
    /// `weight`, of shape (units, inUnits).
    public let weight: Parameter
    /// `bias`, of shape (units), when `useBias`.
    public let bias: Parameter?

    /// - Parameters:
    ///   - inUnits: 0 to infer from the first input.
    public init(units: Int, useBias: Bool = true, flatten: Bool = true, inUnits: Int = 0, prefix: String? = nil) {
        self.units = units
        self.useBias = useBias
        self.flatten = flatten
        weight = Parameter("weight", shape: [units, inUnits])
        bias = useBias ? Parameter("bias", shape: [units]) : nil
        super.init(prefix: prefix, hint: "dense")
        registerParameter(weight)
        if let bias { registerParameter(bias) }
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.fullyConnected(x, weight: variable(weight), bias: bias.map(variable), numHidden: units,
                              noBias: !useBias, flatten: flatten, name: OpNamer.name("fwd"))
    }
}

/// Batch normalization over axis 1 (Gluon's `nn.BatchNorm`), named `batchnormN_`.
///
/// Parameters `gamma`, `beta`, `running_mean`, `running_var` (the last two auxiliary states). Without
/// `scale`, gamma is fixed at 1 (`fix_gamma`); without `center`, beta is not learned.
public final class BatchNorm: HybridBlock {
    /// The channel axis.
    public let axis: Int
    /// The running statistics' momentum (training only).
    public let momentum: Double
    /// Added to the variance before the square root.
    public let epsilon: Double
    /// Whether beta is learned (otherwise it stays 0).
    public let center: Bool
    /// Whether gamma is learned (otherwise it is read as 1: MXNet's fix_gamma).
    public let scale: Bool
    /// `gamma`, the scale.
    public let gamma: Parameter
    /// `beta`, the shift.
    public let beta: Parameter
    /// `running_mean`, an auxiliary state.
    public let runningMean: Parameter
    /// `running_var`, an auxiliary state.
    public let runningVar: Parameter

    /// - Parameters:
    ///   - inChannels: 0 to infer from the first input.
    public init(axis: Int = 1, momentum: Double = 0.9, epsilon: Double = 1e-5, center: Bool = true, scale: Bool = true,
                inChannels: Int = 0, prefix: String? = nil) {
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        gamma = Parameter("gamma", shape: [inChannels], gradReq: scale ? .write : .null)
        beta = Parameter("beta", shape: [inChannels], gradReq: center ? .write : .null)
        runningMean = Parameter("running_mean", shape: [inChannels], gradReq: .null, isAuxiliary: true)
        runningVar = Parameter("running_var", shape: [inChannels], gradReq: .null, isAuxiliary: true)
        super.init(prefix: prefix, hint: "batchnorm")
        for p in [gamma, beta, runningMean, runningVar] { registerParameter(p) }
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.batchNorm(x, gamma: variable(gamma), beta: variable(beta), movingMean: variable(runningMean),
                         movingVar: variable(runningVar), eps: epsilon, momentum: momentum, fixGamma: !scale,
                         axis: axis, name: OpNamer.name("fwd"))
    }
}

/// An activation function (Gluon's `nn.Activation`), named after it (`reluN_`).
public final class Activation: HybridBlock {
    /// The function.
    public let kind: ActivationKind

    /// An activation named `KINDN_` (`relu0_`).
    public init(_ kind: ActivationKind, prefix: String? = nil) {
        self.kind = kind
        super.init(prefix: prefix, hint: kind.rawValue)
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.activation(x, kind: kind, name: OpNamer.name("fwd"))
    }
}

/// 2-D max pooling (Gluon's `nn.MaxPool2D`), named `poolN_`; strides default to the pool size.
public final class MaxPool2D: HybridBlock {
    /// The window per spatial axis.
    public let poolSize: [Int]
    /// The stride per spatial axis.
    public let strides: [Int]
    /// The symmetric zero padding per spatial axis.
    public let padding: [Int]
    /// Whether the output size rounds up (MXNet's `full` convention).
    public let ceilMode: Bool

    /// Pooling over `poolSize` windows; `strides` default to `poolSize`.
    public init(poolSize: [Int] = [2, 2], strides: [Int]? = nil, padding: [Int] = [0, 0], ceilMode: Bool = false,
                prefix: String? = nil) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
        super.init(prefix: prefix, hint: "pool")
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.pooling(x, kernel: poolSize, poolType: .max, convention: ceilMode ? .full : .valid,
                       stride: strides, pad: padding, name: OpNamer.name("fwd"))
    }
}

/// 2-D average pooling (Gluon's `nn.AvgPool2D`), named `poolN_`; padding counts in the divisor by default.
public final class AvgPool2D: HybridBlock {
    /// The window per spatial axis.
    public let poolSize: [Int]
    /// The stride per spatial axis.
    public let strides: [Int]
    /// The symmetric zero padding per spatial axis.
    public let padding: [Int]
    /// Whether the output size rounds up (MXNet's `full` convention).
    public let ceilMode: Bool
    /// Whether padding counts in the divisor.
    public let countIncludePad: Bool

    /// Pooling over `poolSize` windows; `strides` default to `poolSize`.
    public init(poolSize: [Int] = [2, 2], strides: [Int]? = nil, padding: [Int] = [0, 0], ceilMode: Bool = false,
                countIncludePad: Bool = true, prefix: String? = nil) {
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
        super.init(prefix: prefix, hint: "pool")
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.pooling(x, kernel: poolSize, poolType: .avg, convention: ceilMode ? .full : .valid,
                       stride: strides, pad: padding, countIncludePad: countIncludePad, name: OpNamer.name("fwd"))
    }
}

/// Average over each channel's whole plane (Gluon's `nn.GlobalAvgPool2D`), named `poolN_`; output (N, C, 1, 1).
public final class GlobalAvgPool2D: HybridBlock {
    /// A global average pooling named `poolN_`.
    public init(prefix: String? = nil) { super.init(prefix: prefix, hint: "pool") }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.pooling(x, kernel: [1, 1], poolType: .avg, globalPool: true, name: OpNamer.name("fwd"))
    }
}

/// (N, ...) to (N, product of the rest) (Gluon's `nn.Flatten`), named `flattenN_`.
public final class Flatten: HybridBlock {
    /// A flatten named `flattenN_`.
    public init(prefix: String? = nil) { super.init(prefix: prefix, hint: "flatten") }

    public override func forward(_ x: Symbol) throws -> Symbol {
        // Gluon calls F.Flatten(x) without a name, so MXNet numbers it under the block's prefix.
        Symbol.flatten(x, name: OpNamer.automatic("flatten"))
    }
}

/// Dropout (Gluon's `nn.Dropout`), named `dropoutN_`; the identity at inference.
public final class Dropout: HybridBlock {
    /// The fraction dropped in training.
    public let rate: Double

    /// Dropout of `rate` in training.
    public init(rate: Double, prefix: String? = nil) {
        self.rate = rate
        super.init(prefix: prefix, hint: "dropout")
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        // Gluon's rate 0 is F.identity(x): a `_copy` node with an automatic name (`dropout0_identity0`).
        guard rate > 0 else { return Symbol.make("_copy", [x], name: OpNamer.automatic("identity")) }
        return Symbol.dropout(x, p: rate, name: OpNamer.name("fwd"))
    }
}
