import Foundation

/// A JSON value as the symbol reader walks it, decoded by `JSONDecoder`.
///
/// `JSONSerialization` builds a tree of Foundation objects next to its own parse tree: an 8.5 MB,
/// 60,000-node symbol file peaked at 435 MB. `JSONDecoder` and this enum hold the same file in about
/// 110 MB, so a huge (or hostile) file costs a fraction of that before its first error.
indirect enum JSONValue: Decodable, Sendable {
    case string(String), int(Int), double(Double), bool(Bool), null
    case array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        // Leaves first (strings and integers are most of a symbol file), containers last.
        if c.decodeNil() { self = .null; return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let i = try? c.decode(Int.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// Reads `data`; errors are Foundation's, for the caller to word.
    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    var object: [String: JSONValue]? { if case let .object(o) = self { return o } else { return nil } }
    var array: [JSONValue]? { if case let .array(a) = self { return a } else { return nil } }
    var string: String? { if case let .string(s) = self { return s } else { return nil } }

    /// An integer, or a number with no fraction below 1e15 (`3.0`), as MXNet's files may write one.
    var integer: Int? {
        switch self {
        case let .int(i): return i
        case let .double(d) where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: return nil
        }
    }

    /// An attribute value as text: strings as they are, numbers and booleans as MXNet would print them.
    var attributeText: String? {
        switch self {
        case let .string(s): return s
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .bool(b): return b ? "True" : "False"
        default: return nil
        }
    }
}
