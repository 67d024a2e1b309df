import KilnCore

/// Errors of KilnTrain. Each message is a sentence naming the parameter, attribute or call at fault.
public enum KilnTrainError: Error, CustomStringConvertible, Equatable {
    /// A variable whose name no initialization rule covers (MXNet's "Unknown initialization pattern").
    case unknownInitializationPattern(variable: String)
    /// A variable's `__init__` attribute that cannot be read or names an unknown initializer.
    case invalidInitAttribute(variable: String, value: String, reason: String)
    /// An initializer that cannot fill an array of this shape (Xavier on a vector).
    case cannotInitialize(variable: String, initializer: String, reason: String)
    /// Two arrays that must agree in shape do not; `what` names them.
    case shapeMismatch(what: String, expected: Shape, actual: Shape)
    /// A parameter that was needed but not given (initParams without allowMissing, setParams).
    case missingParameter(name: String)
    /// A Module call made before the call it depends on (`forward` before `bind`).
    case notReady(operation: String, needs: String)
    /// A caller error, as a sentence.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .unknownInitializationPattern(variable):
            return "Unknown initialization pattern for '\(variable)': without an __init__ attribute only names ending in weight, bias, gamma, beta, min, max and the moving or running statistics are initialized; give the variable an __init__ attribute or its value in argParams."
        case let .invalidInitAttribute(variable, value, reason):
            return "The __init__ attribute of '\(variable)' (\(value)) cannot be used: \(reason)."
        case let .cannotInitialize(variable, initializer, reason):
            return "\(initializer) cannot initialize '\(variable)': \(reason)."
        case let .shapeMismatch(what, expected, actual):
            return "\(what) has shape \(actual), but \(expected) is expected."
        case let .missingParameter(name):
            return "The parameter '\(name)' has no value; pass it in argParams or auxParams, or allow missing parameters so that the initializer fills it."
        case let .notReady(operation, needs):
            return "\(operation) needs \(needs) first."
        case let .invalidArgument(reason):
            return reason.hasSuffix(".") ? reason : reason + "."
        }
    }
}
