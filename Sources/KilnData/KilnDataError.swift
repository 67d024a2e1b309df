/// Errors of KilnData. Each message is a sentence naming the file and field at fault and, for a
/// missing data set, how to get it.
public enum KilnDataError: Error, CustomStringConvertible, Equatable {
    /// A file that cannot be opened or read.
    case fileUnreadable(path: String, reason: String)
    /// A file whose content does not follow its format; `field` says where (`"record 12 header"`).
    case malformedFile(path: String, field: String, reason: String)
    /// A data set that is not where it was looked for; `howToFetch` is a command or sentence.
    case missingDataSet(name: String, path: String, howToFetch: String)
    /// A data set whose files are there but wrong (counts, checksums).
    case damagedDataSet(name: String, path: String, reason: String, howToFetch: String)
    /// An image that cannot be decoded.
    case undecodableImage(source: String, reason: String)
    /// A caller error, as a sentence.
    case invalidArgument(String)
    /// A file that cannot be created or written.
    case fileUnwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .fileUnreadable(path, reason):
            return "Cannot read '\(path)': \(reason)."
        case let .malformedFile(path, field, reason):
            return "The file '\(path)' is malformed at \(field): \(reason)."
        case let .missingDataSet(name, path, howToFetch):
            return "The \(name) data set is not in '\(path)'. \(howToFetch)"
        case let .damagedDataSet(name, path, reason, howToFetch):
            return "The \(name) data set in '\(path)' is damaged: \(reason). \(howToFetch)"
        case let .undecodableImage(source, reason):
            return "Cannot decode the image \(source): \(reason)."
        case let .invalidArgument(reason):
            return reason.hasSuffix(".") ? reason : reason + "."
        case let .fileUnwritable(path, reason):
            return "Cannot write '\(path)': \(reason)."
        }
    }
}
