import KilnCore

/// Errors of KilnPartition. Each message is a sentence naming the option, node or engine at fault.
public enum PartitionError: Error, CustomStringConvertible, Equatable {
    /// A partition option with a value that cannot be used.
    case invalidOption(name: String, value: String, reason: String)
    /// An op in the exclusion list that Kiln's registry does not know.
    case unknownExcludedOp(String)
    /// An engine node names an engine that was not given to the engine-node factory.
    case unknownEngine(node: String, engine: String, known: [String])
    /// An engine refuses a node of the group it was given at bind.
    case unsupportedInEngine(node: String, engine: String, member: String, reason: String)
    /// A constant given at bind does not have the shape the engine node infers for it.
    case constantShape(node: String, name: String, expected: Shape, actual: Shape)
    /// A compiled group returned another number of outputs than its engine node has.
    case outputCount(node: String, expected: Int, actual: Int)
    /// The partitioned graph broke one of the partitioner's guarantees (a bug in Kiln).
    case verificationFailed(String)

    public var description: String {
        switch self {
        case let .invalidOption(name, value, reason):
            return "The partition option \(name)=\(value) cannot be used: \(reason)."
        case let .unknownExcludedOp(op):
            return "The exclusion list names op '\(op)', which is not an op Kiln knows; use MXNet op names such as Convolution or elemwise_add."
        case let .unknownEngine(node, engine, known):
            let list = known.isEmpty ? "none was given" : "the engines given are \(known.sorted().joined(separator: ", "))"
            return "Engine node '\(node)' runs on engine '\(engine)', but \(list)."
        case let .unsupportedInEngine(node, engine, member, reason):
            return "Engine node '\(node)': engine '\(engine)' cannot run its node '\(member)' at this bind (\(reason))."
        case let .constantShape(node, name, expected, actual):
            return "Engine node '\(node)' expects the constant '\(name)' of shape \(expected), but the value given at bind has shape \(actual)."
        case let .outputCount(node, expected, actual):
            return "Engine node '\(node)' has \(expected) outputs, but its compiled group returned \(actual)."
        case let .verificationFailed(reason):
            return "The partitioned graph failed verification: \(reason). This is a bug in Kiln's partitioner; please report it with the symbol."
        }
    }
}
