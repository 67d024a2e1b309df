import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph

/// The activation ranges int8 lowering quantizes with, collected by a ``Calibrator`` over a few
/// batches, as TensorRT's calibration cache and MXNet's `calib_table`.
///
/// Keys name one value of the graph: the node's name for its output 0
/// (`cifarresnetv10_stage1_conv0_fwd`), `name:k` for its output k > 0, and the variable's name for an
/// input (`data`).
///
/// ```
/// let table = calibrator.table()
/// try table.save(to: "lenet-calib.json")
/// let again = try CalibrationTable.load(from: "lenet-calib.json")
/// let scale = Int8Weights.activationScale(range: again.ranges["conv1"]!, unsigned: false)
/// ```
///
/// The file is JSON with sorted keys (docs/INT8.md):
/// `{"batches": 10, "format": 1, "method": "entropy", "ranges": {"conv1": {"max": 2.1, "min": -1.9, "threshold": 1.4}}}`.
public struct CalibrationTable: Codable, Sendable, Equatable {
    /// How the clipping threshold of each value is chosen.
    public enum Method: String, Codable, Sendable, CaseIterable {
        /// The largest |x| seen: nothing is clipped.
        case minMax = "minmax"
        /// The threshold whose quantized distribution of |x| is nearest (Kullback-Leibler) to the one
        /// seen, as TensorRT's entropy calibrator and MXNet's `calib_mode='entropy'`; clips rare outliers.
        case entropy
    }

    /// What was seen of one value over the calibration batches.
    public struct ValueRange: Codable, Sendable, Equatable {
        /// The smallest value seen.
        public var min: Float
        /// The largest value seen.
        public var max: Float
        /// The |x| at which the value is clipped when quantized: max(|min|, |max|) for min/max, the
        /// KL-optimal threshold for entropy (never above max(|min|, |max|)).
        public var threshold: Float

        public init(min: Float, max: Float, threshold: Float) {
            self.min = min
            self.max = max
            self.threshold = threshold
        }

        /// Whether every value seen was non-negative, so that u8 (0...255) can hold it.
        public var isNonNegative: Bool { min >= 0 }
    }

    /// The version of the file format written by ``save(to:)``; a file with another is refused.
    public static let formatVersion = 1

    public var method: Method
    /// How many batches the ranges were collected over.
    public var batches: Int
    /// Each observed value's range, by the keys described on the type.
    public var ranges: [String: ValueRange]

    public init(method: Method, batches: Int, ranges: [String: ValueRange]) {
        self.method = method
        self.batches = batches
        self.ranges = ranges
    }

    enum CodingKeys: String, CodingKey { case format, method, batches, ranges }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.decode(Int.self, forKey: .format)
        guard format == Self.formatVersion else {
            throw DecodingError.dataCorruptedError(forKey: .format, in: c,
                                                   debugDescription: "is \(format), but this Kiln reads format \(Self.formatVersion)")
        }
        method = try c.decode(Method.self, forKey: .method)
        batches = try c.decode(Int.self, forKey: .batches)
        ranges = try c.decode([String: ValueRange].self, forKey: .ranges)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.formatVersion, forKey: .format)
        try c.encode(method, forKey: .method)
        try c.encode(batches, forKey: .batches)
        try c.encode(ranges, forKey: .ranges)
    }

    // MARK: Files

    /// The table as JSON: sorted keys, indented, one field per line.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Writes the table as JSON (see the type's notes), replacing the file atomically.
    /// Throws ``EngineError/calibrationWrite(path:reason:)``.
    public func save(to path: String) throws {
        do {
            try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw EngineError.calibrationWrite(path: path, reason: fileErrorReason(error))
        }
    }

    /// Reads a table written by ``save(to:)``, checking each range. Throws
    /// ``EngineError/calibrationFile(path:field:reason:)`` naming the file and the field at fault.
    public static func load(from path: String) throws -> CalibrationTable {
        let data: Data
        do {
            data = try readFileContents(atPath: path)
        } catch let e as KilnCoreError {
            if case let .fileUnreadable(_, reason) = e { throw EngineError.calibrationFile(path: path, field: "", reason: reason) }
            throw e
        }
        return try decode(data, source: path)
    }

    /// Reads a table from JSON bytes; `source` names them in errors.
    public static func decode(_ data: Data, source: String) throws -> CalibrationTable {
        let table: CalibrationTable
        do {
            table = try JSONDecoder().decode(CalibrationTable.self, from: data)
        } catch let e as DecodingError {
            let (path, reason) = describe(e)
            throw EngineError.calibrationFile(path: source, field: path, reason: reason)
        } catch {
            throw EngineError.calibrationFile(path: source, field: "", reason: "it is not JSON (\(error))")
        }
        try table.validate(source: source)
        return table
    }

    /// Checks what the decoder cannot: counts and ranges that make sense.
    func validate(source: String) throws {
        guard batches >= 0 else {
            throw EngineError.calibrationFile(path: source, field: "batches", reason: "is \(batches); it must be 0 or more")
        }
        for key in ranges.keys.sorted() {
            guard let r = ranges[key] else { continue }
            let field = "ranges.\(key)"
            for (name, v) in [("min", r.min), ("max", r.max), ("threshold", r.threshold)] where !v.isFinite {
                throw EngineError.calibrationFile(path: source, field: "\(field).\(name)", reason: "is \(v); it must be finite")
            }
            guard r.min <= r.max else {
                throw EngineError.calibrationFile(path: source, field: "\(field).min", reason: "is \(r.min), above max \(r.max)")
            }
            guard r.threshold >= 0 else {
                throw EngineError.calibrationFile(path: source, field: "\(field).threshold", reason: "is \(r.threshold); it must be 0 or more")
            }
            // Quantizing divides by the threshold: one above the largest |x| seen wastes the int8 range
            // (1e30 makes every output constant), a subnormal one overflows the scale (1e-44 gives NaN),
            // and 0 for a value that was not all zeros maps everything to zero.
            let seen = Swift.max(abs(r.min), abs(r.max))
            guard r.threshold <= seen * (1 + 1e-5) else {
                throw EngineError.calibrationFile(path: source, field: "\(field).threshold",
                                                  reason: "is \(r.threshold), above the largest |x| seen (\(seen)); it must lie within the range min...max")
            }
            guard seen == 0 || (r.threshold.isNormal && (127 / r.threshold).isFinite && (seen / r.threshold) < 1e6) else {
                throw EngineError.calibrationFile(path: source, field: "\(field).threshold",
                                                  reason: "is \(r.threshold), too small for values up to \(seen): quantizing by it would overflow or clip everything (it must be at least a millionth of the largest |x| seen)")
            }
        }
    }

    /// The dotted path of the field a decoding error is about, and what is wrong with it.
    static func describe(_ error: DecodingError) -> (String, String) {
        func path(_ keys: [any CodingKey]) -> String { keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, ctx):
            return (path(ctx.codingPath + [key]), "is missing")
        case let .typeMismatch(type, ctx):
            return (path(ctx.codingPath), "is not a \(type == Float.self ? "number" : type == Int.self ? "integer" : "\(type)")")
        case let .valueNotFound(type, ctx):
            return (path(ctx.codingPath), "is null where a \(type) is needed")
        case let .dataCorrupted(ctx):
            let p = path(ctx.codingPath)
            if p.isEmpty { return ("", "it is not JSON (\(ctx.debugDescription))") }
            if p == "method" { return (p, "is not one of \(Method.allCases.map(\.rawValue).joined(separator: ", "))") }
            return (p, ctx.debugDescription)
        @unknown default:
            return ("", "\(error)")
        }
    }

    // MARK: Cache

    /// The key a table is cached under: SHA-256 (hex) over the engine cache's key of the graph (its
    /// nodes, attributes, input shapes and dtypes, the weights' digests, the CPU and oneDNN version;
    /// Cache/CacheKey.swift), the method and the number of batches. The data the batches come from is
    /// not in it: a caller that calibrates on other data must store under another directory.
    ///
    /// Throws when the graph's types cannot be inferred (variables not in `constants` are float32).
    public static func key(graph: Graph, shapes: InferredShapes, constants: [String: NDArray], method: Method, batches: Int) throws -> String {
        // Only the graph's variables have types to give; other arrays in `constants` are ignored.
        let variables = Set(graph.nodes.filter(\.isVariable).map(\.name))
        let types = try graph.inferTypes(constants.filter { variables.contains($0.key) }.mapValues(\.dtype))
        let graphKey = CacheKey.compute(graph: graph, shapes: shapes, types: types, constants: constants, options: EngineOptions())
        var h = SHA256()
        h.update("kiln-calibration format \(formatVersion)\ngraph ")
        h.update(graphKey)
        h.update("\nmethod \(method.rawValue)\nbatches \(batches)\n")
        return SHA256.hex(h.digest)
    }

    /// The file a table with this key is cached in: `<directory>/calib-<key>.json`.
    public static func cachePath(in directory: String, key: String) -> String {
        (directory as NSString).appendingPathComponent("calib-\(key).json")
    }

    /// The table cached under `key` in `directory`, or nil when there is none. Throws
    /// ``EngineError/calibrationFile(path:field:reason:)`` when the file exists but cannot be used.
    public static func cached(in directory: String, key: String) throws -> CalibrationTable? {
        let path = cachePath(in: directory, key: key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try load(from: path)
    }

    /// Saves the table under `key` in `directory` (created if needed) and returns the file's path.
    @discardableResult
    public func store(in directory: String, key: String) throws -> String {
        let path = Self.cachePath(in: directory, key: key)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder), !isFolder.boolValue {
            throw EngineError.calibrationWrite(path: directory, reason: "it is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EngineError.calibrationWrite(path: path, reason: "the directory cannot be made (\(fileErrorReason(error)))")
        }
        try save(to: path)
        return path
    }
}
