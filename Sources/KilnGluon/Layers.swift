import KilnCore
import KilnGraph
import KilnRuntime

/// The variable a traced block reads a parameter from.
func variable(_ p: Parameter) -> Symbol { Symbol.variable(p.name) }

/// A 2-D convolution (Gluon's `nn.Conv2D`), named `convN_`; weight (channels, inChannels / groups, kh, kw).
public final class Conv2D: HybridBlock {
    public let channels: Int
    public let kernel: [Int]
    public let strides: [Int]
    public let padding: [Int]
    public let dilation: [Int]
    public let groups: Int
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
    public let units: Int
    public let useBias: Bool
    public let flatten: Bool
    public let weight: Parameter
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
    public let axis: Int
    public let momentum: Double
    public let epsilon: Double
    public let center: Bool
    public let scale: Bool
    public let gamma: Parameter
    public let beta: Parameter
    public let runningMean: Parameter
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
    public let kind: ActivationKind

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
    public let poolSize: [Int]
    public let strides: [Int]
    public let padding: [Int]
    public let ceilMode: Bool

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
    public let poolSize: [Int]
    public let strides: [Int]
    public let padding: [Int]
    public let ceilMode: Bool
    public let countIncludePad: Bool

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
    public init(prefix: String? = nil) { super.init(prefix: prefix, hint: "pool") }

    public override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.pooling(x, kernel: [1, 1], poolType: .avg, globalPool: true, name: OpNamer.name("fwd"))
    }
}

/// (N, ...) to (N, product of the rest) (Gluon's `nn.Flatten`), named `flattenN_`.
public final class Flatten: HybridBlock {
    public init(prefix: String? = nil) { super.init(prefix: prefix, hint: "flatten") }

    public override func forward(_ x: Symbol) throws -> Symbol {
        // Gluon calls F.Flatten(x) without a name, so MXNet numbers it under the block's prefix.
        Symbol.flatten(x, name: OpNamer.automatic("flatten"))
    }
}

/// Dropout (Gluon's `nn.Dropout`), named `dropoutN_`; the identity at inference.
public final class Dropout: HybridBlock {
    public let rate: Double

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
