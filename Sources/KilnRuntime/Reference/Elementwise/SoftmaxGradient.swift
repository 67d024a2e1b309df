import Foundation
import KilnCore
import KilnGraph

/// Gradients of the softmax ops.
///
/// `softmax` and `log_softmax` backpropagate the head gradient dy through each line (y is the output):
/// ```
/// softmax:      dx_j = y_j (dy_j - Σ_k dy_k y_k) / T
/// log_softmax:  dx_j = (dy_j - exp(y_j) Σ_k dy_k) / T
/// ```
/// `SoftmaxOutput` is a loss layer: it ignores its head gradient (unless `out_grad`) and returns the
/// gradient of the cross-entropy of its softmax against the label, scaled:
/// ```
/// y = [0.2, 0.3, 0.5], label 2, grad_scale 1, normalization null  ->  dx = [0.2, 0.3, -0.5]
/// ```
extension SoftmaxLines {
    /// dx from the output `y` and its gradient `dy`, in Double for any dtype.
    func backward(output y: NDArray, gradient dy: NDArray, into dx: inout NDArray) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var s = 0.0
                for j in 0..<n {
                    let k = base + j * inner
                    s += logarithm ? dy.element(k) : dy.element(k) * y.element(k)
                }
                for j in 0..<n {
                    let k = base + j * inner
                    let g = logarithm ? dy.element(k) - exp(y.element(k)) * s : y.element(k) * (dy.element(k) - s)
                    dx.setElement(k, g / temperature)
                }
            }
        }
    }
}

/// `SoftmaxOutput`'s gradient rules, MXNet 1.9.1's (measured against it, not only read from its source):
/// - each line (see ``SoftmaxLines/softmaxOutput(_:)``) has one label, the class index `Int(label)`
///   truncated as C does; dx = (y - onehot) · scale, or with `smooth_alpha` α the target is 1 - α at
///   the label and α / (n - 1) elsewhere. A label outside [0, n) makes the target all zeros.
/// - `use_ignore`: lines whose label equals `ignore_label` (both truncated) get zeros.
/// - scale = `grad_scale` / d, where d is, without `multi_output`: 1 (`null`), the number of lines
///   (`batch`), or the number of labels not equal to `ignore_label` (`valid`, at least 1, counted
///   whether or not `use_ignore` is set). With `multi_output` over data (N, C, rest): rest (`null`),
///   N · rest (`batch`), or the valid count (`valid`).
/// - a label of the data's own shape holds probabilities: dx = (y - label) · `grad_scale`, no
///   normalization.
/// - `out_grad`: the gradient is multiplied by the head gradient, as MXNet documents. MXNet 1.9.1
///   multiplies by the output y instead (its backward receives y where the head gradient belongs);
///   Kiln does not copy that bug (the golden fixtures mark that case as MXNet's error).
///
/// For data of rank 3 or more without `multi_output`, Kiln normalizes and differentiates lines along
/// the last axis, one label each (what `preserve_shape` does); MXNet 1.9.1's training path there
/// flattens each sample into one line yet reads only the first N labels.
struct SoftmaxOutputRule: Sendable {
    let lines: SoftmaxLines
    let gradScale: Double
    let ignoreLabel: Int
    let useIgnore: Bool
    let multiOutput: Bool
    let normalization: SoftmaxNormalization
    let smoothAlpha: Double
    let multipliesByHeadGradient: Bool
    /// Whether the label has the data's shape (probabilities rather than class indices).
    let probabilityLabel: Bool

    init(_ sig: KernelSignature) throws {
        let a = sig.attributes
        let p = try SoftmaxOutputParameters(a)
        lines = try SoftmaxLines.softmaxOutput(sig)
        gradScale = try a.float("grad_scale")
        ignoreLabel = SoftmaxOutputRule.classIndex(try a.float("ignore_label"))
        useIgnore = try a.bool("use_ignore")
        multiOutput = p.multiOutput && sig.inputShapes[0].rank >= 2
        normalization = p.normalization
        smoothAlpha = try a.float("smooth_alpha")
        multipliesByHeadGradient = try a.bool("out_grad")
        probabilityLabel = sig.inputShapes.count > 1 && sig.inputShapes[1] == sig.inputShapes[0]
    }

    /// A label value as MXNet's `static_cast<int>` reads it.
    static func classIndex(_ v: Double) -> Int { Int(CastKernel.truncated(v, to: .int32)) }

    /// The factor on every gradient element, given the number of labels not equal to `ignore_label`.
    func scale(validCount: Int) -> Double {
        if probabilityLabel { return gradScale }
        let lineCount = lines.outer * lines.inner
        switch normalization {
        case .batch: return gradScale / Double(lineCount)
        case .valid: return gradScale / Double(max(validCount, 1))
        case .null: return gradScale / Double(multiOutput ? lines.inner : 1)
        }
    }

    /// The target of element `j` of a line whose class is `k`.
    @inline(__always)
    func target(_ j: Int, _ k: Int) -> Double {
        if smoothAlpha == 0 { return j == k ? 1 : 0 }
        return j == k ? 1 - smoothAlpha : smoothAlpha / Double(lines.n - 1)
    }
}

/// `SoftmaxOutput` on the reference path: ``SoftmaxLines`` forward, ``SoftmaxOutputRule`` backward.
final class SoftmaxOutputReferenceKernel: Kernel {
    let rule: SoftmaxOutputRule
    init(_ rule: SoftmaxOutputRule) { self.rule = rule }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        rule.lines.apply(inputs[0], into: &outputs[0])
    }

    func backward(_ inputs: [NDArray], _ outputs: [NDArray], _ outputGradients: [NDArray],
                  _ inputGradients: inout [NDArray], needed: [Bool]) throws {
        guard needed[0] else { return }
        let y = outputs[0], label = inputs[1], dy = outputGradients[0]
        if rule.probabilityLabel {
            let scale = rule.scale(validCount: 0)
            for i in 0..<y.elementCount {
                let g = (y.element(i) - label.element(i)) * scale
                inputGradients[0].setElement(i, rule.multipliesByHeadGradient ? g * dy.element(i) : g)
            }
            return
        }
        let (n, inner) = (rule.lines.n, rule.lines.inner)
        var valid = 0
        for l in 0..<label.elementCount where SoftmaxOutputRule.classIndex(label.element(l)) != rule.ignoreLabel { valid += 1 }
        let scale = rule.scale(validCount: valid)
        for o in 0..<rule.lines.outer {
            for i in 0..<inner {
                let k = SoftmaxOutputRule.classIndex(label.element(o * inner + i))
                let ignored = rule.useIgnore && k == rule.ignoreLabel
                for j in 0..<n {
                    let e = (o * n + j) * inner + i
                    var g = ignored ? 0 : (y.element(e) - rule.target(j, k)) * scale
                    if rule.multipliesByHeadGradient { g *= dy.element(e) }
                    inputGradients[0].setElement(e, g)
                }
            }
        }
    }
}
