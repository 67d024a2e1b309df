import KilnCore

/// Errors of the engine core (IR building and checking). Each message is a sentence naming the
/// engine, node, input or pass at fault.
public enum EngineCoreError: Error, CustomStringConvertible, Equatable {
    /// A node an engine was asked to compile that its capability table does not support, with the reason.
    case unsupportedNode(engine: String, node: String, op: String, reason: String)
    /// A constant given for a variable has another shape or dtype than the graph was inferred with.
    case constantShape(name: String, expected: Shape, actual: Shape)
    case constantType(name: String, expected: DType, actual: DType)
    /// The optimized graph broke an invariant after a pass (a bug in that pass).
    case invalidIR(pass: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedNode(engine, node, op, reason):
            return "The \(engine) engine cannot compile node '\(node)' (\(op)): \(reason)."
        case let .constantShape(name, expected, actual):
            return "The engine's input '\(name)' was compiled for shape \(expected), but the array given has shape \(actual); compile again for the new shape."
        case let .constantType(name, expected, actual):
            return "The engine's input '\(name)' was compiled for dtype \(expected), but the array given has dtype \(actual)."
        case let .invalidIR(pass, reason):
            return "The engine's graph is invalid after the pass '\(pass)': \(reason)."
        }
    }
}
