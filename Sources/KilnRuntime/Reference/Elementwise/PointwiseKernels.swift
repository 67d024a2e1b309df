import KilnCore
import KilnGraph

/// Applies a ``Pointwise`` function element by element in Double, for any input and output dtype.
/// Backward: dx = dy · f'(x, y).
final class PointwiseReferenceKernel: Kernel {
    let function: Pointwise

    init(_ function: Pointwise) { self.function = function }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let x = inputs[0]
        for i in 0..<x.elementCount { outputs[0].setElement(i, function(x.element(i))) }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let x = inputs[0], y = outputs[0], dy = outputGradients[0]
        for i in 0..<x.elementCount {
            inputGradients[0].setElement(i, dy.element(i) * function.derivative(x.element(i), y.element(i)))
        }
    }
}

/// `LeakyReLU` with `act_type=prelu`: x > 0 ? x : gamma[c] * x, with c the index along axis 1;
/// a gamma of one element applies to every channel. Backward:
/// ```
/// dx = x > 0 ? dy : gamma[c] · dy        dgamma[c] = Σ over the elements of channel c of (x > 0 ? 0 : x · dy)
/// ```
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

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let x = inputs[0], gamma = inputs[1], dy = outputGradients[0]
        var dgamma = [Double](repeating: 0, count: gamma.elementCount)
        for i in 0..<x.elementCount {
            let c = gamma.elementCount == 1 ? 0 : (i / inner) % channels
            let v = x.element(i), g = dy.element(i)
            if needed[0] { inputGradients[0].setElement(i, v > 0 ? g : gamma.element(c) * g) }
            if v <= 0 { dgamma[c] += v * g }
        }
        if needed[1] {
            for c in dgamma.indices { inputGradients[1].setElement(c, dgamma[c]) }
        }
    }
}

/// `LeakyReLU` with `act_type=rrelu`. At inference the slope is (lower + upper) / 2; in training each
/// element draws its own slope uniformly from [lower, upper), kept in the hidden `mask` output, which
/// backward reads: dx = x > 0 ? dy : mask · dy.
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

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        guard outputs.count > 1 else { throw RuntimeError.invalidArgument("rrelu's backward needs its hidden mask output") }
        let x = inputs[0], slopes = outputs[1], dy = outputGradients[0]
        for i in 0..<x.elementCount {
            let g = dy.element(i)
            inputGradients[0].setElement(i, x.element(i) > 0 ? g : slopes.element(i) * g)
        }
    }
}

/// A two-input arithmetic op with NumPy broadcasting (equal shapes are the trivial case).
///
/// Backward sends each output element's gradient to the operand elements that fed it, so an operand
/// broadcast along an axis receives the sum over that axis:
/// ```
/// out (2, 3) = lhs (2, 3) + rhs (1, 3)    ->   drhs[0, j] = dout[0, j] + dout[1, j]
/// ```
final class BinaryReferenceKernel: Kernel {
    let operation: @Sendable (Double, Double) -> Double
    /// The partial derivatives (∂/∂lhs, ∂/∂rhs) at (lhs, rhs).
    let partials: @Sendable (Double, Double) -> (Double, Double)
    let lhsMap: BroadcastMap, rhsMap: BroadcastMap

    init(_ operation: @escaping @Sendable (Double, Double) -> Double,
         partials: @escaping @Sendable (Double, Double) -> (Double, Double), lhs: Shape, rhs: Shape, output: Shape) {
        self.operation = operation
        self.partials = partials
        lhsMap = BroadcastMap(operand: lhs, output: output)
        rhsMap = BroadcastMap(operand: rhs, output: output)
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        let a = inputs[0], b = inputs[1]
        for i in 0..<outputs[0].elementCount {
            outputs[0].setElement(i, operation(a.element(lhsMap.offset(ofOutput: i)), b.element(rhsMap.offset(ofOutput: i))))
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let a = inputs[0], b = inputs[1], dy = outputGradients[0]
        var da = [Double](repeating: 0, count: a.elementCount), db = [Double](repeating: 0, count: b.elementCount)
        for i in 0..<dy.elementCount {
            let l = lhsMap.offset(ofOutput: i), r = rhsMap.offset(ofOutput: i)
            let (pa, pb) = partials(a.element(l), b.element(r))
            let g = dy.element(i)
            da[l] += pa * g
            db[r] += pb * g
        }
        if needed[0] { for k in da.indices { inputGradients[0].setElement(k, da[k]) } }
        if needed[1] { for k in db.indices { inputGradients[1].setElement(k, db[k]) } }
    }

    /// The partial derivatives of an `elemwise_*` or `broadcast_*` op (MXNet's: d(a/b)/db = -a / b²).
    static func partials(for op: String) -> (@Sendable (Double, Double) -> (Double, Double))? {
        switch op {
        case "elemwise_add", "broadcast_add": return { _, _ in (1, 1) }
        case "elemwise_sub", "broadcast_sub": return { _, _ in (1, -1) }
        case "elemwise_mul", "broadcast_mul": return { a, b in (b, a) }
        case "elemwise_div", "broadcast_div": return { a, b in (1 / b, -a / (b * b)) }
        default: return nil
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

/// `add_n`: the inputs summed in order; every input receives the output's gradient.
final class AddNReferenceKernel: Kernel {
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        for i in 0..<outputs[0].elementCount {
            var s = 0.0
            for x in inputs { s += x.element(i) }
            outputs[0].setElement(i, s)
        }
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        let dy = outputGradients[0]
        for k in inputs.indices where needed[k] {
            for i in 0..<dy.elementCount { inputGradients[k].setElement(i, dy.element(i)) }
        }
    }
}

/// `_copy`: the output is the input itself (no copy), and so is the gradient.
final class CopyKernel: Kernel {
    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws { outputs[0] = inputs[0] }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        if needed[0] { inputGradients[0] = outputGradients[0] }
    }
}
