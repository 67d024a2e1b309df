import KilnCore

/// Errors of KilnCUDA. Each message is a sentence naming the library, call, node or value at fault.
public enum CUDAError: Error, CustomStringConvertible, Equatable {
    /// A library Kiln needs could not be loaded: which one, where it looked, and why.
    case libraryMissing(library: String, searched: [String], reason: String)
    /// A function Kiln needs is absent from a loaded library (a version too old).
    case symbolMissing(library: String, symbol: String)
    /// No GPU with this ordinal.
    case noDevice(ordinal: Int, count: Int)
    /// A call into CUDA, cuDNN, cuBLAS or NVRTC failed, with the library's own message.
    case call(library: String, function: String, status: Int, message: String)
    /// NVRTC rejected a generated kernel; the log says why (a Kiln bug).
    case compile(kernel: String, log: String)
    /// A node the GPU backend cannot run, with the reason.
    case unsupported(node: String, op: String, reason: String)
    /// An input needed at run time was not given, or does not fit.
    case missingInput(name: String, known: [String])
    case inputShape(name: String, expected: Shape, actual: Shape)
    case inputType(name: String, expected: DType, actual: DType)
    /// Device memory ran out.
    case outOfMemory(bytes: Int, device: Int, message: String)
    /// Something was asked of the GPU backend that it does not do (training, say).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .libraryMissing(library, searched, reason):
            let places = searched.isEmpty ? "" : " (looked in \(searched.joined(separator: ", ")))"
            return "The CUDA library \(library) could not be loaded\(places): \(reason). Set KILN_CUDA_PATH to the folders that hold it."
        case let .symbolMissing(library, symbol):
            return "The function \(symbol) is missing from \(library); the installed version is older than Kiln needs."
        case let .noDevice(ordinal, count):
            return "There is no GPU \(ordinal): this machine has \(count) GPU\(count == 1 ? "" : "s") that CUDA can use."
        case let .call(library, function, status, message):
            return "\(library) call \(function) failed with status \(status): \(message)."
        case let .compile(kernel, log):
            return "NVRTC could not compile the generated kernel \(kernel): \(log)"
        case let .unsupported(node, op, reason):
            return "The GPU backend cannot run node '\(node)' (\(op)): \(reason)."
        case let .missingInput(name, known):
            return "The input '\(name)' was not given; the graph's inputs are \(known.joined(separator: ", "))."
        case let .inputShape(name, expected, actual):
            return "The input '\(name)' has shape \(actual), but the graph was bound for \(expected)."
        case let .inputType(name, expected, actual):
            return "The input '\(name)' has dtype \(actual), but the graph was bound for \(expected)."
        case let .outOfMemory(bytes, device, message):
            return "GPU \(device) could not allocate \(bytes) bytes: \(message)."
        case let .invalidArgument(text):
            return text.hasSuffix(".") ? text : text + "."
        }
    }
}
