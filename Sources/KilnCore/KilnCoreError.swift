/// Errors of KilnCore. Each message is a sentence naming the file, the field and what was expected.
public enum KilnCoreError: Error, CustomStringConvertible, Equatable {
    /// A byte count did not match what the shape and dtype need.
    case sizeMismatch(what: String, expected: Int, actual: Int)
    /// A reshape to a shape of another element count.
    case invalidReshape(from: Shape, to: Shape)
    /// Two arrays that must agree in shape do not.
    case shapeMismatch(operation: String, Shape, Shape)
    /// A file could not be read or written.
    case fileUnreadable(path: String, reason: String)
    /// A file's content does not follow its format; `field` names where it went wrong.
    case malformedFile(path: String, field: String, reason: String)
    /// A dtype flag or name that Kiln does not know.
    case unsupportedDType(path: String, field: String, value: String)
    /// A file ends before `field` is complete: `needed` bytes were wanted at byte `offset`, `available` remained.
    case truncated(path: String, field: String, offset: Int, needed: Int, available: Int)
    /// A well-formed file (or an array to be written) uses a feature Kiln does not handle, such as
    /// sparse storage, Fortran order or a dtype the target format cannot spell.
    case unsupportedFeature(path: String, field: String, reason: String)
    /// A file could not be written.
    case fileUnwritable(path: String, reason: String)
    /// Something sized by input needs more memory than the ``MemoryBudget`` allows; `bytes` is nil
    /// when its size does not even fit in `Int`.
    case memoryBudgetExceeded(what: String, bytes: Int?, limit: Int, origin: MemoryBudget.Origin)
    /// A setting (an environment variable or an option) has a value Kiln cannot use.
    case invalidSetting(name: String, value: String, reason: String)

    public var description: String {
        switch self {
        case let .sizeMismatch(what, expected, actual):
            return "The data for \(what) has \(actual) bytes, but \(expected) are needed."
        case let .invalidReshape(from, to):
            return "Cannot reshape an array of shape \(from) (\(from.elementCount) elements) to \(to) (\(to.elementCount) elements)."
        case let .shapeMismatch(operation, a, b):
            return "\(operation) needs arrays of the same shape, got \(a) and \(b)."
        case let .fileUnreadable(path, reason):
            return "Cannot read '\(path)': \(reason)."
        case let .malformedFile(path, field, reason):
            return "The file '\(path)' is malformed at \(field): \(reason)."
        case let .unsupportedDType(path, field, value):
            return "The file '\(path)' has an unsupported dtype \(value) in \(field); supported are \(DType.acceptedNames)."
        case let .truncated(path, field, offset, needed, available):
            return "The file '\(path)' ends too early in \(field): \(needed) bytes are needed at byte offset \(offset), but only \(available) remain."
        case let .unsupportedFeature(path, field, reason):
            return "The file '\(path)' needs something Kiln does not support in \(field): \(reason)."
        case let .fileUnwritable(path, reason):
            return "Cannot write '\(path)': \(reason)."
        case let .memoryBudgetExceeded(what, bytes, limit, origin):
            let need = bytes.map { "\(MemoryBudget.formatted($0)) are needed" } ?? "more bytes than a 64-bit count holds are needed"
            switch origin {
            case .explicit:
                return "Not enough memory for \(what): \(need), more than the memory budget of \(MemoryBudget.formatted(limit))."
            case let .environment(text):
                return "Not enough memory for \(what): \(need), more than the memory budget of \(MemoryBudget.formatted(limit)) (\(MemoryBudget.environmentName)=\(text))."
            case .availableMemory:
                return "Not enough memory for \(what): \(need), more than the \(MemoryBudget.formatted(limit)) available now (\(MemoryBudget.environmentName) sets a budget)."
            }
        case let .invalidSetting(name, value, reason):
            return "\(name)='\(value.count > 80 ? value.prefix(80) + "..." : value)' cannot be used: \(reason)."
        }
    }
}
