import Foundation

// numpy's `.npy` format, versions 1.0, 2.0 and 3.0, as `numpy.lib.format` defines it.
//
// | bytes           | content                                                                 |
// |-----------------|-------------------------------------------------------------------------|
// | 6               | magic `\x93NUMPY`                                                       |
// | 1, 1            | major and minor version: 1.0, 2.0 or 3.0                                |
// | 2 (1.0), 4      | header length H, little-endian (uint16 in 1.0, uint32 in 2.0 and 3.0)   |
// | H               | a Python dict literal `{'descr': '<f4', 'fortran_order': False,         |
// |                 | 'shape': (2, 3), }`, latin-1 (1.0, 2.0) or UTF-8 (3.0), padded with     |
// |                 | spaces and a final newline so the data starts at a multiple of 64       |
// | rest            | the elements in C order, exactly shape-product times item size bytes    |

extension NDArray {
    /// Reads a numpy `.npy` file.
    ///
    /// Accepted are format versions 1.0, 2.0 and 3.0 and the dtypes `float32`, `float64`, `float16`,
    /// `uint8`, `int8`, `int32` and `int64`, little- or big-endian (big-endian data is byte-swapped on
    /// reading). Fortran-ordered arrays of two or more axes are refused, as are structured dtypes and
    /// files with bytes after the array data. 0-d arrays (shape `()`) are read as shape `[]`.
    ///
    /// - Throws: ``KilnCoreError`` naming the file and the header field that was wrong.
    public static func load(npyFile path: String) throws -> NDArray {
        try load(npyFile: URL(fileURLWithPath: path))
    }

    /// Reads a numpy `.npy` file; see ``load(npyFile:)-(String)``.
    public static func load(npyFile url: URL) throws -> NDArray {
        try NDArray(npyData: readFileData(url), source: url.path)
    }

    /// Parses the bytes of a `.npy` file; `source` names it in error messages.
    ///
    /// Every length the file claims is checked against the bytes that are really there before
    /// anything is allocated, so a damaged or hostile file throws instead of crashing.
    public init(npyData data: Data, source: String = "<npy data>") throws {
        self = try data.withUnsafeBytes { raw in
            var reader = ByteReader(raw, source: source)
            return try NPY.read(&reader)
        }
    }

    /// The array as the bytes of a `.npy` file, written as numpy 2 writes it: version 1.0 (2.0 only
    /// for headers over 64 KiB), little-endian, C order, header padded so the data starts at a
    /// multiple of 64 bytes.
    ///
    /// - Throws: ``KilnCoreError/unsupportedFeature(path:field:reason:)`` for a `bfloat16` array:
    ///   numpy has no bfloat16 dtype, so no `descr` would read back correctly. Convert it first with
    ///   `converted(to: .float32)`.
    public func npyData() throws -> Data {
        try NPY.encode(self, destination: "<npy data>")
    }

    /// Writes the array as a `.npy` file; see ``npyData()``.
    public func save(npyFile path: String) throws {
        try save(npyFile: URL(fileURLWithPath: path))
    }

    /// Writes the array as a `.npy` file; see ``npyData()``.
    public func save(npyFile url: URL) throws {
        try writeFileData(NPY.encode(self, destination: url.path), to: url)
    }
}

/// The `.npy` reader and writer behind the ``NDArray`` methods.
enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
    static let alignment = 64
    /// numpy pads the header so that the first axis can later grow to this many digits in place.
    static let growthAxisMaxDigits = 21

    /// The `descr` numpy writes for `dtype`, or nil for bfloat16, which numpy lacks.
    static func descr(for dtype: DType) -> String? {
        switch dtype {
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .float16: return "<f2"
        case .uint8: return "|u1"
        case .int8: return "|i1"
        case .int32: return "<i4"
        case .int64: return "<i8"
        case .bfloat16: return nil
        }
    }

    // MARK: Reading

    static func read(_ reader: inout ByteReader) throws -> NDArray {
        let source = reader.source
        let found = try reader.take(magic.count, field: "the magic string")
        guard found.elementsEqual(magic) else {
            throw KilnCoreError.malformedFile(
                path: source, field: "the magic string",
                reason: "expected the bytes \\x93NUMPY that begin every .npy file, found \(hex(found))")
        }
        let major = try reader.read(UInt8.self, field: "the major version")
        let minor = try reader.read(UInt8.self, field: "the minor version")
        guard (1...3).contains(major), minor == 0 else {
            throw KilnCoreError.unsupportedFeature(
                path: source, field: "the format version",
                reason: "expected version 1.0, 2.0 or 3.0, found \(major).\(minor)")
        }
        let headerLength = major == 1
            ? Int(try reader.read(UInt16.self, field: "the header length"))
            : Int(try reader.read(UInt32.self, field: "the header length"))
        let headerBytes = try reader.take(headerLength, field: "the header (\(headerLength) bytes claimed)")
        let header = try Header(parsing: headerBytes, utf8: major == 3, source: source)

        guard let byteCount = Shape.checkedByteCount(dims: header.shape, dtype: header.dtype) else {
            throw KilnCoreError.malformedFile(
                path: source, field: "'shape'",
                reason: "expected dimensions whose product with the item size (zero-length axes counted as 1) fits in 64 bits, found \(tupleRepr(header.shape))")
        }
        let shape = Shape(header.shape)
        let body = try reader.take(byteCount, field: "the array data (shape \(shape), dtype \(header.dtype))")
        guard reader.remaining == 0 else {
            throw KilnCoreError.malformedFile(
                path: source, field: "the end of the file",
                reason: "expected the file to end after \(byteCount) bytes of array data, found \(reader.remaining) more bytes")
        }
        return try NDArray(shape: shape, dtype: header.dtype, copying: body,
                           byteSwapped: header.bigEndian, source: source)
    }

    /// The three header entries, checked.
    struct Header {
        var dtype: DType
        var bigEndian: Bool
        var shape: [Int]

        init(parsing bytes: UnsafeRawBufferPointer, utf8: Bool, source: String) throws {
            var parser = PyLiteralParser(bytes: Array(bytes), utf8: utf8, source: source)
            let entries = try parser.parseHeaderDict()
            let expected = ["descr", "fortran_order", "shape"]
            for (key, _) in entries where !expected.contains(key) {
                throw KilnCoreError.malformedFile(
                    path: source, field: "the header",
                    reason: "expected only the keys 'descr', 'fortran_order' and 'shape', found the key '\(key)'")
            }
            func value(_ key: String) throws -> PyLiteral {
                guard let v = entries.first(where: { $0.0 == key })?.1 else {
                    throw KilnCoreError.malformedFile(
                        path: source, field: "'\(key)'",
                        reason: "expected the header dict to have the key '\(key)', found keys \(entries.map { "'\($0.0)'" }.joined(separator: ", "))")
                }
                return v
            }

            switch try value("descr") {
            case .string(let descr):
                (dtype, bigEndian) = try NPY.parseDescr(descr, source: source)
            case .list:
                throw KilnCoreError.unsupportedFeature(
                    path: source, field: "'descr'",
                    reason: "structured (record) dtypes are not supported; expected a plain numeric dtype such as '<f4'")
            case let other:
                throw KilnCoreError.malformedFile(
                    path: source, field: "'descr'", reason: "expected a dtype string such as '<f4', found \(other.repr)")
            }

            switch try value("shape") {
            case .tuple(let items):
                var dims: [Int] = []
                for item in items {
                    guard case .int(let d) = item, d >= 0 else {
                        throw KilnCoreError.malformedFile(
                            path: source, field: "'shape'",
                            reason: "expected a tuple of non-negative integers, found \(PyLiteral.tuple(items).repr)")
                    }
                    dims.append(d)
                }
                shape = dims
            case let other:
                throw KilnCoreError.malformedFile(
                    path: source, field: "'shape'", reason: "expected a tuple of integers such as (2, 3), found \(other.repr)")
            }

            switch try value("fortran_order") {
            case .bool(let fortran):
                // With fewer than two axes, Fortran and C order lay the elements out the same way.
                if fortran && shape.count >= 2 {
                    throw KilnCoreError.unsupportedFeature(
                        path: source, field: "'fortran_order'",
                        reason: "expected False (C order), found True for shape \(NPY.tupleRepr(shape)); save the array with numpy.ascontiguousarray first")
                }
            case let other:
                throw KilnCoreError.malformedFile(
                    path: source, field: "'fortran_order'", reason: "expected True or False, found \(other.repr)")
            }
        }
    }

    /// Maps a numpy type string such as `'<f4'` to a dtype and its byte order.
    static func parseDescr(_ descr: String, source: String) throws -> (DType, bigEndian: Bool) {
        let unsupported = KilnCoreError.unsupportedDType(path: source, field: "'descr'", value: "'\(descr)'")
        let chars = Array(descr.utf8)
        guard chars.count == 3 else { throw unsupported }
        let dtype: DType
        switch (chars[1], chars[2]) {
        case (UInt8(ascii: "f"), UInt8(ascii: "2")): dtype = .float16
        case (UInt8(ascii: "f"), UInt8(ascii: "4")): dtype = .float32
        case (UInt8(ascii: "f"), UInt8(ascii: "8")): dtype = .float64
        case (UInt8(ascii: "u"), UInt8(ascii: "1")): dtype = .uint8
        case (UInt8(ascii: "i"), UInt8(ascii: "1")): dtype = .int8
        case (UInt8(ascii: "i"), UInt8(ascii: "4")): dtype = .int32
        case (UInt8(ascii: "i"), UInt8(ascii: "8")): dtype = .int64
        default: throw unsupported
        }
        switch chars[0] {
        case UInt8(ascii: "<"): return (dtype, false)
        case UInt8(ascii: ">"): return (dtype, dtype.byteSize > 1)
        case UInt8(ascii: "|") where dtype.byteSize == 1: return (dtype, false)
        default:
            throw KilnCoreError.malformedFile(
                path: source, field: "'descr'",
                reason: "expected the byte order '<' or '>' ('|' only for one-byte types), found '\(descr)'")
        }
    }

    // MARK: Writing

    static func encode(_ array: NDArray, destination: String) throws -> Data {
        guard let descr = descr(for: array.dtype) else {
            throw KilnCoreError.unsupportedFeature(
                path: destination, field: "'descr'",
                reason: "numpy has no bfloat16 dtype, so a bfloat16 array cannot be written as .npy; convert it first with converted(to: .float32)")
        }
        let dims = array.shape.dims
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(tupleRepr(dims)), }"
        if let first = dims.first {
            header += String(repeating: " ", count: max(0, growthAxisMaxDigits - String(first).count))
        }
        let headerBytes = Array(header.utf8)
        // Version 1.0 stores the header length in 2 bytes; longer headers need 2.0 (4 bytes).
        var prefixLength = magic.count + 2 + 2
        var padding = alignment - (prefixLength + headerBytes.count + 1) % alignment
        var major: UInt8 = 1
        if headerBytes.count + 1 + padding > Int(UInt16.max) {
            major = 2
            prefixLength = magic.count + 2 + 4
            padding = alignment - (prefixLength + headerBytes.count + 1) % alignment
        }
        let totalHeader = headerBytes.count + padding + 1
        var out = ByteWriter(capacity: prefixLength + totalHeader + array.byteCount)
        out.write(magic)
        out.write(major)
        out.write(UInt8(0))
        if major == 1 { out.write(UInt16(totalHeader)) } else { out.write(UInt32(totalHeader)) }
        out.write(headerBytes)
        out.write(repeatElement(UInt8(ascii: " "), count: padding))
        out.write(UInt8(ascii: "\n"))
        array.withUnsafeBytes { out.write($0) }
        return out.data
    }

    /// A shape written as Python writes a tuple: `()`, `(3,)`, `(2, 3)`.
    static func tupleRepr(_ dims: [Int]) -> String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
    }

    /// Up to 16 bytes in hex, for messages about unexpected bytes.
    static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        bytes.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: " ")
    }
}

/// The subset of Python literals a `.npy` header may hold.
indirect enum PyLiteral {
    case string(String)
    case bool(Bool)
    case none
    case int(Int)
    case tuple([PyLiteral])
    case list([PyLiteral])
    case dict([(String, PyLiteral)])

    /// Python's spelling of the value, for messages.
    var repr: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .int(let i): return String(i)
        case .tuple(let items):
            return items.count == 1 ? "(\(items[0].repr),)" : "(" + items.map(\.repr).joined(separator: ", ") + ")"
        case .list(let items): return "[" + items.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let entries): return "{" + entries.map { "'\($0.0)': \($0.1.repr)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A small recursive-descent parser for the Python dict literal of a `.npy` header.
///
/// It accepts what `ast.literal_eval` would for headers numpy and other writers produce: single- or
/// double-quoted strings, `True`/`False`/`None`, integers (with Python 2's `L` suffix), tuples, lists and
/// nested dicts, with any whitespace and trailing commas. Nesting deeper than ``maxDepth`` is refused so
/// a hostile header cannot exhaust the stack.
struct PyLiteralParser {
    let bytes: [UInt8]
    let utf8: Bool
    let source: String
    var index = 0
    static let maxDepth = 16

    init(bytes: [UInt8], utf8: Bool, source: String) {
        self.bytes = bytes
        self.utf8 = utf8
        self.source = source
    }

    /// Parses the whole header: one dict with string keys, then only whitespace.
    mutating func parseHeaderDict() throws -> [(String, PyLiteral)] {
        skipWhitespace()
        guard case .dict(let entries) = try parseValue(depth: 0) else {
            throw error("expected the header to be a Python dict literal beginning with '{'")
        }
        skipWhitespace()
        guard index == bytes.count else { throw error("expected only spaces and a newline after the closing '}'") }
        return entries
    }

    private func error(_ expectation: String) -> KilnCoreError {
        let found: String
        if index < bytes.count {
            let c = bytes[index]
            found = (0x20..<0x7F).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "the byte 0x\(String(c, radix: 16))"
        } else {
            found = "the end of the header"
        }
        return KilnCoreError.malformedFile(path: source, field: "the header",
                                           reason: "\(expectation), found \(found) at header byte \(index)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D, 0x0C, 0x0B].contains(bytes[index]) { index += 1 }
    }

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func expect(_ c: Character) throws {
        skipWhitespace()
        guard let b = peek(), b == c.asciiValue else { throw error("expected '\(c)'") }
        index += 1
    }

    private mutating func parseValue(depth: Int) throws -> PyLiteral {
        guard depth < Self.maxDepth else { throw error("expected at most \(Self.maxDepth) levels of nesting") }
        skipWhitespace()
        guard let c = peek() else { throw error("expected a value") }
        switch c {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "("):
            let (items, sawComma) = try parseSequence(close: UInt8(ascii: ")"), depth: depth)
            // `(x)` is a parenthesised value, `(x,)` a one-element tuple.
            if items.count == 1 && !sawComma { return items[0] }
            return .tuple(items)
        case UInt8(ascii: "["): return .list(try parseSequence(close: UInt8(ascii: "]"), depth: depth).items)
        case UInt8(ascii: "{"): return .dict(try parseDict(depth: depth))
        case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try parseInt())
        default:
            for (word, value) in [("True", PyLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where bytes[index...].starts(with: word.utf8) {
                index += word.utf8.count
                return value
            }
            throw error("expected a string, number, True, False, None, tuple, list or dict")
        }
    }

    private mutating func parseString() throws -> String {
        let quote = bytes[index]
        index += 1
        var content: [UInt8] = []
        while true {
            guard let c = peek() else { throw error("expected a closing quote") }
            index += 1
            if c == quote { break }
            if c == UInt8(ascii: "\\") {
                guard let escaped = peek() else { throw error("expected a character after '\\'") }
                index += 1
                content.append(escaped)
            } else {
                content.append(c)
            }
        }
        if utf8 { return String(decoding: content, as: UTF8.self) }
        return String(content.map { Character(Unicode.Scalar($0)) })  // latin-1
    }

    private mutating func parseInt() throws -> Int {
        let start = index
        var negative = false
        if peek() == UInt8(ascii: "-") || peek() == UInt8(ascii: "+") {
            negative = peek() == UInt8(ascii: "-")
            index += 1
        }
        var value = 0
        var digits = 0
        while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
            if o1 || o2 {
                index = start
                throw error("expected an integer that fits in 64 bits")
            }
            value = a
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw error("expected digits") }
        if peek() == UInt8(ascii: "L") || peek() == UInt8(ascii: "l") { index += 1 }  // Python 2 long
        return negative ? -value : value
    }

    /// Items up to `close`, separated by commas, a trailing comma allowed; also says whether any comma was seen.
    private mutating func parseSequence(close: UInt8, depth: Int) throws -> (items: [PyLiteral], sawComma: Bool) {
        index += 1
        var items: [PyLiteral] = []
        var sawComma = false
        while true {
            skipWhitespace()
            if peek() == close { index += 1; return (items, sawComma) }
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if peek() == UInt8(ascii: ",") {
                index += 1
                sawComma = true
            } else if peek() != close {
                throw error("expected ',' or '\(Character(Unicode.Scalar(close)))'")
            }
        }
    }

    private mutating func parseDict(depth: Int) throws -> [(String, PyLiteral)] {
        index += 1
        var entries: [(String, PyLiteral)] = []
        while true {
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { index += 1; return entries }
            guard let c = peek(), c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") else {
                throw error("expected a quoted key or '}'")
            }
            let keyStart = index
            let key = try parseString()
            if entries.contains(where: { $0.0 == key }) {
                index = keyStart
                throw error("expected each key once, but '\(key)' repeats")
            }
            try expect(":")
            entries.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            if peek() == UInt8(ascii: ",") {
                index += 1
            } else if peek() != UInt8(ascii: "}") {
                throw error("expected ',' or '}'")
            }
        }
    }
}
