import Foundation
import KilnCore

/// Runs `body` and returns the KilnCoreError it threw, or nil when it returned or threw something else.
func kilnError<T>(_ body: () throws -> T) -> KilnCoreError? {
    do {
        _ = try body()
        return nil
    } catch let error as KilnCoreError {
        return error
    } catch {
        return nil
    }
}

extension KilnCoreError {
    /// The case's name, so tests can say which kind of failure they expect.
    var kind: String {
        switch self {
        case .sizeMismatch: return "sizeMismatch"
        case .invalidReshape: return "invalidReshape"
        case .shapeMismatch: return "shapeMismatch"
        case .fileUnreadable: return "fileUnreadable"
        case .malformedFile: return "malformedFile"
        case .unsupportedDType: return "unsupportedDType"
        case .truncated: return "truncated"
        case .unsupportedFeature: return "unsupportedFeature"
        case .fileUnwritable: return "fileUnwritable"
        case .memoryBudgetExceeded: return "memoryBudgetExceeded"
        case .invalidSetting: return "invalidSetting"
        }
    }

    /// The field a file error names, if the case has one.
    var field: String? {
        switch self {
        case let .malformedFile(_, field, _), let .unsupportedDType(_, field, _),
             let .truncated(_, field, _, _, _), let .unsupportedFeature(_, field, _):
            return field
        default:
            return nil
        }
    }
}

/// Little-endian byte building for hand-made files.
struct Bytes {
    var data = Data()
    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func raw(_ bytes: [UInt8]) { data.append(contentsOf: bytes) }
    mutating func text(_ s: String) { data.append(contentsOf: Array(s.utf8)) }
}

/// A fresh temporary folder for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("kiln-io-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Arrays of every dtype and several shapes, with values that each dtype holds exactly.
func sampleArray(dtype: DType, shape: Shape, seed: Int = 0) -> NDArray {
    let values: [Double] = (0..<shape.elementCount).map { i in
        let k = Double((i * 7 + seed * 3) % 23) - 11  // -11 ... 11
        switch dtype {
        case .uint8: return Double((i * 37 + seed) % 256)
        case .int8: return k * 11  // -121 ... 121
        case .int32: return k * 100_003
        case .int64: return k * 1_000_000_000_007
        case .float16, .bfloat16: return k * 0.25  // exact in both
        case .float32: return k * 0.1 + 1e-3
        case .float64: return k * 0.1 + 1e-12
        }
    }
    return NDArray(shape: shape, dtype: dtype, values: values)
}

/// Whether two arrays have the same shape, dtype and bytes.
func identical(_ a: NDArray, _ b: NDArray) -> Bool {
    a.shape == b.shape && a.dtype == b.dtype
        && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
}
