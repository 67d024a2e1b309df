import KilnCore
import KilnGraph

/// Errors of KilnRuntime. Each message is a sentence naming the node, argument or library call at fault.
public enum RuntimeError: Error, CustomStringConvertible {
    /// No kernel for an op in the backend that was asked to run it.
    case noKernel(op: String, node: String, backend: String)
    /// A kernel refused its node's configuration (an attribute value or dtype it does not handle).
    case unsupported(node: String, op: String, reason: String)
    /// An argument needed at bind or forward is missing.
    case missingArgument(name: String, known: [String])
    /// An argument's array does not have the shape it was bound with.
    case argumentShape(name: String, expected: Shape, actual: Shape)
    /// An argument's array does not have the dtype it was bound with.
    case argumentType(name: String, expected: DType, actual: DType)
    /// oneDNN returned an error status.
    case dnnl(call: String, status: Int, node: String)
    /// A caller error, as a sentence.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .noKernel(op, node, backend):
            return "The \(backend) backend has no kernel for op '\(op)' (node '\(node)')."
        case let .unsupported(node, op, reason):
            return "Node '\(node)' (\(op)) cannot run: \(reason)."
        case let .missingArgument(name, known):
            return "The argument '\(name)' has no value; give it in shapes and sharedBuffer at bind, or set argDict[\"\(name)\"]. Known arguments: \(known.joined(separator: ", "))."
        case let .argumentShape(name, expected, actual):
            return "The argument '\(name)' was bound with shape \(expected), but the array given has shape \(actual); rebind with reshaped(_:) to change shapes."
        case let .argumentType(name, expected, actual):
            return "The argument '\(name)' was bound with dtype \(expected), but the array given has dtype \(actual)."
        case let .dnnl(call, status, node):
            return "oneDNN's \(call) failed with status \(status) (\(dnnlStatusName(status))) for node '\(node)'."
        case let .invalidArgument(reason):
            return reason.hasSuffix(".") ? reason : reason + "."
        }
    }
}

func dnnlStatusName(_ s: Int) -> String {
    switch s {
    case 1: return "out of memory"
    case 2: return "invalid arguments"
    case 3: return "unimplemented"
    case 4: return "iterator ends"
    case 5: return "runtime error"
    case 6: return "not required"
    default: return "unknown status"
    }
}
