import KilnCore
import KilnGraph

/// `Cast` between any two of Kiln's dtypes, bit-exact with MXNet 1.9 on x86:
/// - float to integer truncates toward zero through a 32-bit (or, for int64, 64-bit) conversion whose
///   out-of-range and NaN results are the "integer indefinite" value (INT_MIN), then wraps to the
///   target's width, as `static_cast` compiles there (`300.7 -> uint8 44`, `-2.7 -> uint8 254`);
/// - integer to integer wraps (two's complement);
/// - to float16 or bfloat16 goes through float32 with round to nearest even.
///
/// Backward casts the output's gradient back to the input's dtype (MXNet's `_backward_Cast`).
final class CastKernel: Kernel {
    let from: DType, to: DType

    init(from: DType, to: DType) {
        self.from = from
        self.to = to
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0]
        if from == to {
            outputs[0] = x
            return
        }
        let n = x.elementCount
        if from == .float32 && to == .float16 {
            outputs[0] = x.converted(to: .float16)
            return
        }
        switch (from.isFloatingPoint, to.isFloatingPoint) {
        case (_, true):
            if !from.isFloatingPoint && to == .float32 {
                // Straight from the integer, so int64 values above 2^53 round once, not twice.
                outputs[0].withUnsafeMutableBufferPointer(as: Float.self) { dst in
                    for i in 0..<n { dst[i] = Float(CastKernel.integer(x, i)) }
                }
            } else {
                for i in 0..<n { outputs[0].setElement(i, x.element(i)) }
            }
        case (true, false):
            for i in 0..<n { CastKernel.store(CastKernel.truncated(x.element(i), to: to), into: &outputs[0], i) }
        case (false, false):
            for i in 0..<n { CastKernel.store(CastKernel.integer(x, i), into: &outputs[0], i) }
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        if needed[0] { inputGradients[0] = outputGradients[0].converted(to: from) }
    }

    /// x86's `cvtt` conversion: toward zero, and the lowest value of the width when out of range or NaN.
    static func truncated(_ v: Double, to t: DType) -> Int64 {
        if t == .int64 {
            guard !v.isNaN, v > -9_223_372_036_854_775_809.0, v < 9_223_372_036_854_775_808.0 else { return Int64.min }
            return Int64(v)
        }
        guard !v.isNaN, v > -2_147_483_649.0, v < 2_147_483_648.0 else { return Int64(Int32.min) }
        return Int64(Int32(v))
    }

    /// Element `i` of an integer array, exactly.
    static func integer(_ x: NDArray, _ i: Int) -> Int64 {
        x.withUnsafeBytes { raw in
            switch x.dtype {
            case .uint8: return Int64(raw.load(fromByteOffset: i, as: UInt8.self))
            case .int8: return Int64(raw.load(fromByteOffset: i, as: Int8.self))
            case .int32: return Int64(raw.load(fromByteOffset: i * 4, as: Int32.self))
            case .int64: return raw.load(fromByteOffset: i * 8, as: Int64.self)
            default: return Int64(x.element(i))
            }
        }
    }

    /// Stores an integer into element `i` of an integer array, wrapping to its width.
    static func store(_ v: Int64, into y: inout NDArray, _ i: Int) {
        let t = y.dtype
        y.withUnsafeMutableBytes { raw in
            switch t {
            case .uint8: raw.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
            case .int8: raw.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: i, as: Int8.self)
            case .int32: raw.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: i * 4, as: Int32.self)
            case .int64: raw.storeBytes(of: v, toByteOffset: i * 8, as: Int64.self)
            default: break
            }
        }
    }
}
