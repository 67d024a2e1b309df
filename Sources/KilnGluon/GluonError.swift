/// Errors of KilnGluon. Each message is a sentence naming the block, parameter, model or file at fault.
public enum GluonError: Error, CustomStringConvertible, Equatable {
    /// A parameter was used before ``ParameterDict/initialize(_:seed:)`` or a load gave it data.
    case uninitialized(parameter: String)
    /// A parameter's shape is still unknown (deferred) where a shape is needed.
    case deferredShape(parameter: String, shape: [Int])
    /// Data of the wrong shape was given to a parameter.
    case shapeMismatch(parameter: String, expected: [Int], actual: [Int], source: String)
    /// A parameter file lacks a parameter the block has.
    case missingParameter(file: String, parameter: String)
    /// A parameter file holds a parameter the block does not have.
    case extraParameter(file: String, parameter: String)
    /// `ModelZoo.get` was asked for a model it does not know.
    case unknownModel(name: String, known: [String])
    /// `ModelZoo.get(pretrained: true)` found no weights file.
    case pretrainedFileMissing(model: String, path: String)
    /// An argument to a block or call was invalid.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .uninitialized(let p):
            return "The parameter '\(p)' has no data; call initialize(_:) on the block's parameters or load a parameter file first."
        case .deferredShape(let p, let s):
            return "The parameter '\(p)' has the unknown shape \(s); run the block once on an input (or give in-channels/in-units) so its shape is inferred."
        case .shapeMismatch(let p, let e, let a, let src):
            return "The parameter '\(p)' expects shape \(e), but \(src) gives shape \(a)."
        case .missingParameter(let f, let p):
            return "The parameter file '\(f)' has no parameter '\(p)', which the block needs."
        case .extraParameter(let f, let p):
            return "The parameter file '\(f)' holds the parameter '\(p)', which the block does not have."
        case .unknownModel(let n, let known):
            return "The model zoo has no model '\(n)'; known models are \(known.joined(separator: ", "))."
        case .pretrainedFileMissing(let m, let path):
            return "No pretrained weights for '\(m)': put a Gluon parameter file (gluoncv's save_parameters) at '\(path)' (set KILN_MODEL_DIR or pass root: to use another folder); nothing is downloaded."
        case .invalidArgument(let s):
            return s
        }
    }
}
