import KilnCore

/// Errors of KilnGraph. Each message is a sentence that names the file, node, input or attribute at fault.
public enum GraphError: Error, CustomStringConvertible, Equatable {
    /// An op name that the registry does not know.
    case unknownOp(op: String, node: String, source: String?)
    /// Several op names that the registry does not know, each with the first node using it and how
    /// many nodes do, so that a model's whole list of missing ops is seen at once.
    case unknownOps(ops: [UnknownOpUse], source: String?)
    /// An attribute that the op does not take.
    case unknownAttribute(node: String, op: String, attribute: String, accepted: [String])
    /// A required attribute is absent.
    case missingAttribute(node: String, op: String, attribute: String)
    /// An attribute whose text cannot be read as the op requires.
    case invalidAttribute(node: String, op: String, attribute: String, value: String, expected: String)
    /// An input whose shape does not fit what the op needs.
    case shapeMismatch(node: String, op: String, input: String, expected: String, actual: Shape)
    /// A data input and a weight (or bias, gamma...) whose shapes do not fit together: `expected` is
    /// the weight shape the data's shape would need. The data is named first, since a wrong image
    /// size or channel count is the common cause and the weights come from the model's file.
    case inputDoesNotFitWeight(node: String, op: String, input: String, shape: Shape, weight: String, weightShape: Shape, expected: String)
    /// Any other shape rule the op enforces.
    case invalidShape(node: String, op: String, reason: String)
    /// A shape that cannot be inferred because an input's shape is not known.
    case unknownShape(node: String, input: String)
    /// A dtype rule broken.
    case typeMismatch(node: String, op: String, input: String, expected: DType, actual: DType)
    /// Symbol JSON that cannot be read; `field` is a path such as `nodes[3].inputs`.
    case malformedJSON(source: String, field: String, reason: String)
    /// The wrong number of inputs for an op.
    case inputCount(node: String, op: String, expected: String, actual: Int)
    /// A reference to an output a node does not have.
    case invalidOutput(node: String, index: Int, count: Int)
    /// A name used for two different variables or nodes where names must be unique.
    case duplicateName(String)
    /// A caller error in the graph API, described in a sentence.
    case invalidArgument(String)
    /// An error found while reading a file, with the file's name.
    indirect case inFile(String, GraphError)

    /// Text from a file as an error quotes it: whole when short, else its start and its length, so
    /// that a 1 MB attribute does not fill the terminal.
    public static func excerpt(_ text: String, limit: Int = 80) -> String {
        guard text.count > limit else { return text }
        return "\(text.prefix(limit))... (\(text.count) characters)"
    }

    public var description: String {
        switch self {
        case let .unknownOp(op, node, source):
            return "Unknown op '\(GraphError.excerpt(op))' at node '\(GraphError.excerpt(node))'\(source.map { " in '\($0)'" } ?? ""); Kiln's registry does not have it."
        case let .unknownOps(ops, source):
            let list = ops.map { "'\(GraphError.excerpt($0.op))' (node '\(GraphError.excerpt($0.firstNode))'\($0.count > 1 ? " and \($0.count - 1) more" : ""))" }
            return "\(source.map { "'\($0)' uses" } ?? "The symbol uses") \(ops.count) ops that Kiln's registry does not have: \(list.joined(separator: ", "))."
        case let .unknownAttribute(node, op, attribute, accepted):
            return "Node '\(GraphError.excerpt(node))' (\(op)) has an unknown attribute '\(GraphError.excerpt(attribute))'; accepted attributes are \(accepted.sorted().joined(separator: ", "))."
        case let .missingAttribute(node, op, attribute):
            return "Node '\(node)' (\(op)) needs the attribute '\(attribute)'."
        case let .invalidAttribute(node, op, attribute, value, expected):
            return "Node '\(GraphError.excerpt(node))' (\(op)) has attribute \(attribute)=\"\(GraphError.excerpt(value))\"; expected: \(expected)."
        case let .shapeMismatch(node, op, input, expected, actual):
            return "Node '\(node)' (\(op)) expects input '\(input)' of shape \(expected), but it has shape \(actual)."
        case let .inputDoesNotFitWeight(node, op, input, shape, weight, weightShape, expected):
            return "Node '\(node)' (\(op)): its input '\(input)' of shape \(shape) and its \(weight) of shape \(weightShape) do not fit together; for this input the \(weight) would need shape \(expected)."
        case let .invalidShape(node, op, reason):
            return "Node '\(node)' (\(op)): \(reason)."
        case let .unknownShape(node, input):
            return "The shape of input '\(input)' of node '\(node)' is not known; give it in the shapes passed to inferShape or bind."
        case let .typeMismatch(node, op, input, expected, actual):
            return "Node '\(node)' (\(op)) expects input '\(input)' of dtype \(expected), but it has dtype \(actual)."
        case let .malformedJSON(source, field, reason):
            return "The symbol JSON '\(source)' is malformed at \(field): \(reason)."
        case let .inputCount(node, op, expected, actual):
            return "Node '\(node)' (\(op)) takes \(expected) inputs, but \(actual) were given."
        case let .invalidOutput(node, index, count):
            return "Node '\(node)' has \(count) outputs, so output \(index) does not exist."
        case let .duplicateName(name):
            return "The name '\(name)' is used by two different nodes."
        case let .invalidArgument(reason):
            return reason.hasSuffix(".") ? reason : reason + "."
        case let .inFile(source, error):
            return "In '\(source)': \(error.description)"
        }
    }
}

/// One op name the registry does not know, as a symbol file uses it.
public struct UnknownOpUse: Equatable, Sendable {
    public let op: String
    /// The first node, in file order, with this op.
    public let firstNode: String
    /// How many nodes use it.
    public let count: Int

    public init(op: String, firstNode: String, count: Int) {
        (self.op, self.firstNode, self.count) = (op, firstNode, count)
    }
}
