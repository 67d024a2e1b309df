import KilnCore

/// A node's attributes as MXNet writes them: every value a string (`kernel="(3, 3)"`, `no_bias="True"`).
///
/// The typed getters parse those strings and throw ``GraphError/invalidAttribute(node:op:attribute:value:expected:)``
/// naming the node when a value has the wrong form. An op's ``OpDefinition`` fills in defaults before its
/// parameters are read, so getters of attributes that have a default never see them missing.
public struct Attributes: Sendable, Hashable, ExpressibleByDictionaryLiteral, Sequence {
    /// The raw key/value pairs.
    public var values: [String: String]
    /// The node these attributes belong to, for error messages (not part of equality).
    public var node: String = ""
    /// The op these attributes belong to, for error messages (not part of equality).
    public var op: String = ""

    public init(_ values: [String: String] = [:], node: String = "", op: String = "") {
        self.values = values
        self.node = node
        self.op = op
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }

    public static func == (a: Attributes, b: Attributes) -> Bool { a.values == b.values }
    public func hash(into h: inout Hasher) { h.combine(values) }
    public func makeIterator() -> Dictionary<String, String>.Iterator { values.makeIterator() }

    public subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// Whether the attribute is present and not MXNet's `None`.
    public func has(_ key: String) -> Bool {
        guard let v = values[key]?.trimmingWhitespace else { return false }
        return v != "None" && !v.isEmpty
    }

    func invalid(_ key: String, _ value: String, _ expected: String) -> GraphError {
        .invalidAttribute(node: node, op: op, attribute: key, value: value, expected: expected)
    }

    func raw(_ key: String) throws -> String {
        guard let v = values[key] else { throw GraphError.missingAttribute(node: node, op: op, attribute: key) }
        return v.trimmingWhitespace
    }

    /// An integer attribute (`"64"`).
    public func int(_ key: String) throws -> Int {
        let v = try raw(key)
        guard let i = AttributeText.int(v) else { throw invalid(key, v, "an integer") }
        return i
    }

    /// Most inputs or outputs a count attribute (`num_args`, `num_outputs`) may ask for. The op lists
    /// that many names before its inputs are counted, so a file's `num_args="4294967296"` would
    /// otherwise allocate billions of names and abort instead of being refused.
    public static let countLimit = 1 << 20

    /// A count of inputs or outputs (`num_args`, `num_outputs`): an integer in 1...``countLimit``.
    public func count(_ key: String) throws -> Int {
        let n = try int(key)
        guard n >= 1 && n <= Self.countLimit else { throw invalid(key, String(n), "a count from 1 to \(Self.countLimit)") }
        return n
    }

    /// An integer attribute that may be `None`.
    public func optionalInt(_ key: String) throws -> Int? {
        guard has(key) else { return nil }
        return try int(key)
    }

    /// A floating-point attribute (`"1e-05"`, `"inf"`).
    public func float(_ key: String) throws -> Double {
        let v = try raw(key)
        guard let d = AttributeText.double(v) else { throw invalid(key, v, "a number") }
        return d
    }

    /// A floating-point attribute that may be `None`.
    public func optionalFloat(_ key: String) throws -> Double? {
        guard has(key) else { return nil }
        return try float(key)
    }

    /// A boolean attribute (`"True"`, `"False"`, `"1"`, `"0"`, `"true"`, `"false"`).
    public func bool(_ key: String) throws -> Bool {
        let v = try raw(key)
        guard let b = AttributeText.bool(v) else { throw invalid(key, v, "True or False") }
        return b
    }

    /// A tuple of integers (`"(3, 3)"`, `"[3,3]"`, `"3"`, `"()"`).
    public func ints(_ key: String) throws -> [Int] {
        let v = try raw(key)
        try checkTupleLength(key, v)
        guard let t = AttributeText.intTuple(v) else { throw invalid(key, v, "a tuple of integers such as (3, 3)") }
        return t
    }

    /// A tuple of integers that may be `None`; the elements themselves may be `None` (returned as nil).
    public func optionalInts(_ key: String) throws -> [Int?]? {
        guard has(key) else { return nil }
        let v = try raw(key)
        try checkTupleLength(key, v)
        guard let t = AttributeText.optionalIntTuple(v) else { throw invalid(key, v, "a tuple of integers or None") }
        return t
    }

    /// A tuple of numbers (`"(0.1, 0.2)"`).
    public func floats(_ key: String) throws -> [Double] {
        let v = try raw(key)
        try checkTupleLength(key, v)
        guard let t = AttributeText.doubleTuple(v) else { throw invalid(key, v, "a tuple of numbers") }
        return t
    }

    /// Refuses a tuple of more than ``AttributeText/tupleLimit`` elements before parsing it. No op
    /// takes one (kernels, strides and shapes have a few), and a file's 350,000-element `kernel` was
    /// parsed again at every use of the node's attributes: minutes for one graph.
    func checkTupleLength(_ key: String, _ v: String) throws {
        guard v.utf8.count > 2 * AttributeText.tupleLimit else { return }
        let elements = v.utf8.reduce(1) { $1 == UInt8(ascii: ",") ? $0 + 1 : $0 }
        guard elements <= AttributeText.tupleLimit else {
            throw invalid(key, v, "a tuple of at most \(AttributeText.tupleLimit) elements (this one has \(elements))")
        }
    }

    /// A string attribute.
    public func string(_ key: String) throws -> String { try raw(key) }

    /// A string attribute that must be one of `choices`.
    public func choice(_ key: String, _ choices: [String]) throws -> String {
        let v = try raw(key)
        guard choices.contains(v) else { throw invalid(key, v, "one of " + choices.joined(separator: ", ")) }
        return v
    }

    /// A dtype attribute (`"float32"`).
    public func dtype(_ key: String) throws -> DType {
        let v = try raw(key)
        guard let t = DType(name: v) else { throw invalid(key, v, "one of " + DType.acceptedNames) }
        return t
    }
}

/// Parsing and printing of attribute text as MXNet's parameter parser reads and writes it.
public enum AttributeText {
    public static func int(_ s: String) -> Int? {
        let t = s.trimmingWhitespace
        if let i = Int(t) { return i }
        // MXNet accepts "3L" from Python 2 era files.
        if t.hasSuffix("L"), let i = Int(t.dropLast()) { return i }
        return nil
    }

    public static func double(_ s: String) -> Double? {
        let t = s.trimmingWhitespace
        switch t.lowercased() {
        case "inf", "+inf", "infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan": return .nan
        default: return Double(t)
        }
    }

    public static func bool(_ s: String) -> Bool? {
        switch s.trimmingWhitespace {
        case "True", "true", "1": return true
        case "False", "false", "0": return false
        default: return nil
        }
    }

    static func elements(_ s: String) -> [String]? {
        var t = s.trimmingWhitespace
        if (t.hasPrefix("(") && t.hasSuffix(")")) || (t.hasPrefix("[") && t.hasSuffix("]")) {
            t = String(t.dropFirst().dropLast())
        } else if t.isEmpty || t.contains("(") || t.contains(")") || t.contains("[") || t.contains("]") {
            return nil
        }
        let parts = t.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingWhitespace }
        if parts.count == 1 && parts[0].isEmpty { return [] }
        // A trailing comma, as in "(3,)", leaves one empty part at the end.
        var p = parts
        if p.count > 1 && p.last == "" { p.removeLast() }
        return p.contains("") ? nil : p
    }

    /// The most elements a tuple attribute may have.
    public static let tupleLimit = 1024

    public static func intTuple(_ s: String) -> [Int]? {
        guard let e = elements(s) else { return nil }
        var out: [Int] = []
        for x in e { guard let i = int(x) else { return nil }; out.append(i) }
        return out
    }

    public static func optionalIntTuple(_ s: String) -> [Int?]? {
        guard let e = elements(s) else { return nil }
        var out: [Int?] = []
        for x in e {
            if x == "None" { out.append(nil) } else if let i = int(x) { out.append(i) } else { return nil }
        }
        return out
    }

    public static func doubleTuple(_ s: String) -> [Double]? {
        guard let e = elements(s) else { return nil }
        var out: [Double] = []
        for x in e { guard let d = double(x) else { return nil }; out.append(d) }
        return out
    }

    /// Writes a tuple as MXNet does: `(3, 3)`, `(3,)`, `()`.
    public static func tuple(_ v: [Int]) -> String {
        v.count == 1 ? "(\(v[0]),)" : "(" + v.map(String.init).joined(separator: ", ") + ")"
    }

    /// Writes a bool as MXNet does: `True` / `False`.
    public static func bool(_ v: Bool) -> String { v ? "True" : "False" }

    /// Writes a number as MXNet's Python front end does (`0.001`, `1e-05`, `inf`).
    public static func number(_ v: Double) -> String {
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(format0: v) }
        return "\(v)"
    }
}

extension String {
    init(format0 v: Double) {
        self = String(Int(v)) + ".0"
    }

    /// The string without leading and trailing spaces, tabs and newlines.
    public var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
