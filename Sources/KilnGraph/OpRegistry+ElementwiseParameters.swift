import KilnCore

// Typed parameters of the elementwise and softmax ops, read from resolved attributes.
//
// Every backend (reference and framework kernels, the GPU's kernels, both engines' capability
// tables) switches on these enums instead of comparing attribute strings, so an attribute's text is
// parsed in one place and a new value is a compile error wherever it is not handled.
//
// ```
// Activation(act_type="relu")           -> ActivationParameters(kind: .relu)
// LeakyReLU(act_type="elu", slope=0.3)  -> LeakyReLUParameters(kind: .elu, slope: 0.3, ...)
// Dropout(mode="always", p=0.5)         -> DropoutParameters(p: 0.5, mode: .always, axes: [])
// ```

/// Parameters of `Activation`.
public struct ActivationParameters: Sendable, Equatable {
    public var kind: ActivationKind

    /// Reads the `act_type` of an Activation node (defaults already filled in).
    public init(_ a: Attributes) throws {
        guard let k = ActivationKind(rawValue: try a.string("act_type")) else {
            throw attributeError(a, "act_type", "one of " + ActivationKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        kind = k
    }

    public init(kind: ActivationKind) { self.kind = kind }
}

/// Parameters of `LeakyReLU`.
public struct LeakyReLUParameters: Sendable, Equatable {
    public var kind: LeakyReLUKind
    /// The negative slope (`leaky`) or the scale of the negative part (`elu`).
    public var slope: Double
    /// `rrelu`'s range of random slopes.
    public var lowerBound: Double
    public var upperBound: Double

    /// Reads the attributes of a LeakyReLU node (defaults already filled in).
    public init(_ a: Attributes) throws {
        guard let k = LeakyReLUKind(rawValue: try a.string("act_type")) else {
            throw attributeError(a, "act_type", "one of " + LeakyReLUKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        kind = k
        slope = try a.float("slope")
        lowerBound = try a.float("lower_bound")
        upperBound = try a.float("upper_bound")
    }
}

/// Parameters of `Dropout`.
public struct DropoutParameters: Sendable, Equatable {
    /// The probability of dropping an element.
    public var p: Double
    public var mode: DropoutMode
    /// Axes along which one mask is shared (empty: none).
    public var axes: [Int]

    /// Reads the attributes of a Dropout node (defaults already filled in).
    public init(_ a: Attributes) throws {
        p = try a.float("p")
        guard p >= 0 && p <= 1 else { throw attributeError(a, "p", "a probability from 0 to 1") }
        guard let m = DropoutMode(rawValue: try a.string("mode")) else {
            throw attributeError(a, "mode", "training or always")
        }
        mode = m
        axes = try a.ints("axes")
    }

    /// Whether the op copies its input in an inference run: in `training` mode, or with nothing to drop.
    /// With `mode=always` MXNet drops at inference too, so no backend may treat it as a copy.
    public var isIdentityAtInference: Bool { mode == .training || p == 0 }
}

/// Parameters of `clip`.
public struct ClipParameters: Sendable, Equatable {
    public var min: Double
    public var max: Double

    /// Reads `a_min` and `a_max` of a clip node.
    public init(_ a: Attributes) throws {
        min = try a.float("a_min")
        max = try a.float("a_max")
    }
}

/// Parameters of `softmax` and `log_softmax`.
public struct SoftmaxParameters: Sendable, Equatable {
    /// The axis as given (may be negative).
    public var axis: Int
    /// Divides the input first; nil means 1.
    public var temperature: Double?
    /// The output's dtype, nil for the input's.
    public var dtype: DType?
    /// Whether a second input gives each row's length.
    public var useLength: Bool

    /// Reads the attributes of a softmax node (defaults already filled in).
    public init(_ a: Attributes) throws {
        axis = try a.int("axis")
        temperature = try a.optionalFloat("temperature")
        let d = try a.string("dtype")
        dtype = d == "None" ? nil : try a.dtype("dtype")
        useLength = OpRegistry.useLength(a)
    }
}

/// Parameters of `SoftmaxOutput` that decide its forward.
public struct SoftmaxOutputParameters: Sendable, Equatable {
    /// Softmax over axis 1 of (N, C, ...) rather than over the last axis.
    public var multiOutput: Bool
    public var normalization: SoftmaxNormalization

    /// Reads the attributes of a SoftmaxOutput node (defaults already filled in).
    public init(_ a: Attributes) throws {
        multiOutput = try a.bool("multi_output")
        guard let n = SoftmaxNormalization(rawValue: try a.string("normalization")) else {
            throw attributeError(a, "normalization", "one of null, batch, valid")
        }
        normalization = n
    }
}
