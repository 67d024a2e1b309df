import KilnCore

/// The activation functions of MXNet's `Activation` op.
public enum ActivationKind: String, Sendable, CaseIterable {
    case relu, sigmoid, tanh
    /// log(1 + exp(x)).
    case softReLU = "softrelu"
    /// x / (1 + |x|).
    case softSign = "softsign"
}

/// The variants of MXNet's `LeakyReLU` op.
public enum LeakyReLUKind: String, Sendable, CaseIterable {
    /// x > 0 ? x : slope * x.
    case leaky
    /// x > 0 ? x : slope * (exp(x) - 1).
    case elu
    /// Scaled ELU with the fixed constants of Klambauer et al.
    case selu
    /// x * Φ(x), the erf form.
    case gelu
    /// Leaky with a learned slope per channel (the `gamma` input).
    case prelu
    /// Leaky with a random slope in [lower, upper) in training, their mean at inference.
    case rrelu
}

/// How `Dropout` behaves outside training.
public enum DropoutMode: String, Sendable, CaseIterable {
    /// Drops only when the executor runs with `isTrain`.
    case training
    /// Drops at inference too (Monte Carlo dropout).
    case always
}

/// How `SoftmaxOutput` normalizes its gradient.
public enum SoftmaxNormalization: String, Sendable, CaseIterable {
    case null, batch, valid
}

extension Symbol {
    // MARK: Activations

    /// MXNet's `Activation`: one of the classic activation functions.
    public static func activation(_ data: Symbol, kind: ActivationKind, name: String? = nil) -> Symbol {
        make("Activation", [data], attributes: ["act_type": kind.rawValue], name: name)
    }

    /// MXNet's `LeakyReLU` family. For `.prelu`, `gamma` is the per-channel slope (created as `NAME_gamma`
    /// when nil); `slope` applies to `.leaky` and `.elu`, the bounds to `.rrelu`.
    public static func leakyReLU(_ data: Symbol, kind: LeakyReLUKind = .leaky, gamma: Symbol? = nil, slope: Double = 0.25,
                                 lowerBound: Double = 0.125, upperBound: Double = 0.334, name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if kind != .leaky { a["act_type"] = kind.rawValue }
        if slope != 0.25 { a["slope"] = AttributeText.number(slope) }
        if lowerBound != 0.125 { a["lower_bound"] = AttributeText.number(lowerBound) }
        if upperBound != 0.334 { a["upper_bound"] = AttributeText.number(upperBound) }
        return make("LeakyReLU", kind == .prelu ? [data, gamma] : [data], attributes: a, name: name)
    }

    /// max(x, 0).
    public static func relu(_ data: Symbol, name: String? = nil) -> Symbol { make("relu", [data], name: name) }
    /// 1 / (1 + exp(-x)).
    public static func sigmoid(_ data: Symbol, name: String? = nil) -> Symbol { make("sigmoid", [data], name: name) }
    /// The hyperbolic tangent.
    public static func tanh(_ data: Symbol, name: String? = nil) -> Symbol { make("tanh", [data], name: name) }
    /// e^x.
    public static func exp(_ data: Symbol, name: String? = nil) -> Symbol { make("exp", [data], name: name) }
    /// The natural logarithm.
    public static func log(_ data: Symbol, name: String? = nil) -> Symbol { make("log", [data], name: name) }
    /// The square root.
    public static func sqrt(_ data: Symbol, name: String? = nil) -> Symbol { make("sqrt", [data], name: name) }
    /// 1 / sqrt(x).
    public static func rsqrt(_ data: Symbol, name: String? = nil) -> Symbol { make("rsqrt", [data], name: name) }
    /// x * x.
    public static func square(_ data: Symbol, name: String? = nil) -> Symbol { make("square", [data], name: name) }

    // MARK: Binary arithmetic

    /// `elemwise_add`: the sum of two arrays of one shape.
    public static func elementwiseAdd(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("elemwise_add", [lhs, rhs], name: name)
    }
    /// `elemwise_sub`: lhs - rhs, of one shape.
    public static func elementwiseSubtract(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("elemwise_sub", [lhs, rhs], name: name)
    }
    /// `elemwise_mul`: the product of two arrays of one shape.
    public static func elementwiseMultiply(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("elemwise_mul", [lhs, rhs], name: name)
    }
    /// `elemwise_div`: lhs / rhs, of one shape.
    public static func elementwiseDivide(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("elemwise_div", [lhs, rhs], name: name)
    }
    /// `broadcast_add`: the sum with NumPy broadcasting.
    public static func broadcastAdd(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("broadcast_add", [lhs, rhs], name: name)
    }
    /// `broadcast_sub`: lhs - rhs with NumPy broadcasting.
    public static func broadcastSubtract(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("broadcast_sub", [lhs, rhs], name: name)
    }
    /// `broadcast_mul`: the product with NumPy broadcasting.
    public static func broadcastMultiply(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("broadcast_mul", [lhs, rhs], name: name)
    }
    /// `broadcast_div`: lhs / rhs with NumPy broadcasting.
    public static func broadcastDivide(_ lhs: Symbol, _ rhs: Symbol, name: String? = nil) -> Symbol {
        make("broadcast_div", [lhs, rhs], name: name)
    }

    // MARK: Scalar arithmetic

    static func scalarOp(_ op: String, _ data: Symbol, _ scalar: Double, name: String?) -> Symbol {
        make(op, [data], attributes: ["scalar": AttributeText.number(scalar)], name: name)
    }

    /// `_plus_scalar`: x + scalar.
    public static func plusScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_plus_scalar", data, scalar, name: name)
    }
    /// `_minus_scalar`: x - scalar.
    public static func minusScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_minus_scalar", data, scalar, name: name)
    }
    /// `_rminus_scalar`: scalar - x.
    public static func reverseMinusScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_rminus_scalar", data, scalar, name: name)
    }
    /// `_mul_scalar`: x * scalar.
    public static func multiplyScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_mul_scalar", data, scalar, name: name)
    }
    /// `_div_scalar`: x / scalar.
    public static func divideScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_div_scalar", data, scalar, name: name)
    }
    /// `_rdiv_scalar`: scalar / x.
    public static func reverseDivideScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_rdiv_scalar", data, scalar, name: name)
    }
    /// `_power_scalar`: x ^ scalar.
    public static func powerScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_power_scalar", data, scalar, name: name)
    }
    /// `_maximum_scalar`: max(x, scalar).
    public static func maximumScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_maximum_scalar", data, scalar, name: name)
    }
    /// `_minimum_scalar`: min(x, scalar).
    public static func minimumScalar(_ data: Symbol, _ scalar: Double, name: String? = nil) -> Symbol {
        scalarOp("_minimum_scalar", data, scalar, name: name)
    }

    // MARK: Others

    /// `add_n`: the sum of one or more arrays of one shape. Throws when `inputs` is empty or holds a
    /// group of several outputs.
    public static func addN(_ inputs: [Symbol], name: String? = nil) throws -> Symbol {
        guard !inputs.isEmpty else { throw GraphError.invalidArgument("addN needs at least one input") }
        return try apply("add_n", inputs, attributes: ["num_args": String(inputs.count)], name: name)
    }

    /// `clip`: x limited to [min, max].
    public static func clip(_ data: Symbol, min: Double, max: Double, name: String? = nil) -> Symbol {
        make("clip", [data], attributes: ["a_min": AttributeText.number(min), "a_max": AttributeText.number(max)], name: name)
    }

    /// `Dropout`: in training (or always, with `mode: .always`) zeroes each element with probability `p`
    /// and scales the kept ones by 1 / (1 - p); elsewhere the identity. Along `axes` one decision is
    /// shared (variational dropout).
    public static func dropout(_ data: Symbol, p: Double = 0.5, mode: DropoutMode = .training, axes: [Int] = [],
                               name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if p != 0.5 { a["p"] = AttributeText.number(p) }
        if mode != .training { a["mode"] = mode.rawValue }
        if !axes.isEmpty { a["axes"] = AttributeText.tuple(axes) }
        return make("Dropout", [data], attributes: a, name: name)
    }

    /// `SoftmaxOutput`: softmax in the forward pass, over axis 1 with `multiOutput`, else over the last
    /// axis (MXNet 1.9.1's oneDNN path, which its CPU builds run); the label and the other parameters
    /// shape the gradient. The label is created as `NAME_label` when nil.
    public static func softmaxOutput(_ data: Symbol, label: Symbol? = nil, gradScale: Double = 1, ignoreLabel: Double = -1,
                                     multiOutput: Bool = false, useIgnore: Bool = false, preserveShape: Bool = false,
                                     normalization: SoftmaxNormalization = .null, outGrad: Bool = false,
                                     smoothAlpha: Double = 0, name: String? = nil) -> Symbol {
        var a: [String: String] = [:]
        if gradScale != 1 { a["grad_scale"] = AttributeText.number(gradScale) }
        if ignoreLabel != -1 { a["ignore_label"] = AttributeText.number(ignoreLabel) }
        if multiOutput { a["multi_output"] = "True" }
        if useIgnore { a["use_ignore"] = "True" }
        if preserveShape { a["preserve_shape"] = "True" }
        if normalization != .null { a["normalization"] = normalization.rawValue }
        if outGrad { a["out_grad"] = "True" }
        if smoothAlpha != 0 { a["smooth_alpha"] = AttributeText.number(smoothAlpha) }
        return make("SoftmaxOutput", [data, label], attributes: a, name: name)
    }

    static func softmaxAttributes(axis: Int, temperature: Double?, dtype: DType?) -> [String: String] {
        var a: [String: String] = [:]
        if axis != -1 { a["axis"] = String(axis) }
        if let temperature { a["temperature"] = AttributeText.number(temperature) }
        if let dtype { a["dtype"] = dtype.name }
        return a
    }

    /// `softmax`: exp(x / temperature) normalized along `axis`; `dtype` (float16, float32 or float64)
    /// sets the output type.
    public static func softmax(_ data: Symbol, axis: Int = -1, temperature: Double? = nil, dtype: DType? = nil,
                               name: String? = nil) -> Symbol {
        make("softmax", [data], attributes: softmaxAttributes(axis: axis, temperature: temperature, dtype: dtype), name: name)
    }

    /// `log_softmax`: the logarithm of `softmax`, computed stably.
    public static func logSoftmax(_ data: Symbol, axis: Int = -1, temperature: Double? = nil, dtype: DType? = nil,
                                  name: String? = nil) -> Symbol {
        make("log_softmax", [data], attributes: softmaxAttributes(axis: axis, temperature: temperature, dtype: dtype), name: name)
    }

    /// `_copy` (alias `identity`): the same values.
    public static func copy(_ data: Symbol, name: String? = nil) -> Symbol { make("_copy", [data], name: name) }

    /// `Cast`: the values converted to `dtype`; float to integer truncates toward zero and wraps as a C
    /// cast does on x86 (MXNet's behaviour).
    public static func cast(_ data: Symbol, dtype: DType, name: String? = nil) -> Symbol {
        make("Cast", [data], attributes: ["dtype": dtype.name], name: name)
    }
}

// MARK: Operators

/// Operators name their nodes as MXNet's Python front end does (`_plus0`, `_mulscalar0`, ...).
extension Symbol {
    static func operatorNode(_ op: String, _ inputs: [Symbol], scalar: Double? = nil, hint: String) -> Symbol {
        let attributes = scalar.map { ["scalar": AttributeText.number($0)] } ?? [:]
        return make(op, inputs, attributes: attributes, name: NameManager.shared.next(hint))
    }

    /// `elemwise_add`, named `_plusN`.
    public static func + (lhs: Symbol, rhs: Symbol) -> Symbol { operatorNode("elemwise_add", [lhs, rhs], hint: "_plus") }
    /// `elemwise_sub`, named `_minusN`.
    public static func - (lhs: Symbol, rhs: Symbol) -> Symbol { operatorNode("elemwise_sub", [lhs, rhs], hint: "_minus") }
    /// `elemwise_mul`, named `_mulN`.
    public static func * (lhs: Symbol, rhs: Symbol) -> Symbol { operatorNode("elemwise_mul", [lhs, rhs], hint: "_mul") }
    /// `elemwise_div`, named `_divN`.
    public static func / (lhs: Symbol, rhs: Symbol) -> Symbol { operatorNode("elemwise_div", [lhs, rhs], hint: "_div") }

    /// `_plus_scalar`, named `_plusscalarN`.
    public static func + (lhs: Symbol, rhs: Double) -> Symbol { operatorNode("_plus_scalar", [lhs], scalar: rhs, hint: "_plusscalar") }
    /// `_plus_scalar`, named `_plusscalarN`.
    public static func + (lhs: Double, rhs: Symbol) -> Symbol { operatorNode("_plus_scalar", [rhs], scalar: lhs, hint: "_plusscalar") }
    /// `_minus_scalar`, named `_minusscalarN`.
    public static func - (lhs: Symbol, rhs: Double) -> Symbol { operatorNode("_minus_scalar", [lhs], scalar: rhs, hint: "_minusscalar") }
    /// `_rminus_scalar`, named `_rminusscalarN`.
    public static func - (lhs: Double, rhs: Symbol) -> Symbol { operatorNode("_rminus_scalar", [rhs], scalar: lhs, hint: "_rminusscalar") }
    /// `_mul_scalar`, named `_mulscalarN`.
    public static func * (lhs: Symbol, rhs: Double) -> Symbol { operatorNode("_mul_scalar", [lhs], scalar: rhs, hint: "_mulscalar") }
    /// `_mul_scalar`, named `_mulscalarN`.
    public static func * (lhs: Double, rhs: Symbol) -> Symbol { operatorNode("_mul_scalar", [rhs], scalar: lhs, hint: "_mulscalar") }
    /// `_div_scalar`, named `_divscalarN`.
    public static func / (lhs: Symbol, rhs: Double) -> Symbol { operatorNode("_div_scalar", [lhs], scalar: rhs, hint: "_divscalar") }
    /// `_rdiv_scalar`, named `_rdivscalarN`.
    public static func / (lhs: Double, rhs: Symbol) -> Symbol { operatorNode("_rdiv_scalar", [rhs], scalar: lhs, hint: "_rdivscalar") }
    /// `_mul_scalar` by -1, named `_mulscalarN`, as MXNet's `-x`.
    public static prefix func - (operand: Symbol) -> Symbol { operatorNode("_mul_scalar", [operand], scalar: -1, hint: "_mulscalar") }
}
