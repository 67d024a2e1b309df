/// The element type of an ``NDArray``.
///
/// Raw values are MXNet's type flags, the numbers its `.params` files store, so a flag read from a file
/// maps straight to a case.
public enum DType: Int32, CaseIterable, Sendable, CustomStringConvertible {
    case float32 = 0
    case float64 = 1
    case float16 = 2
    case uint8 = 3
    case int32 = 4
    case int8 = 5
    case int64 = 6
    case bfloat16 = 12

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .uint8, .int8: return 1
        }
    }

    /// The name MXNet and numpy use (`"float32"`, `"uint8"`, ...).
    public var name: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .float16: return "float16"
        case .uint8: return "uint8"
        case .int32: return "int32"
        case .int8: return "int8"
        case .int64: return "int64"
        case .bfloat16: return "bfloat16"
        }
    }

    public var description: String { name }

    /// Whether the type holds floating-point values.
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return true
        default: return false
        }
    }

    /// Parses a type name as MXNet writes it in attributes (`dtype="float32"`); also accepts `"bf16"`.
    public init?(name: String) {
        switch name {
        case "float32": self = .float32
        case "float64": self = .float64
        case "float16": self = .float16
        case "uint8": self = .uint8
        case "int32": self = .int32
        case "int8": self = .int8
        case "int64": self = .int64
        case "bfloat16", "bf16": self = .bfloat16
        default: return nil
        }
    }

    /// The type names accepted by ``init(name:)``, for error messages.
    public static var acceptedNames: String { allCases.map(\.name).joined(separator: ", ") }
}
