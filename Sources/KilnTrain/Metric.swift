// Evaluation metrics with MXNet's definitions (mxnet/metric.py): each keeps a sum and an instance
// count over the batches it is given, and reports sum / count.
//
// A last batch filled up from the start of the data set carries `pad` repeated examples at its end;
// metrics skip those rows so that every example counts once:
//
//   batch of 4, pad 1:   rows 0 1 2 | 3 (a copy of example 0, skipped)
//
// Labels hold class indices (any dtype; read as integers, truncated as MXNet's astype('int32')).

import Foundation
import KilnCore

/// A metric accumulated over batches (MXNet's `EvalMetric`).
///
/// ```
/// let accuracy = Accuracy()
/// try accuracy.update(labels: [label], predictions: [probabilities])
/// accuracy.get()   // ("accuracy", 0.75)
/// ```
open class EvalMetric {
    /// The name reported by ``get()`` (MXNet's: `accuracy`, `top_k_accuracy_5`, `cross-entropy`).
    public let name: String
    /// The sum of the per-instance values so far.
    public internal(set) var sumMetric: Double = 0
    /// The number of instances so far.
    public internal(set) var instanceCount: Int = 0

    public init(name: String) { self.name = name }

    /// Adds one batch, ignoring the last `pad` rows of every label and prediction.
    /// Labels and predictions pair up in order (one per output of a network).
    public func update(labels: [NDArray], predictions: [NDArray], pad: Int = 0) throws {
        guard labels.count == predictions.count else {
            throw KilnTrainError.invalidArgument("\(name) got \(labels.count) label arrays for \(predictions.count) predictions")
        }
        for (label, prediction) in zip(labels, predictions) {
            guard let n = label.shape.dims.first, prediction.shape.dims.first == n else {
                throw KilnTrainError.invalidArgument("\(name) needs labels and predictions with the same batch size; got label shape \(label.shape) and prediction shape \(prediction.shape)")
            }
            guard pad >= 0, pad <= n else {
                throw KilnTrainError.invalidArgument("\(name) got pad \(pad) for a batch of \(n)")
            }
            try accumulate(label: label, prediction: prediction, rows: n - pad)
        }
    }

    /// Adds the first `rows` rows of one label and prediction pair. Subclasses implement it.
    open func accumulate(label: NDArray, prediction: NDArray, rows: Int) throws {}

    /// The metric's name and value; the value is NaN before any instance.
    public func get() -> (name: String, value: Double) {
        (name, instanceCount == 0 ? .nan : sumMetric / Double(instanceCount))
    }

    /// Starts over.
    public func reset() {
        sumMetric = 0
        instanceCount = 0
    }
}

extension EvalMetric {
    /// A metric by MXNet's name: `acc`/`accuracy`, `ce`/`cross-entropy`, `top_k_accuracy_K`.
    public static func named(_ name: String) throws -> EvalMetric {
        switch name.lowercased() {
        case "acc", "accuracy": return Accuracy()
        case "ce", "cross-entropy", "crossentropy": return CrossEntropy()
        default:
            for prefix in ["top_k_accuracy_", "top_k_acc_"] where name.hasPrefix(prefix) {
                if let k = Int(name.dropFirst(prefix.count)) { return try TopKAccuracy(topK: k) }
            }
            throw KilnTrainError.invalidArgument("Unknown metric '\(name)'; Kiln has acc, ce and top_k_accuracy_K")
        }
    }
}

/// Calls `body` with the elements of `array` as float32, converting only when they are not.
func withFloats<R>(_ array: NDArray, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    let a = array.dtype == .float32 ? array : array.converted(to: .float32)
    return try a.withUnsafeBufferPointer(as: Float.self, body)
}

/// Class index from a label value, as MXNet's `astype('int32')` (truncation toward zero). A label
/// that is no index (NaN, infinite, or beyond Int32 such as 1e30, from a user's data) matches no
/// class instead of trapping in the conversion.
@inline(__always)
func classIndex(_ v: Float) -> Int { v.isFinite && abs(v) < 2_147_483_648 ? Int(v) : Int.min }

/// The fraction of predictions equal to the label (MXNet's `Accuracy`).
///
/// A prediction shaped as its label holds class indices; otherwise it holds scores along `axis`
/// (class 1 of (batch, classes, ...)), and the highest score, the first on ties, is the predicted class.
public final class Accuracy: EvalMetric {
    public let axis: Int

    public init(axis: Int = 1) {
        self.axis = axis
        super.init(name: "accuracy")
    }

    public override func accumulate(label: NDArray, prediction: NDArray, rows: Int) throws {
        let n = label.shape[0]
        let labelsPerRow = label.elementCount / max(n, 1)
        var predicted: [Int]
        if prediction.shape == label.shape {
            predicted = withFloats(prediction) { p in (0..<(rows * labelsPerRow)).map { classIndex(p[$0]) } }
        } else {
            guard let ax = prediction.shape.normalizedAxis(axis), ax > 0 else {
                throw KilnTrainError.invalidArgument("Accuracy's axis \(axis) must be a class axis after the batch axis of predictions of shape \(prediction.shape)")
            }
            let classes = prediction.shape[ax]
            let outer = prediction.shape.dims[..<ax].reduce(1, *) / n
            let inner = prediction.shape.dims[(ax + 1)...].reduce(1, *)
            guard outer * inner == labelsPerRow else {
                throw KilnTrainError.invalidArgument("Accuracy cannot match predictions of shape \(prediction.shape) (classes on axis \(ax)) with labels of shape \(label.shape)")
            }
            predicted = [Int](repeating: 0, count: rows * labelsPerRow)
            withFloats(prediction) { p in
                for o in 0..<(rows * outer) {
                    for j in 0..<inner {
                        let base = o * classes * inner + j
                        var best = 0, bestValue = p[base]
                        for c in 1..<max(classes, 1) where p[base + c * inner] > bestValue {
                            best = c
                            bestValue = p[base + c * inner]
                        }
                        predicted[o * inner + j] = best
                    }
                }
            }
        }
        var correct = 0
        withFloats(label) { l in
            for i in 0..<predicted.count where classIndex(l[i]) == predicted[i] { correct += 1 }
        }
        sumMetric += Double(correct)
        instanceCount += predicted.count
    }
}

/// The fraction of examples whose label is among the `topK` highest scores (MXNet's
/// `TopKAccuracy`). Predictions are (batch, classes). On ties with the label's score, the label
/// counts as ranked first.
public final class TopKAccuracy: EvalMetric {
    public let topK: Int

    /// - Precondition-like check: `topK` must be above 1, as in MXNet (use ``Accuracy`` for 1).
    public init(topK: Int) throws {
        guard topK > 1 else { throw KilnTrainError.invalidArgument("TopKAccuracy needs topK above 1, got \(topK); use Accuracy for the top 1") }
        self.topK = topK
        super.init(name: "top_k_accuracy_\(topK)")
    }

    public override func accumulate(label: NDArray, prediction: NDArray, rows: Int) throws {
        guard prediction.shape.rank == 2 else {
            throw KilnTrainError.invalidArgument("TopKAccuracy needs predictions of shape (batch, classes), got \(prediction.shape)")
        }
        let classes = prediction.shape[1]
        guard label.elementCount == prediction.shape[0] else {
            throw KilnTrainError.invalidArgument("TopKAccuracy needs one label per prediction row; got label shape \(label.shape) for predictions \(prediction.shape)")
        }
        var correct = 0
        withFloats(prediction) { p in
            withFloats(label) { l in
                for r in 0..<rows {
                    let c = classIndex(l[r])
                    guard c >= 0, c < classes else { continue }
                    let row = r * classes, score = p[row + c]
                    var above = 0
                    for j in 0..<classes where p[row + j] > score { above += 1 }
                    if above < topK { correct += 1 }
                }
            }
        }
        sumMetric += Double(correct)
        instanceCount += rows
    }
}

/// The mean of `-log(p[label] + eps)` over examples (MXNet's `CrossEntropy`, eps 1e-12).
/// Predictions are probabilities of shape (batch, classes).
public final class CrossEntropy: EvalMetric {
    public let eps: Double

    public init(eps: Double = 1e-12) {
        self.eps = eps
        super.init(name: "cross-entropy")
    }

    public override func accumulate(label: NDArray, prediction: NDArray, rows: Int) throws {
        let n = prediction.shape[0]
        guard prediction.shape.rank >= 2, label.elementCount == n else {
            throw KilnTrainError.invalidArgument("CrossEntropy needs probabilities of shape (batch, classes) and one label per row; got \(prediction.shape) and \(label.shape)")
        }
        let classes = prediction.elementCount / max(n, 1)
        var sum = 0.0
        try withFloats(prediction) { p in
            try withFloats(label) { l in
                for r in 0..<rows {
                    let c = classIndex(l[r])
                    guard c >= 0, c < classes else {
                        throw KilnTrainError.invalidArgument("CrossEntropy got label \(l[r]) in row \(r) for \(classes) classes")
                    }
                    sum -= Foundation.log(Double(p[r * classes + c]) + eps)
                }
            }
        }
        sumMetric += sum
        instanceCount += rows
    }
}
