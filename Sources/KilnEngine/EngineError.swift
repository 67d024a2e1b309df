import KilnCore

/// Errors of KilnEngine. Each message is a sentence naming the option, node, value or file at fault.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    /// An option key that the engine does not know.
    case unknownOption(key: String, accepted: [String])
    /// An option value that is not one of the accepted values.
    case invalidOption(key: String, value: String, accepted: String)
    /// A node the engine was asked to compile that it does not support, with the reason.
    case unsupportedNode(node: String, op: String, reason: String)
    /// A constant the graph needs (a weight) was not given at compile.
    case missingConstant(node: String, input: String)
    /// An input needed at run time was not given, or has the wrong shape or dtype.
    case missingInput(name: String, known: [String])
    case inputShape(name: String, expected: Shape, actual: Shape)
    case inputType(name: String, expected: DType, actual: DType)
    /// The engine runs inference only.
    case trainingNotSupported
    /// The optimized graph broke an invariant after a pass (a bug in that pass).
    case invalidIR(pass: String, reason: String)
    /// A oneDNN call failed.
    case dnnl(call: String, status: Int, node: String)
    /// A cache entry could not be used (it is then rebuilt); carried in reports, thrown only by the reader.
    case badCacheEntry(path: String, reason: String)
    /// The cache directory or file could not be written.
    case cacheWrite(path: String, reason: String)
    /// A calibration table file could not be read: the file, the field at fault (a dotted path such as
    /// `ranges.conv1.threshold`, or empty for the whole file) and why.
    case calibrationFile(path: String, field: String, reason: String)
    /// A calibration table could not be written.
    case calibrationWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownOption(key, accepted):
            return "The engine option '\(key)' is not known; accepted options are \(accepted.joined(separator: ", "))."
        case let .invalidOption(key, value, accepted):
            return "The engine option \(key)=\(value) is not accepted; accepted values: \(accepted)."
        case let .unsupportedNode(node, op, reason):
            return "The cpu engine cannot compile node '\(node)' (\(op)): \(reason)."
        case let .missingConstant(node, input):
            return "Node '\(node)' needs its input '\(input)' known at compile (a weight), but it was not given as a constant."
        case let .missingInput(name, known):
            return "The engine's input '\(name)' was not given; its inputs are \(known.joined(separator: ", "))."
        case let .inputShape(name, expected, actual):
            return "The engine's input '\(name)' was compiled for shape \(expected), but the array given has shape \(actual); compile again for the new shape."
        case let .inputType(name, expected, actual):
            return "The engine's input '\(name)' was compiled for dtype \(expected), but the array given has dtype \(actual)."
        case .trainingNotSupported:
            return "The cpu engine runs inference only; run with isTrain false, or train with the framework backend."
        case let .invalidIR(pass, reason):
            return "The engine's graph is invalid after the pass '\(pass)': \(reason)."
        case let .dnnl(call, status, node):
            return "oneDNN's \(call) failed with status \(status) for node '\(node)'."
        case let .badCacheEntry(path, reason):
            return "The engine cache entry \(path) cannot be used: \(reason)."
        case let .cacheWrite(path, reason):
            return "The engine cache at \(path) cannot be written: \(reason)."
        case let .calibrationFile(path, field, reason):
            return field.isEmpty ? "The calibration table \(path) cannot be read: \(reason)."
                : "The calibration table \(path) cannot be read: its field '\(field)' \(reason)."
        case let .calibrationWrite(path, reason):
            return "The calibration table \(path) cannot be written: \(reason)."
        }
    }
}
