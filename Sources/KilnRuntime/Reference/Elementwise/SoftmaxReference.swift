import Foundation
import KilnCore
import KilnGraph

/// Softmax along one axis, seen as a (outer, n, inner) view of the array: each of the outer * inner
/// lines of n elements (stride inner) is normalized on its own. Computed in Double with the maximum
/// subtracted first, so large inputs do not overflow:
/// ```
/// softmax(x)_j     = exp((x_j - m) / T) / Σ_k exp((x_k - m) / T),   m = max_k x_k
/// log_softmax(x)_j = (x_j - m) / T - log Σ_k exp((x_k - m) / T)
/// ```
struct SoftmaxLines: Sendable {
    let outer: Int, n: Int, inner: Int
    let temperature: Double
    let logarithm: Bool

    /// Lines along `axis` of `shape`.
    init(shape: Shape, axis: Int, temperature: Double, logarithm: Bool) {
        outer = shape.dims[..<axis].reduce(1, *)
        n = shape[axis]
        inner = shape.dims[(axis + 1)...].reduce(1, *)
        self.temperature = temperature
        self.logarithm = logarithm
    }

    init(outer: Int, n: Int, inner: Int, temperature: Double = 1, logarithm: Bool = false) {
        self.outer = outer
        self.n = n
        self.inner = inner
        self.temperature = temperature
        self.logarithm = logarithm
    }

    func apply(_ x: NDArray, into y: inout NDArray) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var m = -Double.infinity
                for j in 0..<n { m = max(m, x.element(base + j * inner)) }
                var sum = 0.0
                for j in 0..<n { sum += exp((x.element(base + j * inner) - m) / temperature) }
                for j in 0..<n {
                    let z = (x.element(base + j * inner) - m) / temperature
                    y.setElement(base + j * inner, logarithm ? z - log(sum) : exp(z) / sum)
                }
            }
        }
    }

    /// The lines `SoftmaxOutput` normalizes: axis 1 of (N, C, rest) with `multi_output`, otherwise the
    /// last axis. Without `multi_output` MXNet 1.9.1's generic CPU code would flatten all trailing axes of
    /// each row, but its default oneDNN path (the one the golden files and ordinary installs run, and
    /// the one its label shape (data without the last axis) matches) normalizes the last axis alone;
    /// Kiln follows that. `preserve_shape` therefore changes nothing here. (Measured in MXNet 1.9.1 with
    /// `MXNET_SUBGRAPH_BACKEND=NONE`: the oneDNN path runs only for 4-D data at inference; 3-D and 5-D
    /// data, and any training forward, flatten each sample into one line. Kiln keeps one rule for
    /// every rank and mode; rank 2, the usual classifier, agrees everywhere.)
    static func softmaxOutput(_ sig: KernelSignature) throws -> SoftmaxLines {
        let shape = sig.inputShapes[0]
        let count = shape.elementCount
        guard shape.rank >= 1, count > 0 else { return SoftmaxLines(outer: 0, n: 0, inner: 0) }
        if try SoftmaxOutputParameters(sig.attributes).multiOutput, shape.rank >= 2 {
            return SoftmaxLines(outer: shape[0], n: shape[1], inner: count / shape[0] / shape[1])
        }
        let last = shape.dims.last ?? 1
        return SoftmaxLines(outer: count / last, n: last, inner: 1)
    }

    /// The lines of a `softmax` or `log_softmax` node; refuses `use_length`.
    static func softmax(_ sig: KernelSignature) throws -> SoftmaxLines {
        let p = try SoftmaxParameters(sig.attributes)
        if p.useLength { throw sig.unsupported("use_length=True (per-row lengths) is not implemented") }
        let shape = sig.inputShapes[0]
        guard let axis = shape.normalizedAxis(p.axis) else {
            throw sig.unsupported("axis \(p.axis) is out of range for shape \(shape)")
        }
        // A temperature of 0 gives NaN, as in MXNet.
        let t = p.temperature ?? 1
        return SoftmaxLines(shape: shape, axis: axis, temperature: t, logarithm: sig.node.op == "log_softmax")
    }
}

/// A reference kernel running ``SoftmaxLines``.
final class SoftmaxReferenceKernel: Kernel {
    let lines: SoftmaxLines
    init(_ lines: SoftmaxLines) { self.lines = lines }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        lines.apply(inputs[0], into: &outputs[0])
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        if needed[0] { lines.backward(output: outputs[0], gradient: outputGradients[0], into: &inputGradients[0]) }
    }
}
