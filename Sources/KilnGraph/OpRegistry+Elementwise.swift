import KilnCore

/// The elementwise family: activations, unary math, binary and broadcast arithmetic, scalar ops,
/// `add_n`, `clip`, `Dropout`, the softmax ops, `_copy` and `Cast`.
///
/// Attribute schemas and defaults are MXNet 1.9.1's, read from its registry (`Activation` has no
/// default `act_type`; the scalar ops carry `is_int`, default true).
extension OpRegistry {
    static var elementwiseOps: [OpDefinition] {
        var ops: [OpDefinition] = [activation, leakyReLU]
        ops += ["relu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt", "square"].map { unary($0) }
        ops += [
            elementwiseBinary("elemwise_add", aliases: ["_Plus", "_plus", "_add"]),
            elementwiseBinary("elemwise_sub", aliases: ["_Minus", "_minus", "_sub"]),
            elementwiseBinary("elemwise_mul", aliases: ["_Mul", "_mul"]),
            elementwiseBinary("elemwise_div", aliases: ["_Div", "_div"]),
            broadcastBinary("broadcast_add", aliases: ["broadcast_plus"]),
            broadcastBinary("broadcast_sub", aliases: ["broadcast_minus"]),
            broadcastBinary("broadcast_mul"),
            broadcastBinary("broadcast_div"),
        ]
        ops += ["_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar",
                "_power_scalar", "_maximum_scalar", "_minimum_scalar"].map { scalar($0) }
        ops += [addN, clip, dropout, softmaxOutput, softmax("softmax"), softmax("log_softmax"), copy, cast]
        return ops
    }

    // MARK: Shape rules shared by the family

    /// Every input and the output have one shape; an unknown input takes it from a known one
    /// (MXNet's `ElemwiseShape`), so `elemwise_add(data, w)` fills in `w`.
    static let sameShapeEverywhere: OpDefinition.ShapeRule = { shapes, ctx in
        guard let first = shapes.firstIndex(where: { $0 != nil }), let shape = shapes[first] else {
            throw GraphError.unknownShape(node: ctx.name, input: ctx.inputNames.first ?? "data")
        }
        for i in shapes.indices { try ctx.assign(&shapes, i, shape) }
        return [Shape](repeating: shape, count: max(1, ctx.outputCount))
    }

    /// The NumPy broadcast of two shapes, aligned at their last axes; nil when an axis pair differs
    /// and neither is 1.
    public static func broadcastShape(_ a: Shape, _ b: Shape) -> Shape? {
        let rank = max(a.rank, b.rank)
        var out = [Int](repeating: 1, count: rank)
        for k in 0..<rank {
            let x = k < rank - a.rank ? 1 : a[k - (rank - a.rank)]
            let y = k < rank - b.rank ? 1 : b[k - (rank - b.rank)]
            guard x == y || x == 1 || y == 1 else { return nil }
            out[k] = x == 1 ? y : x
        }
        return Shape(out)
    }

    // MARK: Definitions

    static var activation: OpDefinition {
        OpDefinition(
            name: "Activation",
            attributes: [AttributeSpec("act_type", .choice(["relu", "sigmoid", "softrelu", "softsign", "tanh"]))],
            fusion: .elementwise,
            inferShape: sameShapeEverywhere,
            gradient: .only([0]))
    }

    /// `LeakyReLU`: with `prelu` a second input `gamma` of shape (C,) (or (1,)) scales the negative part
    /// per channel of axis 1; with `rrelu` a hidden second output holds the slopes used. Its fusion kind
    /// is broadcast because of `gamma`.
    static var leakyReLU: OpDefinition {
        OpDefinition(
            name: "LeakyReLU",
            attributes: [
                AttributeSpec("act_type", .choice(["elu", "gelu", "leaky", "prelu", "rrelu", "selu"]), default: "leaky"),
                AttributeSpec("slope", .float, default: "0.25"),
                AttributeSpec("lower_bound", .float, default: "0.125"),
                AttributeSpec("upper_bound", .float, default: "0.334"),
            ],
            fusion: .broadcast,
            inputs: { a in try a.string("act_type") == "prelu" ? ["data", "gamma"] : ["data"] },
            outputs: { a in try a.string("act_type") == "rrelu" ? ["output", "mask"] : ["output"] },
            visibleOutputCount: { _ in 1 },
            weightInputs: { a in (try? a.string("act_type")) == "prelu" ? [1] : [] },
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                if try ctx.attributes.string("act_type") == "prelu" {
                    guard data.rank >= 2 else {
                        throw ctx.mismatch(0, expected: "rank 2 or more (prelu scales per channel of axis 1)", actual: data)
                    }
                    if shapes.count > 1 {
                        if let g = shapes[1] {
                            guard g == [data[1]] || g == [1] else {
                                throw ctx.mismatch(1, expected: "(\(data[1]),) or (1,)", actual: g)
                            }
                        } else {
                            shapes[1] = [data[1]]
                        }
                    }
                }
                return [Shape](repeating: data, count: ctx.outputCount)
            },
            // prelu's gamma is learned; rrelu's random slopes are a hidden output, not an input.
            gradient: GradientRule { a in (try? a.string("act_type")) == "prelu" ? [0, 1] : [0] })
    }

    /// A unary op without attributes (`relu`, `exp`, ...).
    static func unary(_ name: String) -> OpDefinition {
        OpDefinition(name: name, fusion: .elementwise, inferShape: sameShapeEverywhere, gradient: .only([0]))
    }

    static func elementwiseBinary(_ name: String, aliases: [String]) -> OpDefinition {
        OpDefinition(name: name, aliases: aliases, fusion: .elementwise, inputs: { _ in ["lhs", "rhs"] },
                     inferShape: sameShapeEverywhere, gradient: .only([0, 1]))
    }

    static func broadcastBinary(_ name: String, aliases: [String] = []) -> OpDefinition {
        OpDefinition(
            name: name, aliases: aliases, fusion: .broadcast, inputs: { _ in ["lhs", "rhs"] },
            inferShape: { shapes, ctx in
                let lhs = try ctx.known(shapes, 0), rhs = try ctx.known(shapes, 1)
                guard let out = broadcastShape(lhs, rhs) else {
                    throw ctx.invalid("operands could not be broadcast together with shapes \(lhs) (lhs) and \(rhs) (rhs)")
                }
                return [out]
            },
            gradient: .only([0, 1]))
    }

    /// A scalar op (`_plus_scalar`, ...). With an integer input and `is_int` false MXNet 1.9 computes
    /// in float64, so the output type follows; with `is_int` true the scalar is truncated to the input's
    /// integer type.
    static func scalar(_ name: String) -> OpDefinition {
        OpDefinition(
            name: name,
            attributes: [AttributeSpec("scalar", .float, default: "1.0"), AttributeSpec("is_int", .bool, default: "True")],
            fusion: .elementwise,
            inferShape: sameShapeEverywhere,
            inferType: { types, ctx in
                let t = types[0] ?? .float32
                types[0] = t
                let isInt = try ctx.attributes.bool("is_int")
                return [!t.isFloatingPoint && !isInt ? .float64 : t]
            },
            gradient: .only([0]))
    }

    static var addN: OpDefinition {
        OpDefinition(
            name: "add_n", aliases: ["ElementWiseSum"],
            attributes: [AttributeSpec("num_args", .int)],
            fusion: .elementwise,
            inputs: { a in
                let n = try a.count("num_args")
                return (0..<n).map { "arg\($0)" }
            },
            inferShape: { shapes, ctx in
                let n = try ctx.attributes.int("num_args")
                guard shapes.count == n else {
                    throw GraphError.inputCount(node: ctx.name, op: ctx.op, expected: String(n), actual: shapes.count)
                }
                return try sameShapeEverywhere(&shapes, ctx)
            },
            gradient: .allInputs { a in (try? a.int("num_args")) ?? 0 })
    }

    static var clip: OpDefinition {
        OpDefinition(
            name: "clip",
            attributes: [AttributeSpec("a_min", .float), AttributeSpec("a_max", .float)],
            fusion: .elementwise,
            inferShape: sameShapeEverywhere,
            gradient: .only([0]))
    }

    /// The values MXNet accepts for its `boolean or None` attributes (`Dropout.cudnn_off`, `softmax.use_length`).
    static let optionalBool: AttributeSpec.Form = .choice(["None", "True", "False", "true", "false", "1", "0"])

    /// `Dropout`: output and a hidden mask, both of the data's shape.
    static var dropout: OpDefinition {
        OpDefinition(
            name: "Dropout",
            attributes: [
                AttributeSpec("p", .float, default: "0.5"),
                AttributeSpec("mode", .choice(["always", "training"]), default: "training"),
                AttributeSpec("axes", .ints, default: "()"),
                AttributeSpec("cudnn_off", optionalBool, default: "False"),
            ],
            fusion: .opaque,
            outputs: { _ in ["output", "mask"] },
            visibleOutputCount: { _ in 1 },
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                let p = try ctx.attributes.float("p")
                guard p >= 0 && p <= 1 else { throw ctx.invalid("p=\(p) is not a probability in [0, 1]") }
                for axis in try ctx.attributes.ints("axes") where data.normalizedAxis(axis) == nil {
                    throw ctx.invalid("axes holds \(axis), which is not an axis of the data of shape \(data)")
                }
                return [data, data]
            },
            gradient: .only([0]))
    }

    /// `SoftmaxOutput`: softmax in the forward pass (over axis 1 with `multi_output`, else over the last
    /// axis, as MXNet 1.9.1's default CPU path does); the label only matters for the gradient. Its shape
    /// follows MXNet: the data's shape without the last axis, or with `multi_output` (which wins over
    /// `preserve_shape`) (N, rest) where rest is the product of axes 2...; (N, d2, d3, ...) and
    /// (N, 1, d2, ...) are accepted too, as is a label of the data's own shape (probabilities).
    static var softmaxOutput: OpDefinition {
        OpDefinition(
            name: "SoftmaxOutput", aliases: ["Softmax"],
            attributes: [
                AttributeSpec("grad_scale", .float, default: "1.0"),
                AttributeSpec("ignore_label", .float, default: "-1.0"),
                AttributeSpec("multi_output", .bool, default: "False"),
                AttributeSpec("use_ignore", .bool, default: "False"),
                AttributeSpec("preserve_shape", .bool, default: "False"),
                AttributeSpec("normalization", .choice(["batch", "null", "valid"]), default: "null"),
                AttributeSpec("out_grad", .bool, default: "False"),
                AttributeSpec("smooth_alpha", .float, default: "0.0"),
            ],
            fusion: .opaque,
            inputs: { _ in ["data", "label"] },
            labelInputs: { _ in [1] },
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                guard data.rank >= 2 else { throw ctx.mismatch(0, expected: "rank 2 or more", actual: data) }
                let multi = try ctx.attributes.bool("multi_output")
                let n = data[0]
                var accepted: [Shape]
                if multi {
                    let rest = data.dims.dropFirst(2).reduce(1, *)
                    var perPosition = data
                    perPosition[1] = 1
                    accepted = [[n, rest], Shape([n] + data.dims.dropFirst(2)), perPosition]
                } else {
                    accepted = [Shape(Array(data.dims.dropLast()))]
                }
                accepted.append(data)
                if shapes.count > 1 {
                    if let label = shapes[1] {
                        guard accepted.contains(label) else {
                            throw ctx.mismatch(1, expected: accepted.map(\.description).joined(separator: " or "), actual: label)
                        }
                    } else {
                        shapes[1] = accepted[0]
                    }
                }
                return [data]
            },
            // The label gets no gradient, as in MXNet.
            gradient: .only([0]))
    }

    /// `softmax` and `log_softmax`: along `axis`, of `data / temperature`; `dtype` sets the output type.
    /// `use_length` (a per-row length input) is accepted here and refused by the kernels.
    static func softmax(_ name: String) -> OpDefinition {
        let takesLength = name == "softmax"
        return OpDefinition(
            name: name,
            attributes: [
                AttributeSpec("axis", .int, default: "-1"),
                AttributeSpec("temperature", .optionalFloat, default: "None"),
                AttributeSpec("dtype", .choice(["None", "float16", "float32", "float64"]), default: "None"),
                AttributeSpec("use_length", optionalBool, default: "False"),
            ],
            fusion: .reduction,
            inputs: { a in takesLength && useLength(a) ? ["data", "length"] : ["data"] },
            inferShape: { shapes, ctx in
                let data = try ctx.known(shapes, 0)
                let axis = try ctx.attributes.int("axis")
                guard let k = data.normalizedAxis(axis) else {
                    throw ctx.invalid("axis \(axis) is out of range for the data of shape \(data)")
                }
                if shapes.count > 1 {
                    var lengthShape = data.dims
                    lengthShape.remove(at: k)
                    try ctx.assign(&shapes, 1, Shape(lengthShape))
                }
                return [data]
            },
            inferType: { types, ctx in
                let t = types[0] ?? .float32
                types[0] = t
                if types.count > 1 && types[1] == nil { types[1] = t }
                let dtype = try ctx.attributes.string("dtype")
                return [dtype == "None" ? t : try ctx.attributes.dtype("dtype")]
            },
            // The per-row lengths are integers and get no gradient.
            gradient: .only([0]))
    }

    /// Whether a `softmax` node's `use_length` is on (`None` counts as off).
    public static func useLength(_ a: Attributes) -> Bool {
        guard a.has("use_length"), let v = a["use_length"] else { return false }
        return AttributeText.bool(v) ?? false
    }

    static var copy: OpDefinition {
        OpDefinition(name: "_copy", aliases: ["identity"], fusion: .elementwise, inferShape: sameShapeEverywhere,
                     gradient: .only([0]))
    }

    /// `Cast`: MXNet also accepts `bool`, which Kiln has no dtype for; type inference refuses it.
    static var cast: OpDefinition {
        OpDefinition(
            name: "Cast", aliases: ["cast"],
            attributes: [AttributeSpec("dtype", .choice(["bfloat16", "bool", "float16", "float32", "float64", "int32", "int64", "int8", "uint8"]))],
            fusion: .elementwise,
            inferShape: sameShapeEverywhere,
            inferType: { types, ctx in
                if types[0] == nil { types[0] = .float32 }
                let name = try ctx.attributes.string("dtype")
                guard let t = DType(name: name) else {
                    throw GraphError.invalidAttribute(node: ctx.name, op: ctx.op, attribute: "dtype", value: name,
                                                      expected: "one of the dtypes Kiln has (\(DType.acceptedNames))")
                }
                return [t]
            },
            gradient: .only([0]))
    }
}
