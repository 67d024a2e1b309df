import Foundation

// MXNet's `.params` format, as `mx.nd.save` writes it (src/ndarray/ndarray.cc, `NDArray::Save` and the
// list `NDArray::Save` behind the C API's `MXNDArraySave`). All integers are little-endian.
//
// File:
//   uint64  0x112                 kMXAPINDArrayListMagic
//   uint64  0                     reserved (MXNet ignores it on reading; so does Kiln)
//   uint64  N                     number of arrays
//   N arrays, each as below
//   uint64  K                     number of names: 0 (a list save) or N (a dict save)
//   K names, each: uint64 length L, then L bytes of UTF-8
//
// One array, version 2 (magic 0xF993FAC9) or 3 (magic 0xF993FACA, written with numpy shape semantics):
//   uint32  magic
//   int32   storage type          0 dense; 1 row_sparse and 2 csr are refused; -1 only for 'none'
//   int32   ndim, then ndim x int64 dims
//                                 'none' array, nothing more follows: ndim -1; in V2 also ndim 0;
//                                 in V3 also any dim -1 (in V3, ndim 0 is a real 0-d array)
//   int32   dev_type, int32 dev_id    the context: cpu 1, gpu 2, cpu_pinned 3, cpu_shared 5
//   int32   type flag             DType's raw value (mshadow's kFloat32 = 0, ...)
//   bytes   product(dims) x item size of element data, C order
//
// Older arrays, read but never written:
//   V1 (magic 0xF993FAC8): no storage type; int32 ndim + int64 dims (ndim 0: 'none'); then as V2.
//   Legacy (no magic): the first uint32 is ndim (Kiln accepts up to 32), then ndim x uint32 dims
//   (ndim 0: 'none'); then context, type flag and data as V2.

/// The arrays of an MXNet `.params` file (the format of `mx.nd.save` and of `Module`/Gluon checkpoints),
/// in file order.
///
/// Most code wants ``NDArray/loadParams(from:)`` or ``NDArray/saveParams(_:to:)``; this type also keeps
/// what those refuse: files saved from a list (no names) and MXNet's empty 'none' arrays.
public struct ParamsFile: Sendable {
    /// One stored array.
    public struct Entry: Sendable {
        /// The array's key, or nil in a file saved from a list.
        public var name: String?
        /// The array, or nil for MXNet's empty 'none' array (an `NDArray()` with no shape).
        public var array: NDArray?

        public init(name: String?, array: NDArray?) {
            self.name = name
            self.array = array
        }
    }

    /// The per-array version written by ``encoded(format:)``.
    public enum Format: Sendable {
        /// What MXNet 1.x writes by default (magic 0xF993FAC9). It cannot hold 0-d arrays: MXNet reads a
        /// shape of no axes as 'none'.
        case v2
        /// What MXNet writes under numpy shape semantics (`npx.set_np()`; magic 0xF993FACA). MXNet 1.9
        /// loads it only with those semantics on.
        case v3
    }

    /// The arrays in file order.
    public var entries: [Entry]

    /// Whether the file names its arrays (a dict save) rather than listing them.
    public var hasNames: Bool { entries.contains { $0.name != nil } }

    /// A file of the given entries. Either all entries have names or none has.
    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// A named file of `arrays`, in the given order.
    public init(named arrays: [(String, NDArray)]) {
        entries = arrays.map { Entry(name: $0.0, array: $0.1) }
    }

    /// An unnamed file of `arrays` (what `mx.nd.save(fname, [a, b])` writes).
    public init(list arrays: [NDArray]) {
        entries = arrays.map { Entry(name: nil, array: $0) }
    }

    /// Reads a `.params` file.
    public init(contentsOf path: String) throws {
        try self.init(data: readFileData(URL(fileURLWithPath: path)), source: path)
    }

    /// Parses the bytes of a `.params` file; `source` names it in error messages.
    ///
    /// Every count and length the file claims is checked against the bytes that are really there
    /// before anything is allocated, so a damaged or hostile file throws instead of crashing.
    ///
    /// - Throws: ``KilnCoreError`` naming the file and the field: a wrong magic, sparse storage, an
    ///   unsupported type flag, a truncation, or bytes after the names.
    public init(data: Data, source: String = "<params data>") throws {
        entries = try data.withUnsafeBytes { raw in
            var reader = ByteReader(raw, source: source)
            return try ParamsCodec.read(&reader)
        }
    }

    /// The file's bytes: every array in `format` (V2 by default, exactly as MXNet 1.9 writes it,
    /// with the context cpu(0)), then the names.
    ///
    /// - Throws: ``KilnCoreError/unsupportedFeature(path:field:reason:)`` for a 0-d array in V2, and
    ///   ``KilnCoreError/malformedFile(path:field:reason:)`` when some entries have names and others not.
    public func encoded(format: Format = .v2) throws -> Data {
        try ParamsCodec.encode(entries, format: format, destination: "<params data>")
    }

    /// Writes the file; see ``encoded(format:)``.
    public func write(to path: String, format: Format = .v2) throws {
        let url = URL(fileURLWithPath: path)
        try writeFileData(ParamsCodec.encode(entries, format: format, destination: path), to: url)
    }

    /// The named arrays in file order.
    ///
    /// - Throws: when the file has no names (load it with ``NDArray/loadParamsList(from:)``) or holds a
    ///   'none' array.
    public func namedArrays(source: String = "<params data>") throws -> [(name: String, array: NDArray)] {
        if entries.isEmpty { return [] }
        var out: [(name: String, array: NDArray)] = []
        out.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() {
            guard let name = entry.name else {
                throw KilnCoreError.unsupportedFeature(
                    path: source, field: "the name list",
                    reason: "expected named arrays (a dict save), found \(entries.count) arrays without names (a list save); read it with NDArray.loadParamsList")
            }
            guard let array = entry.array else {
                throw KilnCoreError.unsupportedFeature(
                    path: source, field: "array \(i) ('\(name)')",
                    reason: "expected an array, found MXNet's empty 'none' array, which has no shape or data")
            }
            out.append((name, array))
        }
        return out
    }

    /// The named arrays as a dictionary.
    ///
    /// - Throws: like ``namedArrays(source:)``, and when a name repeats.
    public func dictionary(source: String = "<params data>") throws -> [String: NDArray] {
        var out: [String: NDArray] = [:]
        for (name, array) in try namedArrays(source: source) {
            guard out.updateValue(array, forKey: name) == nil else {
                throw KilnCoreError.malformedFile(path: source, field: "the name '\(name)'",
                                                  reason: "expected each name once, found it more than once")
            }
        }
        return out
    }

    /// Sorts checkpoint keys by their prefix: `arg:NAME` (parameters saved by `Module`/`save_checkpoint`),
    /// `aux:NAME` (auxiliary states such as BatchNorm's moving mean), and anything else (Gluon's
    /// `save_parameters` writes plain names). The prefixes are removed from the returned keys.
    public static func split(_ params: [String: NDArray])
        -> (args: [String: NDArray], aux: [String: NDArray], plain: [String: NDArray]) {
        var args: [String: NDArray] = [:], aux: [String: NDArray] = [:], plain: [String: NDArray] = [:]
        for (key, value) in params {
            if key.hasPrefix("arg:") {
                args[String(key.dropFirst(4))] = value
            } else if key.hasPrefix("aux:") {
                aux[String(key.dropFirst(4))] = value
            } else {
                plain[key] = value
            }
        }
        return (args, aux, plain)
    }
}

extension NDArray {
    /// Reads the named arrays of an MXNet `.params` file in file order.
    ///
    /// - Throws: ``KilnCoreError`` for a damaged file, a list save without names (use
    ///   ``loadParamsList(from:)``), sparse arrays, MXNet's 'none' arrays or unsupported dtypes.
    public static func loadParams(from path: String) throws -> [(name: String, array: NDArray)] {
        try ParamsFile(contentsOf: path).namedArrays(source: path)
    }

    /// Parses the bytes of an MXNet `.params` file; see ``loadParams(from:)``.
    public static func loadParams(data: Data, source: String = "<params data>") throws -> [(name: String, array: NDArray)] {
        try ParamsFile(data: data, source: source).namedArrays(source: source)
    }

    /// Reads the named arrays of an MXNet `.params` file as a dictionary; throws when a name repeats.
    public static func loadParamsDictionary(from path: String) throws -> [String: NDArray] {
        try ParamsFile(contentsOf: path).dictionary(source: path)
    }

    /// Parses the bytes of an MXNet `.params` file as a dictionary; see ``loadParamsDictionary(from:)``.
    public static func loadParamsDictionary(data: Data, source: String = "<params data>") throws -> [String: NDArray] {
        try ParamsFile(data: data, source: source).dictionary(source: source)
    }

    /// Reads the arrays of an MXNet `.params` file in file order, ignoring names if there are any.
    ///
    /// - Throws: also for MXNet's 'none' arrays, which have no shape.
    public static func loadParamsList(from path: String) throws -> [NDArray] {
        try ParamsFile(contentsOf: path).arrays(source: path)
    }

    /// Parses the bytes of an MXNet `.params` file as a list; see ``loadParamsList(from:)``.
    public static func loadParamsList(data: Data, source: String = "<params data>") throws -> [NDArray] {
        try ParamsFile(data: data, source: source).arrays(source: source)
    }

    /// Writes named arrays as MXNet 1.9's `mx.nd.save(fname, dict)` does (V2 arrays, context cpu(0)),
    /// in the given order.
    ///
    /// - Throws: for a 0-d array, which V2 cannot hold (reshape it to `[1]`, or use ``ParamsFile`` with
    ///   format `.v3`), and when the file cannot be written.
    public static func saveParams(_ arrays: [(String, NDArray)], to path: String) throws {
        try ParamsFile(named: arrays).write(to: path)
    }

    /// The bytes ``saveParams(_:to:)`` writes.
    public static func paramsData(_ arrays: [(String, NDArray)]) throws -> Data {
        try ParamsFile(named: arrays).encoded()
    }

    /// Writes arrays without names, as `mx.nd.save(fname, [a, b])` does.
    public static func saveParams(list arrays: [NDArray], to path: String) throws {
        try ParamsFile(list: arrays).write(to: path)
    }
}

extension ParamsFile {
    fileprivate func arrays(source: String) throws -> [NDArray] {
        try entries.enumerated().map { i, entry in
            guard let array = entry.array else {
                throw KilnCoreError.unsupportedFeature(
                    path: source, field: "array \(i)",
                    reason: "expected an array, found MXNet's empty 'none' array, which has no shape or data")
            }
            return array
        }
    }
}

/// The `.params` reader and writer behind ``ParamsFile``.
enum ParamsCodec {
    static let listMagic: UInt64 = 0x112
    static let v1Magic: UInt32 = 0xF993_FAC8
    static let v2Magic: UInt32 = 0xF993_FAC9
    static let v3Magic: UInt32 = 0xF993_FACA
    /// The largest ndim Kiln reads as a legacy (pre-V1) array, whose first word is ndim instead of a magic.
    static let legacyMaxDim: UInt32 = 32
    static let cpuDevType: Int32 = 1
    /// mshadow's type flags that Kiln lacks, for messages.
    static let otherTypeNames: [Int32: String] = [7: "bool", 8: "int16", 9: "uint16", 10: "uint32", 11: "uint64"]

    // MARK: Reading

    static func read(_ reader: inout ByteReader) throws -> [ParamsFile.Entry] {
        let source = reader.source
        let magic = try reader.read(UInt64.self, field: "the list magic")
        guard magic == listMagic else {
            throw KilnCoreError.malformedFile(
                path: source, field: "the list magic",
                reason: "expected 0x112, the magic of an MXNet NDArray list file, found 0x\(String(magic, radix: 16))")
        }
        _ = try reader.read(UInt64.self, field: "the reserved word")
        let count = try reader.read(UInt64.self, field: "the array count")
        // Each array takes at least 4 bytes (a legacy 'none' array is one zero uint32).
        guard count <= UInt64(reader.remaining / 4) else {
            throw KilnCoreError.truncated(path: source, field: "the arrays (\(count) claimed, at least 4 bytes each)",
                                          offset: reader.offset, needed: count > UInt64(Int.max / 4) ? Int.max : Int(count) * 4,
                                          available: reader.remaining)
        }
        let n = Int(count)
        var arrays: [NDArray?] = []
        arrays.reserveCapacity(n)
        for i in 0..<n {
            arrays.append(try readArray(&reader, field: "array \(i) of \(n)"))
        }

        let nameCount = try reader.read(UInt64.self, field: "the name count")
        guard nameCount == 0 || nameCount == count else {
            throw KilnCoreError.malformedFile(
                path: source, field: "the name count",
                reason: "expected 0 (a list save) or \(count) (one name per array), found \(nameCount)")
        }
        var names: [String?] = Array(repeating: nil, count: n)
        // A name given twice would silently keep the later array (MXNet's dict does): refuse it.
        var firstIndex: [String: Int] = [:]
        for i in 0..<Int(nameCount) {
            let field = "the length of name \(i)"
            let length = try reader.read(UInt64.self, field: field)
            guard length <= UInt64(reader.remaining) else {
                throw KilnCoreError.truncated(path: source, field: field, offset: reader.offset,
                                              needed: length > UInt64(Int.max) ? Int.max : Int(length),
                                              available: reader.remaining)
            }
            let bytes = try reader.take(Int(length), field: "name \(i)")
            guard let name = String(validating: bytes, as: UTF8.self) else {
                throw KilnCoreError.malformedFile(path: source, field: "name \(i)",
                                                  reason: "expected UTF-8 text, found bytes \(NPY.hex(bytes))")
            }
            if let j = firstIndex[name] {
                throw KilnCoreError.malformedFile(path: source, field: "name \(i)",
                                                  reason: "'\(name)' names array \(j) already; each array needs its own name")
            }
            firstIndex[name] = i
            names[i] = name
        }
        guard reader.remaining == 0 else {
            throw KilnCoreError.malformedFile(
                path: source, field: "the end of the file",
                reason: "expected the file to end after the names, found \(reader.remaining) more bytes")
        }
        return zip(names, arrays).map { ParamsFile.Entry(name: $0, array: $1) }
    }

    /// One array; nil for MXNet's 'none' array.
    static func readArray(_ reader: inout ByteReader, field: String) throws -> NDArray? {
        let source = reader.source
        let magic = try reader.read(UInt32.self, field: "\(field), magic")
        var dims: [Int]
        switch magic {
        case v2Magic, v3Magic:
            let storage = try reader.read(Int32.self, field: "\(field), storage type")
            switch storage {
            case 0, -1: break
            case 1, 2:
                throw KilnCoreError.unsupportedFeature(
                    path: source, field: "\(field), storage type",
                    reason: "expected dense storage (0), found \(storage == 1 ? "row_sparse" : "csr") storage (\(storage)); convert it with tostype('default') before saving")
            default:
                throw KilnCoreError.malformedFile(
                    path: source, field: "\(field), storage type",
                    reason: "expected 0 (dense), 1 (row_sparse) or 2 (csr), found \(storage)")
            }
            let ndim = try reader.read(Int32.self, field: "\(field), ndim")
            if ndim == -1 { return nil }
            guard ndim >= 0 else {
                throw KilnCoreError.malformedFile(path: source, field: "\(field), ndim",
                                                  reason: "expected -1 (none) or a non-negative count, found \(ndim)")
            }
            dims = try readDims(&reader, count: Int(ndim), as: Int64.self, field: field)
            if magic == v2Magic && ndim == 0 { return nil }
            if magic == v3Magic && dims.contains(-1) { return nil }
            guard storage == 0 else {
                throw KilnCoreError.malformedFile(
                    path: source, field: "\(field), storage type",
                    reason: "expected dense storage (0) for an array of shape \(NPY.tupleRepr(dims)), found -1 (undefined), which only 'none' arrays have")
            }
        case v1Magic:
            let ndim = try reader.read(Int32.self, field: "\(field), ndim")
            guard ndim >= 0 else {
                throw KilnCoreError.malformedFile(path: source, field: "\(field), ndim",
                                                  reason: "expected a non-negative count, found \(ndim)")
            }
            dims = try readDims(&reader, count: Int(ndim), as: Int64.self, field: field)
            if ndim == 0 { return nil }
        case 0...legacyMaxDim:
            dims = try readDims(&reader, count: Int(magic), as: UInt32.self, field: field)
            if magic == 0 { return nil }
        default:
            throw KilnCoreError.malformedFile(
                path: source, field: "\(field), magic",
                reason: "expected 0xf993fac9 (V2), 0xf993faca (V3), 0xf993fac8 (V1) or a legacy ndim of at most \(legacyMaxDim), found 0x\(String(magic, radix: 16))")
        }
        for d in dims where d < 0 {
            throw KilnCoreError.malformedFile(path: source, field: "\(field), shape",
                                              reason: "expected non-negative dimensions, found \(NPY.tupleRepr(dims))")
        }

        let devType = try reader.read(Int32.self, field: "\(field), context dev_type")
        guard [1, 2, 3, 5].contains(devType) else {
            throw KilnCoreError.malformedFile(
                path: source, field: "\(field), context dev_type",
                reason: "expected 1 (cpu), 2 (gpu), 3 (cpu_pinned) or 5 (cpu_shared), found \(devType)")
        }
        _ = try reader.read(Int32.self, field: "\(field), context dev_id")
        let flag = try reader.read(Int32.self, field: "\(field), type flag")
        guard let dtype = DType(rawValue: flag) else {
            let name = otherTypeNames[flag].map { " (\($0))" } ?? ""
            throw KilnCoreError.unsupportedDType(path: source, field: "\(field), type flag", value: "\(flag)\(name)")
        }
        guard let byteCount = Shape.checkedByteCount(dims: dims, dtype: dtype) else {
            throw KilnCoreError.malformedFile(
                path: source, field: "\(field), shape",
                reason: "expected dimensions whose product with the item size (zero-length axes counted as 1) fits in 64 bits, found \(NPY.tupleRepr(dims)) of \(dtype)")
        }
        let shape = Shape(dims)
        let body = try reader.take(byteCount, field: "\(field), data (shape \(shape), dtype \(dtype))")
        return try NDArray(shape: shape, dtype: dtype, copying: body, source: source)
    }

    /// `count` dims stored as `T`, after checking that the file holds them all.
    static func readDims<T: FixedWidthInteger>(_ reader: inout ByteReader, count: Int, as type: T.Type,
                                               field: String) throws -> [Int] {
        try reader.require(count * MemoryLayout<T>.size, field: "\(field), \(count) dims")
        var dims: [Int] = []
        dims.reserveCapacity(count)
        for k in 0..<count {
            let d = try reader.read(T.self, field: "\(field), dim \(k)")
            // Int64 -> Int is exact on 64-bit platforms; UInt32 always fits.
            dims.append(Int(truncatingIfNeeded: d))
        }
        return dims
    }

    // MARK: Writing

    static func encode(_ entries: [ParamsFile.Entry], format: ParamsFile.Format, destination: String) throws -> Data {
        let named = entries.filter { $0.name != nil }.count
        guard named == 0 || named == entries.count else {
            throw KilnCoreError.malformedFile(
                path: destination, field: "the name list",
                reason: "expected every array to have a name or none to, found \(named) named of \(entries.count)")
        }
        var capacity = 32
        for entry in entries {
            capacity += 32 + 8 * (entry.array?.shape.rank ?? 0) + (entry.array?.byteCount ?? 0) + 8 + (entry.name?.utf8.count ?? 0)
        }
        var out = ByteWriter(capacity: capacity)
        out.write(listMagic)
        out.write(UInt64(0))
        out.write(UInt64(entries.count))
        for (i, entry) in entries.enumerated() {
            out.write(format == .v2 ? v2Magic : v3Magic)
            out.write(Int32(0))  // dense storage
            guard let array = entry.array else {
                // 'none': a shape MXNet reads as none, and nothing else.
                out.write(Int32(format == .v2 ? 0 : -1))
                continue
            }
            if format == .v2 && array.shape.rank == 0 {
                let label = entry.name.map { "array \(i) ('\($0)')" } ?? "array \(i)"
                throw KilnCoreError.unsupportedFeature(
                    path: destination, field: "\(label), shape",
                    reason: "MXNet's V2 format reads a shape of no axes as 'none', so a 0-d array cannot be written; reshape it to [1] or write with format .v3")
            }
            out.write(Int32(array.shape.rank))
            for d in array.shape.dims { out.write(Int64(d)) }
            out.write(cpuDevType)
            out.write(Int32(0))  // dev_id
            out.write(array.dtype.rawValue)
            array.withUnsafeBytes { out.write($0) }
        }
        out.write(UInt64(named))
        for entry in entries {
            guard let name = entry.name else { continue }
            out.write(UInt64(name.utf8.count))
            out.write(Array(name.utf8))
        }
        return out.data
    }
}
