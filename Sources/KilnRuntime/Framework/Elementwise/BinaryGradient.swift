import KilnCore
import KilnGraph

/// The float32 backward of `elemwise_*` and `broadcast_*`.
///
/// An operand of the output's shape gets its gradient element by element (for add, and sub's lhs,
/// the output's gradient itself, shared without a copy). A broadcast operand sums the contributions
/// of all output elements it fed, walking the output's rows with each array's stride along the last
/// axis (0 where broadcast):
/// ```
/// out (2, 3) = lhs (2, 3) * rhs (1, 3):   dlhs = dout * rhs (rhs row re-read for each output row)
///                                          drhs[j] = Σ_rows dout[row, j] * lhs[row, j]
/// ```
struct Float32BinaryGradient {
    enum Operation { case add, subtract, multiply, divide }

    let operation: Operation
    let lhsMap: BroadcastMap, rhsMap: BroadcastMap
    /// Whether each operand has the output's shape (padded with leading 1s).
    let lhsFull: Bool, rhsFull: Bool
    let rowLength: Int, rowCount: Int, count: Int

    init?(_ op: String, lhs: Shape, rhs: Shape, output: Shape) {
        switch op {
        case "elemwise_add", "broadcast_add": operation = .add
        case "elemwise_sub", "broadcast_sub": operation = .subtract
        case "elemwise_mul", "broadcast_mul": operation = .multiply
        case "elemwise_div", "broadcast_div": operation = .divide
        default: return nil
        }
        lhsMap = BroadcastMap(operand: lhs, output: output)
        rhsMap = BroadcastMap(operand: rhs, output: output)
        lhsFull = lhs.padded(toRank: output.rank) == output
        rhsFull = rhs.padded(toRank: output.rank) == output
        rowLength = output.dims.last ?? 1
        rowCount = rowLength == 0 ? 0 : output.elementCount / rowLength
        count = output.elementCount
    }

    func run(_ inputs: [NDArray], _ dy: NDArray, _ grads: inout [NDArray], needed: [Bool]) {
        for k in 0..<2 where needed[k] {
            let full = k == 0 ? lhsFull : rhsFull
            // Gradients that are the output's gradient itself need no arithmetic.
            if full && (operation == .add || (operation == .subtract && k == 0)) {
                grads[k] = dy
                continue
            }
            inputs[0].withUnsafeBufferPointer(as: Float.self) { a in
                inputs[1].withUnsafeBufferPointer(as: Float.self) { b in
                    dy.withUnsafeBufferPointer(as: Float.self) { g in
                        grads[k].withUnsafeMutableBufferPointer(as: Float.self) { d in
                            switch (operation, k) {
                            case (.add, _): fill(k, a, b, g, d) { _, _, g in g }
                            case (.subtract, 0): fill(k, a, b, g, d) { _, _, g in g }
                            case (.subtract, _): fill(k, a, b, g, d) { _, _, g in -g }
                            case (.multiply, 0): fill(k, a, b, g, d) { _, b, g in g * b }
                            case (.multiply, _): fill(k, a, b, g, d) { a, _, g in g * a }
                            case (.divide, 0): fill(k, a, b, g, d) { _, b, g in g / b }
                            case (.divide, _): fill(k, a, b, g, d) { a, b, g in -g * a / (b * b) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Sums `f(a, b, dy)` over the output elements each element of operand k fed, into its gradient.
    @inline(__always)
    func fill(_ k: Int, _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
              _ g: UnsafeBufferPointer<Float>, _ d: UnsafeMutableBufferPointer<Float>, _ f: (Float, Float, Float) -> Float) {
        if lhsFull && rhsFull {
            for i in 0..<count { d[i] = f(a[i], b[i], g[i]) }
            return
        }
        // Accumulating into zeros also covers a full operand whose last axis has extent 1 (stride 0).
        for i in 0..<d.count { d[i] = 0 }
        let n = rowLength
        let ls = lhsMap.strides.last ?? 0, rs = rhsMap.strides.last ?? 0
        let ds = k == 0 ? ls : rs
        for row in 0..<rowCount {
            let start = row * n
            let la = lhsMap.offset(ofOutput: start), rb = rhsMap.offset(ofOutput: start)
            let base = k == 0 ? la : rb
            if ds == 0 {
                var sum: Float = 0
                for j in 0..<n { sum += f(a[la + j * ls], b[rb + j * rs], g[start + j]) }
                d[base] += sum
            } else {
                for j in 0..<n { d[base + j] += f(a[la + j * ls], b[rb + j * rs], g[start + j]) }
            }
        }
    }
}
