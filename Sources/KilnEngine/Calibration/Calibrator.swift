import KilnCore
import KilnGraph
import KilnRuntime

/// Collects the activation ranges of a graph over calibration batches: the first part of int8
/// inference, as TensorRT's calibrator and MXNet's `calib_mode` with `num_calib_batches`.
///
/// ```
/// let calibrator = try Calibrator(graph: graph, shapes: shapes, types: types, constants: weights, method: .entropy)
/// for batch in firstTenBatches {
///     let outputs = try calibrator.observe(["data": batch])   // the graph's own outputs, served meanwhile
/// }
/// try calibrator.table().store(in: cacheDirectory, key: key)
/// ```
///
/// The graph runs op by op on the framework backend, compiled once with every op node's outputs made
/// graph outputs (heads), so each intermediate is read after the run:
///
/// ```
/// heads: [original heads..., data, conv1, tanh1, pool1, ..., fc2, softmax]
/// ```
///
/// Each value keeps its min and max; with ``CalibrationTable/Method/entropy`` also a 2048-bin
/// histogram of |x| (``AbsHistogram``), which grows between batches when a larger value arrives.
/// Values that are not floating point (integer outputs) are not observed; non-finite elements are
/// skipped.
public final class Calibrator {
    /// The method the table's thresholds use.
    public let method: CalibrationTable.Method
    /// The number of batches observed so far.
    public private(set) var batchesSeen = 0

    private let plan: any CompiledGraph
    private let originalHeadCount: Int
    /// The table key of each observed value, in the order of the extra heads.
    private let keys: [String]
    private var stats: [ValueStats]

    /// What is known of one value.
    struct ValueStats {
        var min = Float.infinity
        var max = -Float.infinity
        var histogram: AbsHistogram?

        var seen: Bool { min <= max }
    }

    /// Compiles `graph` for calibration. Variables in `constants` (weights) are baked in; every other
    /// variable is an input of ``observe(_:)`` and is observed too.
    public init(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                method: CalibrationTable.Method) throws {
        self.method = method
        var heads = graph.heads
        var keys: [String] = []
        var observedShapes = shapes
        var observedTypes = types
        for (i, n) in graph.nodes.enumerated() {
            let outputs: Int
            if n.isVariable {
                guard constants[n.name] == nil else { continue }
                outputs = 1
            } else {
                // Hidden outputs (BatchNorm's saved mean and variance) are not values a consumer reads.
                guard let d = try graph.definition(of: i) else { continue }
                outputs = try d.visibleOutputCount(try graph.resolvedAttributes(of: i))
            }
            for k in 0..<outputs where Self.isFloat(types.nodeOutputs[i][k]) {
                heads.append(Graph.Entry(node: i, index: k))
                keys.append(k == 0 ? n.name : "\(n.name):\(k)")
                observedShapes.outputs.append(shapes.nodeOutputs[i][k])
                observedTypes.outputs.append(types.nodeOutputs[i][k])
            }
        }
        let observing = Graph(nodes: graph.nodes, heads: heads)
        plan = try OpByOpBackend.framework.compile(observing, shapes: observedShapes, types: observedTypes, constants: constants)
        originalHeadCount = graph.heads.count
        self.keys = keys
        stats = keys.map { _ in ValueStats(histogram: method == .entropy ? AbsHistogram() : nil) }
    }

    static func isFloat(_ t: DType) -> Bool { [.float32, .float64, .float16, .bfloat16].contains(t) }

    /// Runs one batch (inputs by variable name), updates every value's range and returns the graph's
    /// original outputs, one per head. Throws the framework's error when an input is missing or has
    /// the wrong shape or dtype; nothing is counted then.
    public func observe(_ inputs: [String: NDArray]) throws -> [NDArray] {
        let outputs = try plan.run(inputs, isTrain: false)
        for (k, value) in outputs.dropFirst(originalHeadCount).enumerated() {
            if value.dtype == .float32 {
                value.withUnsafeBufferPointer(as: Float.self) { update(&stats[k], $0) }
            } else {
                let floats = value.floats()
                floats.withUnsafeBufferPointer { update(&stats[k], $0) }
            }
        }
        batchesSeen += 1
        return Array(outputs.prefix(originalHeadCount))
    }

    private func update(_ s: inout ValueStats, _ values: UnsafeBufferPointer<Float>) {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite {
            lo = Swift.min(lo, v)
            hi = Swift.max(hi, v)
        }
        guard lo <= hi else { return }  // nothing finite in this batch
        s.min = Swift.min(s.min, lo)
        s.max = Swift.max(s.max, hi)
        if s.histogram != nil {
            s.histogram?.grow(toCover: Swift.max(abs(lo), abs(hi)))
            s.histogram?.add(values)
        }
    }

    /// The ranges so far. A value with no finite element seen yet has no entry.
    public func table() -> CalibrationTable {
        var ranges: [String: CalibrationTable.ValueRange] = [:]
        for (key, s) in zip(keys, stats) where s.seen {
            let maxAbs = Swift.max(abs(s.min), abs(s.max))
            var threshold = maxAbs
            if let h = s.histogram {
                // The histogram's range may exceed what was seen (it grows by doubling): never clip above it.
                threshold = Swift.min(EntropyCalibration.optimalThreshold(h, unsigned: s.min >= 0), maxAbs)
            }
            ranges[key] = CalibrationTable.ValueRange(min: s.min, max: s.max, threshold: threshold)
        }
        return CalibrationTable(method: method, batches: batchesSeen, ranges: ranges)
    }
}
