import Foundation
import KilnCore

/// How an op may take part in fusion. Passes read this, never op names (after TVM's op patterns).
public enum FusionKind: String, Sendable, CaseIterable {
    /// One output element from the same-index input elements (`relu`, `elemwise_add`).
    case elementwise
    /// Elementwise with broadcasting of smaller inputs (`broadcast_add`).
    case broadcast
    /// Moves or selects elements without arithmetic (`Reshape`, `transpose`, `Concat`).
    case injective
    /// Reduces along axes (`sum`, `mean`, `softmax`).
    case reduction
    /// A heavy op that fusion may attach elementwise work to (`Convolution`, `FullyConnected`).
    case complex
    /// Cannot be fused (`SoftmaxOutput`, `Dropout` in training).
    case opaque
}

/// One attribute an op takes: its MXNet spelling, the form of its value and its default.
public struct AttributeSpec: Sendable {
    /// The forms attribute text can take; used to validate a node's attributes when it is created or loaded.
    public enum Form: Sendable, Equatable {
        case int, optionalInt, float, optionalFloat, bool, ints, optionalInts, floats, string, dtype
        case choice([String])
    }

    public let name: String
    public let form: Form
    /// The default as MXNet would print it; nil when the attribute is required.
    public let defaultValue: String?

    public init(_ name: String, _ form: Form, default defaultValue: String? = nil) {
        self.name = name
        self.form = form
        self.defaultValue = defaultValue
    }

    func validate(_ attributes: Attributes) throws {
        switch form {
        case .int: _ = try attributes.int(name)
        case .optionalInt: _ = try attributes.optionalInt(name)
        case .float: _ = try attributes.float(name)
        case .optionalFloat: _ = try attributes.optionalFloat(name)
        case .bool: _ = try attributes.bool(name)
        case .ints: _ = try attributes.ints(name)
        case .optionalInts: _ = try attributes.optionalInts(name)
        case .floats: _ = try attributes.floats(name)
        case .string: _ = try attributes.string(name)
        case .dtype: _ = try attributes.dtype(name)
        case let .choice(c): _ = try attributes.choice(name, c)
        }
    }
}

/// Which inputs of an op receive a gradient in `backward`.
///
/// Labels (SoftmaxOutput's `label`), auxiliary states and integer inputs get none; everything else an op
/// reads by value does. Kernels compute the gradients; this rule lets the executor skip work that no
/// requested gradient needs and report ops that cannot be trained.
public struct GradientRule: Sendable {
    /// Indices of inputs that receive a gradient, for given attributes.
    public let inputs: @Sendable (Attributes) -> [Int]

    public init(inputs: @escaping @Sendable (Attributes) -> [Int]) { self.inputs = inputs }

    /// Every input except the trailing auxiliary states gets a gradient.
    public static func allInputs(auxiliaryCount: Int = 0, inputCount: @escaping @Sendable (Attributes) -> Int) -> GradientRule {
        GradientRule { a in Array(0..<max(0, inputCount(a) - auxiliaryCount)) }
    }

    /// Only the listed inputs get a gradient.
    public static func only(_ indices: [Int]) -> GradientRule { GradientRule { _ in indices } }
}

/// What shape and type rules see of a node: its name, op, attributes (defaults filled in) and input names.
///
/// Its helpers build errors that name the node and the input, so rules stay short:
/// ```
/// let data = try ctx.known(shapes, 0)                 // throws unknownShape if nil
/// try ctx.assign(&shapes, 1, [numFilter, c, kh, kw])  // fills a weight shape or checks it
/// ```
public struct NodeContext: Sendable {
    public let name: String
    public let op: String
    public let attributes: Attributes
    public let inputNames: [String]
    /// Number of outputs the node has (all of them, visible or not).
    public let outputCount: Int

    public init(name: String, op: String, attributes: Attributes, inputNames: [String], outputCount: Int = 1) {
        self.name = name
        self.op = op
        self.attributes = attributes
        self.inputNames = inputNames
        self.outputCount = outputCount
    }

    func inputName(_ i: Int) -> String { i < inputNames.count ? inputNames[i] : "input \(i)" }

    /// The shape of input `i`, which must be known.
    public func known(_ shapes: [Shape?], _ i: Int) throws -> Shape {
        guard i < shapes.count, let s = shapes[i] else { throw GraphError.unknownShape(node: name, input: inputName(i)) }
        return s
    }

    /// Sets input `i`'s shape when unknown, or checks that it equals `shape`.
    public func assign(_ shapes: inout [Shape?], _ i: Int, _ shape: Shape) throws {
        if let s = shapes[i] {
            guard s == shape else {
                throw GraphError.shapeMismatch(node: name, op: op, input: inputName(i), expected: shape.description, actual: s)
            }
        } else {
            shapes[i] = shape
        }
    }

    /// An error for a broken shape rule, as a sentence fragment (`"kernel (5, 5) is larger than the padded input (3, 3)"`).
    public func invalid(_ reason: String) -> GraphError { .invalidShape(node: name, op: op, reason: reason) }

    /// An error for input `i` whose shape does not fit; `expected` describes what would (`"rank 4"`).
    public func mismatch(_ i: Int, expected: String, actual: Shape) -> GraphError {
        .shapeMismatch(node: name, op: op, input: inputName(i), expected: expected, actual: actual)
    }
}

/// The definition of one op: everything the graph layer knows of it, in one place.
///
/// Kernels live in KilnRuntime and the engine's lowering in its capability table; both find the op by
/// ``name``. Rules receive attributes with defaults filled in.
public struct OpDefinition: Sendable {
    /// Shape rule: fills unknown input shapes it can derive (weights) and returns all output shapes.
    public typealias ShapeRule = @Sendable (_ shapes: inout [Shape?], _ context: NodeContext) throws -> [Shape]
    /// Type rule: fills unknown input types and returns all output types.
    public typealias TypeRule = @Sendable (_ types: inout [DType?], _ context: NodeContext) throws -> [DType]
    /// Names of the inputs for given attributes (`["data", "weight", "bias"]`).
    public typealias NamesRule = @Sendable (_ attributes: Attributes) throws -> [String]

    /// The op's name in MXNet's registry and files.
    public let name: String
    /// Other names MXNet files may use for it (`_Plus` for `elemwise_add`).
    public let aliases: [String]
    /// The attributes it takes.
    public let attributes: [AttributeSpec]
    public let fusion: FusionKind
    /// Input names; `nil` means a variable number of inputs (`Concat`, `add_n`).
    public let inputNames: NamesRule
    /// How many trailing inputs are auxiliary states (BatchNorm's moving mean and variance).
    public let auxiliaryCount: @Sendable (Attributes) -> Int
    /// Names of all outputs (MXNet's `list_outputs` suffixes: `["output"]`, `["output0", "output1"]`).
    public let outputNames: NamesRule
    /// How many of the outputs a user sees (BatchNorm has 3 outputs, 1 visible unless `output_mean_var`).
    public let visibleOutputCount: @Sendable (Attributes) throws -> Int
    /// Indices of inputs that are weights: constants at inference, which the engine may bake in.
    public let weightInputs: @Sendable (Attributes) -> [Int]
    /// Indices of inputs that are training labels of a loss head (SoftmaxOutput's `label`): read by
    /// the gradient only, so optional at inference, where bind fills them with zeros (as MXNet's
    /// `Module.predict` and its TensorRT bridge need no label).
    public let labelInputs: @Sendable (Attributes) -> [Int]
    public let inferShape: ShapeRule
    public let inferType: TypeRule
    /// How the op is differentiated; nil for ops without a gradient. The arithmetic lives in the
    /// kernels' `backward`; the rule says which inputs receive a gradient.
    public let gradient: GradientRule?

    public init(
        name: String,
        aliases: [String] = [],
        attributes: [AttributeSpec] = [],
        fusion: FusionKind,
        inputs: @escaping NamesRule = { _ in ["data"] },
        auxiliaryCount: @escaping @Sendable (Attributes) -> Int = { _ in 0 },
        outputs: @escaping NamesRule = { _ in ["output"] },
        visibleOutputCount: (@Sendable (Attributes) throws -> Int)? = nil,
        weightInputs: @escaping @Sendable (Attributes) -> [Int] = { _ in [] },
        labelInputs: @escaping @Sendable (Attributes) -> [Int] = { _ in [] },
        inferShape: @escaping ShapeRule,
        inferType: @escaping TypeRule = OpDefinition.sameTypeEverywhere,
        gradient: GradientRule? = nil
    ) {
        self.name = name
        self.aliases = aliases
        self.attributes = attributes
        self.fusion = fusion
        self.inputNames = inputs
        self.auxiliaryCount = auxiliaryCount
        self.outputNames = outputs
        let outs = outputs
        self.visibleOutputCount = visibleOutputCount ?? { try outs($0).count }
        self.weightInputs = weightInputs
        self.labelInputs = labelInputs
        self.inferShape = inferShape
        self.inferType = inferType
        self.gradient = gradient
    }

    /// The default type rule: every input and output has the type of the first known input.
    public static let sameTypeEverywhere: TypeRule = { types, ctx in
        guard let t = types.compactMap({ $0 }).first else {
            throw GraphError.unknownShape(node: ctx.name, input: ctx.inputNames.first ?? "data")
        }
        for i in types.indices {
            if let u = types[i], u != t {
                throw GraphError.typeMismatch(node: ctx.name, op: ctx.op, input: ctx.inputName(i), expected: t, actual: u)
            }
            types[i] = t
        }
        return [DType](repeating: t, count: max(1, ctx.outputCount))
    }

    /// `attributes` with the op's defaults filled in, validated against the schema. Keys starting with
    /// `__` are MXNet annotations (`__init__`, `__lr_mult__`) and pass through unchecked.
    public func resolve(_ attributes: Attributes, node: String) throws -> Attributes {
        var a = attributes
        a.node = node
        a.op = name
        let key = name + "|" + self.attributes.map(\.name).joined(separator: ",")
        if let values = ResolvedAttributes.shared.lookup(key, attributes.values) {
            a.values = values
            return a
        }
        let known = Set(self.attributes.map(\.name))
        for key in attributes.values.keys where !key.hasPrefix("__") && !known.contains(key) {
            throw GraphError.unknownAttribute(node: node, op: name, attribute: key, accepted: Array(known))
        }
        for spec in self.attributes {
            if a.values[spec.name] == nil {
                guard let d = spec.defaultValue else { throw GraphError.missingAttribute(node: node, op: name, attribute: spec.name) }
                a.values[spec.name] = d
            }
            try spec.validate(a)
        }
        ResolvedAttributes.shared.store(key, attributes.values, a.values)
        return a
    }
}

/// Resolutions already done, by op and raw values. Binding resolves each node's attributes many
/// times (shape and type inference, partitioning, kernel signatures), and validating parses every
/// value: ResNet-56's warm first result spent a fifth of its time here. Only successes are kept
/// (errors name their node, so they are built each time), and not those with a value over 4 KB (an
/// engine node's serialized subgraph: few, and large); the table is emptied past 4096 entries.
final class ResolvedAttributes: @unchecked Sendable {
    static let shared = ResolvedAttributes()
    private let lock = NSLock()
    private var entries: [String: [[String: String]: [String: String]]] = [:]
    private var count = 0

    func lookup(_ key: String, _ raw: [String: String]) -> [String: String]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]?[raw]
    }

    func store(_ key: String, _ raw: [String: String], _ resolved: [String: String]) {
        guard resolved.values.allSatisfy({ $0.utf8.count <= 4096 }) else { return }
        lock.lock()
        defer { lock.unlock() }
        if count >= 4096 {
            entries = [:]
            count = 0
        }
        if entries[key, default: [:]].updateValue(resolved, forKey: raw) == nil { count += 1 }
    }
}
