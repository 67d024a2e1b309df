import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph

// The engine cache's file: the optimized IR (after all passes, weights folded) and its constants.
// Primitives are not stored (oneDNN 2.6 cannot serialize them); loading a plan skips building the IR
// and every pass, and lowering creates the primitives again (from oneDNN's in-process primitive cache
// when it holds them).
//
// ```
// offset  size  field
// 0       8     magic "KILNPLAN"
// 8       4     format version (little-endian UInt32)
// 12      32    key (SHA-256 of graph, shapes, dtypes, weights, options, CPU features, oneDNN version)
// 44      8     JSON length J (UInt64)
// 52      8     constants length B (UInt64)
// 60      16    checksum: Hash128 of the J + B bytes that follow
// 76      J     the IR as JSON (values, ops with their lowering kinds, outputs, constant slices)
// 76+J    B     constants: float32, little-endian, back to back
// ```
//
// Nothing in a file is trusted: a wrong magic, version or key, a length that does not match the
// file's size, a bad checksum or JSON that does not decode into a valid IR each make the entry
// unusable, and the engine compiles again and overwrites it.

enum PlanFile {
    static let magic: [UInt8] = Array("KILNPLAN".utf8)
    static let formatVersion: UInt32 = 1
    static let headerSize = 76

    struct StoredValue: Codable {
        var shape: [Int]
        var name: String
        var input: String?
        /// Index into `constants` for a constant.
        var constant: Int?
    }

    struct StoredOp: Codable {
        var name: String
        var op: String
        var attributes: [String: String]
        var fusion: String
        var weightInputs: [Int]
        var lowering: LoweringKind
        var inputs: [Int]
        var output: Int
        var postOps: [EngineIR.PostOp]
        var fused: [String]
    }

    struct StoredConstant: Codable {
        var shape: [Int]
        /// Byte offset and length in the constants section.
        var offset: Int
        var bytes: Int
    }

    struct Stored: Codable {
        var values: [StoredValue]
        var ops: [StoredOp]
        var outputs: [Int]
        var constants: [StoredConstant]
    }

    /// The file's bytes for an IR (compacted first, so only constants some op reads are stored).
    ///
    /// The constants are copied once, straight into the one buffer that becomes the file (the header
    /// in front): a plan's weights are most of its size, and each extra copy was another whole model
    /// in the peak memory of the first compile.
    static func encode(_ ir: EngineIR, key: [UInt8]) throws -> [UInt8] {
        var constants: [StoredConstant] = []
        var sources: [NDArray] = []
        var blobBytes = 0
        let values = ir.values.map { v -> StoredValue in
            var s = StoredValue(shape: v.shape.dims, name: v.name)
            switch v.origin {
            case let .input(name): s.input = name
            case let .constant(array):
                let bytes = array.elementCount * 4   // stored as float32
                constants.append(StoredConstant(shape: array.shape.dims, offset: blobBytes, bytes: bytes))
                sources.append(array)
                blobBytes += bytes
                s.constant = constants.count - 1
            case .computed: break
            }
            return s
        }
        let ops = ir.ops.map { op in
            StoredOp(name: op.name, op: op.op, attributes: op.attributes.values, fusion: op.fusion.rawValue, weightInputs: op.weightInputs,
                     lowering: op.lowering, inputs: op.inputs, output: op.output, postOps: op.postOps, fused: op.fused)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(Stored(values: values, ops: ops, outputs: ir.outputs, constants: constants))
        var out = magic
        out.reserveCapacity(headerSize + json.count + blobBytes)
        withUnsafeBytes(of: formatVersion.littleEndian) { out += $0 }
        out += key
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt64(blobBytes).littleEndian) { out += $0 }
        out += [UInt8](repeating: 0, count: 16)   // the checksum, once the payload is in place
        out += json
        for a in sources {
            if a.dtype == .float32 {
                a.withUnsafeBytes { out += $0 }
            } else {
                a.converted(to: .float32).withUnsafeBytes { out += $0 }
            }
        }
        let checksum = out.withUnsafeBytes { Hash128.hash(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
        out.replaceSubrange((headerSize - 16)..<headerSize, with: checksum)
        return out
    }

    /// Why bytes are not a usable plan for `key`, as a sentence fragment.
    struct Refusal: Error { let reason: String }

    /// The IR in a file's bytes, checked against `key`; throws ``Refusal`` naming what is wrong.
    static func decode(_ data: Data, key: [UInt8]) throws -> EngineIR {
        guard data.count >= headerSize else { throw Refusal(reason: "it is truncated (\(data.count) bytes, shorter than the \(headerSize)-byte header)") }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> EngineIR in
            guard Array(raw[0..<8]) == magic else { throw Refusal(reason: "it does not start with KILNPLAN") }
            let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == formatVersion else { throw Refusal(reason: "it has format version \(version), not \(formatVersion)") }
            guard Array(raw[12..<44]) == key else {
                throw Refusal(reason: "it was compiled for another key (another graph, shapes, weights, options, CPU or oneDNN version)")
            }
            let jsonLength = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 44, as: UInt64.self))
            let blobLength = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 52, as: UInt64.self))
            let (sum, overflow) = jsonLength.addingReportingOverflow(blobLength)
            guard !overflow, sum <= UInt64(Int.max - headerSize), headerSize + Int(sum) == raw.count else {
                throw Refusal(reason: "its lengths (\(jsonLength) + \(blobLength) bytes) do not match its size of \(raw.count) bytes (truncated or extended)")
            }
            let payload = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
            guard Hash128.hash(payload) == Array(raw[60..<76]) else { throw Refusal(reason: "its checksum does not match its contents") }
            let json = Data(UnsafeRawBufferPointer(rebasing: raw[headerSize..<(headerSize + Int(jsonLength))]))
            let blob = UnsafeRawBufferPointer(rebasing: raw[(headerSize + Int(jsonLength))...])
            let stored: Stored
            do { stored = try JSONDecoder().decode(Stored.self, from: json) } catch {
                throw Refusal(reason: "its IR does not decode (\(error))")
            }
            return try rebuild(stored, blob: blob)
        }
    }

    /// The element count of `dims`, or nil when a dimension is negative or the count exceeds 2^40.
    static func elementCount(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, m <= 1 << 40 else { return nil }
            n = m
        }
        return n
    }

    private static func rebuild(_ s: Stored, blob: UnsafeRawBufferPointer) throws -> EngineIR {
        var arrays: [NDArray] = []
        for (k, c) in s.constants.enumerated() {
            guard c.shape.allSatisfy({ $0 >= 0 }), c.offset >= 0, c.bytes >= 0, c.offset <= blob.count, c.bytes <= blob.count - c.offset else {
                throw Refusal(reason: "constant \(k) lies outside the constants section")
            }
            let shape = Shape(c.shape)
            guard elementCount(c.shape).map({ $0 * 4 }) == c.bytes else { throw Refusal(reason: "constant \(k) has \(c.bytes) bytes for shape \(shape)") }
            var array = NDArray(zeros: shape)
            array.withUnsafeMutableBytes { dst in
                if let d = dst.baseAddress, let s = blob.baseAddress { d.copyMemory(from: s + c.offset, byteCount: c.bytes) }
            }
            arrays.append(array)
        }
        var values: [EngineIR.Value] = []
        for v in s.values {
            guard elementCount(v.shape) != nil else { throw Refusal(reason: "value \(v.name) has an impossible shape \(v.shape)") }
            let origin: EngineIR.Origin
            if let name = v.input { origin = .input(name) } else if let k = v.constant {
                guard k >= 0 && k < arrays.count, arrays[k].shape.dims == v.shape else { throw Refusal(reason: "value \(v.name) names a missing constant") }
                origin = .constant(arrays[k])
            } else { origin = .computed }
            values.append(EngineIR.Value(shape: Shape(v.shape), name: v.name, origin: origin))
        }
        var ops: [EngineIR.Op] = []
        for o in s.ops {
            guard let fusion = FusionKind(rawValue: o.fusion) else { throw Refusal(reason: "op \(o.name) has an unknown fusion kind") }
            ops.append(EngineIR.Op(name: o.name, op: o.op, attributes: Attributes(o.attributes, node: o.name, op: o.op), fusion: fusion,
                                   weightInputs: o.weightInputs, lowering: o.lowering, inputs: o.inputs, output: o.output,
                                   postOps: o.postOps, fused: o.fused))
        }
        let ir = EngineIR(values: values, ops: ops, outputs: s.outputs)
        do { try ir.check(after: "cache load", policy: CPUCapabilities.fusion) } catch { throw Refusal(reason: "its IR is invalid (\(error))") }
        return ir
    }
}
