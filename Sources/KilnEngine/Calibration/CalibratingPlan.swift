import Foundation
import KilnCore
import KilnGraph
import KilnRuntime

// An int8 group whose calibration table does not exist yet. Like MXNet's `calib_batches` and
// TensorRT's calibrator, the first N batches run in fp32 (op by op, every intermediate observed) and
// are answered normally; after the N-th, the table is made, stored in the cache directory, and the
// int8 plan is compiled and used from then on.
//
// ```
// run 1 ... N:   fp32 op by op ──> outputs        (ranges of every value collected)
// after run N:   table ──> cache_dir/calib-<key>.json ──> compile int8 plan
// run N+1 ...:   int8 plan ──> outputs
// ```

/// A compiled int8 group that calibrates itself over its first batches (see the file's note).
public final class CalibratingPlan: CompiledGraph {
    let engine: CPUEngine
    let graph: Graph
    let shapes: InferredShapes
    let types: InferredTypes
    let constants: [String: NDArray]
    let key: String
    private var calibrator: Calibrator?
    /// The int8 plan, once calibration is over.
    public private(set) var plan: EnginePlan?
    /// Where the table was stored, when the engine has a cache directory and the write succeeded.
    public private(set) var storedTable: String?

    init(engine: CPUEngine, graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray], key: String) throws {
        (self.engine, self.graph, self.shapes, self.types, self.constants, self.key) = (engine, graph, shapes, types, constants, key)
        calibrator = try Calibrator(graph: graph, shapes: shapes, types: types, constants: constants, method: engine.calibrationMethod)
    }

    /// Batches observed so far; once the int8 plan runs, the number it was calibrated on.
    public var batchesObserved: Int { calibrator?.batchesSeen ?? engine.options.calibrationBatches }

    public func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        guard !isTrain else { throw EngineError.trainingNotSupported }
        if let plan { return try plan.run(inputs, isTrain: false) }
        guard let calibrator else { throw EngineError.invalidIR(pass: "calibration", reason: "the calibrator is gone but no int8 plan was made") }
        let outputs = try calibrator.observe(inputs)
        if calibrator.batchesSeen >= engine.options.calibrationBatches {
            try finishCalibration(calibrator.table())
        }
        return outputs
    }

    private func finishCalibration(_ table: CalibrationTable) throws {
        if let directory = engine.options.cacheDirectory {
            do {
                storedTable = try table.store(in: directory, key: key)
            } catch {
                // A table that cannot be stored costs the next process a calibration, never this result.
                CacheWarning.unusable(directory, error)
            }
        }
        var int8 = engine
        int8.calibration = table
        let compiled = try int8.compilePlan(graph, shapes: shapes, types: types, constants: constants)
        compiled.setReport { $0.notes.append("calibrated over \(table.batches) batches (\(table.method.rawValue))") }
        plan = compiled
        calibrator = nil
    }
}
