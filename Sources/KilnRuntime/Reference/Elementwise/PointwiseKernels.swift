import KilnCore
import KilnGraph

/// Applies a ``Pointwise`` function element by element in Double, for any input and output dtype.
final class PointwiseReferenceKernel: Kernel {
    let function: Pointwise

    init(_ function: Pointwise) { self.function = function }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0]
        for i in 0..<x.elementCount { outputs[0].setElement(i, function(x.element(i))) }
    }
}

/// `LeakyReLU` with `act_type=prelu`: x > 0 ? x : gamma[c] * x, with c the index along axis 1;
/// a gamma of one element applies to every channel.
final class PReLUReferenceKernel: Kernel {
    let channels: Int
    /// Elements per channel block (the product of the axes after 1).
    let inner: Int

    init(dataShape: Shape) {
        channels = dataShape[1]
        inner = dataShape.dims.dropFirst(2).reduce(1, *)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0], gamma = inputs[1]
        for i in 0..<x.elementCount {
            let v = x.element(i)
            let g = gamma.elementCount == 1 ? gamma.element(0) : gamma.element((i / inner) % channels)
            outputs[0].setElement(i, v > 0 ? v : g * v)
        }
    }
}

/// `LeakyReLU` with `act_type=rrelu`. At inference the slope is (lower + upper) / 2; in training each
/// element draws its own slope uniformly from [lower, upper), kept in the hidden `mask` output.
final class RReLUReferenceKernel: Kernel {
    let lower: Double, upper: Double
    var rng: SplitMix64

    init(lower: Double, upper: Double, seed: UInt64) {
        self.lower = lower
        self.upper = upper
        rng = SplitMix64(seed: seed)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0]
        let fixed = Double((Float(lower) + Float(upper)) / 2)
        for i in 0..<x.elementCount {
            let slope = isTrain ? lower + (upper - lower) * Double(rng.nextFloat()) : fixed
            let v = x.element(i)
            outputs[0].setElement(i, v > 0 ? v : slope * v)
            if outputs.count > 1 { outputs[1].setElement(i, slope) }
        }
    }
}

/// A two-input arithmetic op with NumPy broadcasting (equal shapes are the trivial case).
final class BinaryReferenceKernel: Kernel {
    let operation: @Sendable (Double, Double) -> Double
    let lhsMap: BroadcastMap, rhsMap: BroadcastMap

    init(_ operation: @escaping @Sendable (Double, Double) -> Double, lhs: Shape, rhs: Shape, output: Shape) {
        self.operation = operation
        lhsMap = BroadcastMap(operand: lhs, output: output)
        rhsMap = BroadcastMap(operand: rhs, output: output)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let a = inputs[0], b = inputs[1]
        for i in 0..<outputs[0].elementCount {
            outputs[0].setElement(i, operation(a.element(lhsMap.offset(ofOutput: i)), b.element(rhsMap.offset(ofOutput: i))))
        }
    }

    /// The arithmetic of an `elemwise_*` or `broadcast_*` op. Integer division truncates toward zero
    /// when the quotient is stored, as C's does.
    static func operation(for op: String) -> (@Sendable (Double, Double) -> Double)? {
        switch op {
        case "elemwise_add", "broadcast_add": return { $0 + $1 }
        case "elemwise_sub", "broadcast_sub": return { $0 - $1 }
        case "elemwise_mul", "broadcast_mul": return { $0 * $1 }
        case "elemwise_div", "broadcast_div": return { $0 / $1 }
        default: return nil
        }
    }
}

/// `add_n`: the inputs summed in order.
final class AddNReferenceKernel: Kernel {
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        for i in 0..<outputs[0].elementCount {
            var s = 0.0
            for x in inputs { s += x.element(i) }
            outputs[0].setElement(i, s)
        }
    }
}
