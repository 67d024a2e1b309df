import CDNNL
import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

/// The cpu engine: compiles a group of supported ops into one plan of oneDNN 2.6 primitives.
///
/// ```
/// let engine = CPUEngine(options: try EngineOptions(parsing: ["cache_dir": "/tmp/kiln-cache"]))
/// let plan = try engine.compilePlan(graph, shapes: shapes, types: types, constants: weights)
/// let outputs = try plan.run(["data": batch], isTrain: false)
/// print(plan.report)      // passes, primitives, arena bytes, cache outcome, timings
/// ```
///
/// Compiling builds the engine's IR (checking every node against the capability table), runs the
/// passes (identity removal, constant folding, BatchNorm folding, post-op fusion, dead ops), creates
/// the primitives with the layouts oneDNN prefers, reorders the weights once and plans one arena for
/// the intermediates.
///
/// Compiled plans are cached under a key hashing the graph, shapes, dtypes, weights, options, CPU and
/// oneDNN version: in this process (primitives and packed weights shared, nothing compiled again) and,
/// with a cache directory, on disk (the optimized IR and folded weights; a later process skips the
/// passes but oneDNN 2.6 must generate its kernels again).
///
/// Shapes are fixed at compile: another batch size is another compile and another cache entry; see
/// docs/ENGINE.md for what that costs.
public struct CPUEngine: Backend {
    /// The options every compile of this engine uses.
    public let options: EngineOptions
    /// Whether compiled plans are shared through the process's plan cache.
    public let usesProcessCache: Bool

    /// For int8: the activation ranges to quantize with. Without one, ``compile(_:shapes:types:constants:)``
    /// returns a ``CalibratingPlan`` that collects them over the first
    /// ``EngineOptions/calibrationBatches`` batches (or finds them in the cache directory).
    public var calibration: CalibrationTable?

    public init(options: EngineOptions = EngineOptions(), usesProcessCache: Bool = true, calibration: CalibrationTable? = nil) {
        self.options = options
        self.usesProcessCache = usesProcessCache
        self.calibration = calibration
    }

    /// The calibration table's method for the options' choice.
    var calibrationMethod: CalibrationTable.Method { options.calibrationMethod == .minmax ? .minMax : .entropy }

    /// Whether this CPU computes in bfloat16 natively (AVX512_BF16 or AMX), as oneDNN dispatches.
    public static var hasNativeBF16: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16
    }

    /// Whether this CPU has int8 dot products (AVX512_VNNI, AVX_VNNI or AMX), as oneDNN dispatches.
    public static var hasInt8DotProducts: Bool {
        let isa = dnnl_get_effective_cpu_isa().rawValue
        let vnni = dnnl_cpu_isa_avx512_core_vnni.rawValue, avxVNNI = dnnl_cpu_isa_avx2_vnni.rawValue
        return isa & vnni == vnni || isa & avxVNNI == avxVNNI
    }

    /// The numerics a compile uses and what the report should say about them.
    func numerics() throws -> (LoweringNumerics, notes: [String]) {
        switch options.precision {
        case .fp32:
            var n = LoweringNumerics.fp32
            n.choosesConvolutions = options.tune
            return (n, [])
        case .bf16:
            guard Self.hasNativeBF16 else {
                return (.fp32, ["bf16 was asked for, but this CPU has no AVX512_BF16: the group runs in fp32"])
            }
            return (LoweringNumerics(mode: .bf16), [])
        case .fp16:
            throw EngineError.invalidOption(key: EngineOptions.Key.precision.shortName, value: "fp16",
                                            accepted: "fp32, bf16 or int8 on the cpu engine (fp16 is the cuda engine's)")
        case .int8:
            var notes: [String] = []
            let table = try calibration ?? options.calibrationFile.map { try CalibrationTable.load(from: $0) }
            let ranges = (table?.ranges ?? [:]).mapValues { LoweringNumerics.Range(min: $0.min, threshold: $0.threshold) }
            if ranges.isEmpty { notes.append("int8 was asked for without a calibration table: every op runs in fp32") }
            if !Self.hasInt8DotProducts {
                // Measured on an AVX2-only EPYC (2026-12-07): a conv's int8 output up to 20 quantization
                // steps from the hand-quantized arithmetic, ResNet-20 0.22 off on a scale of 1.1.
                notes.append("this CPU has no VNNI: oneDNN's int8 kernels here are slower and less exact (measured up to 20 quantization steps off); compare with fp32 before relying on it")
            }
            return (LoweringNumerics(mode: .int8, ranges: ranges, floatNodes: options.floatNodes), notes)
        }
    }

    /// The numerics as text for the cache key (int8 ranges included: other ranges, another plan).
    func numericsKey(_ n: LoweringNumerics) -> String {
        guard n.mode == .int8 else { return n.mode == .bf16 ? "bf16" : "" }
        let ranges = n.ranges.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.min.bitPattern),\($0.value.threshold.bitPattern)" }
        return "int8 " + ranges.joined(separator: ";") + " fp32 " + n.floatNodes.sorted().joined(separator: ",")
    }

    public var name: String { "cpu" }

    /// Whether the engine can run a node, from its capability table (variables always).
    public func support(_ query: SupportQuery) -> Support { CPUCapabilities.table.support(query) }

    /// Compiles `graph` into an ``EnginePlan`` (see ``compilePlan(_:shapes:types:constants:)``).
    /// With int8 and no ``calibration``, the table is looked up in the cache directory (keyed by the
    /// graph, shapes, weights, method and batch count) and otherwise collected by a ``CalibratingPlan``.
    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        guard options.precision == .int8, calibration == nil else {
            return try compilePlan(graph, shapes: shapes, types: types, constants: constants)
        }
        if options.calibrationFile != nil {
            return try compilePlan(graph, shapes: shapes, types: types, constants: constants)
        }
        let key = try CalibrationTable.key(graph: graph, shapes: shapes, constants: constants, method: calibrationMethod,
                                           batches: options.calibrationBatches)
        if let directory = options.cacheDirectory {
            do {
                if let table = try CalibrationTable.cached(in: directory, key: key) {
                    var engine = self
                    engine.calibration = table
                    return try engine.compilePlan(graph, shapes: shapes, types: types, constants: constants)
                }
            } catch let e as EngineError {
                // A damaged cached table is calibrated again and replaced, as a damaged plan is rebuilt.
                guard case .calibrationFile = e else { throw e }
                FileHandle.standardError.write(Data("kiln engine: \(e) It is calibrated again.\n".utf8))
            }
        }
        return try CalibratingPlan(engine: self, graph: graph, shapes: shapes, types: types, constants: constants, key: key)
    }

    /// Compiles `graph` (every op node of which the engine supports) into a plan; see the type's notes.
    /// Variables in `constants` are baked in; the others are the plan's inputs.
    public func compilePlan(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> EnginePlan {
        let clock = ContinuousClock()
        let start = clock.now
        var report = EngineReport()
        report.graphOps = graph.nodes.filter { !$0.isVariable }.count
        let (numerics, notes) = try numerics()
        report.notes = notes
        report.precision = numerics.mode == .bf16 ? "bf16" : numerics.mode == .int8 ? "int8" : "fp32"
        let key = CacheKey.compute(graph: graph, shapes: shapes, types: types, constants: constants, options: options,
                                   numerics: numericsKey(numerics))
        report.cacheKey = SHA256.hex(key)
        let keyed = clock.now
        if usesProcessCache, let core = MemoryPlanCache.shared.core(for: key) {
            var r = core.report
            r.cache = .memoryHit
            r.cacheKey = report.cacheKey
            r.passes = []
            return try finish(EnginePlan(core: core, report: r), start: start, optimized: keyed, clock: clock)
        }
        var optimized: EngineIR?
        if let directory = options.cacheDirectory {
            switch PlanCache.load(directory: directory, key: key) {
            case let .hit(ir):
                optimized = ir
                report.cache = .diskHit
            case .missing:
                report.cache = .miss
            case let .unusable(reason):
                report.cache = .rebuilt(reason)
            }
        }
        if let ir = optimized {
            try checkMemory(of: ir)
            let loadedAt = clock.now
            report.optimizeSeconds = Self.seconds(loadedAt - start)
            do {
                let core = try CompiledCore(ir: ir, report: report, numerics: numerics)
                if usesProcessCache { MemoryPlanCache.shared.remember(core, for: key) }
                return try finish(EnginePlan(core: core, report: core.report), start: start, optimized: loadedAt, clock: clock)
            } catch {
                // An entry that passed its checks but does not lower is not trusted either.
                report.cache = .rebuilt("its IR does not lower (\(error))")
            }
        }
        let (ir, passes) = try CPUCapabilities.pipeline.optimize(graph, shapes: shapes, types: types, constants: constants,
                                                                 capabilities: CPUCapabilities.capabilities)
        report.passes = passes
        try checkMemory(of: ir)
        let optimizedAt = clock.now
        report.optimizeSeconds = Self.seconds(optimizedAt - start)
        var core = try CompiledCore(ir: ir, report: report, numerics: numerics)
        if let tuning = try PlanTuning.refine(core, template: report, numerics: numerics) {
            core = tuning.core
            core.appendNote(tuning.note)
        }
        if let directory = options.cacheDirectory {
            do {
                // Stored after lowering: the IR then records the algorithms chosen by timing.
                try PlanCache.store(core.ir, directory: directory, key: key)
            } catch {
                // A cache that cannot be written costs the next compile time, never this one's result.
                CacheWarning.unusable(directory, error)
            }
        }
        if usesProcessCache { MemoryPlanCache.shared.remember(core, for: key) }
        return try finish(EnginePlan(core: core, report: core.report), start: start, optimized: optimizedAt, clock: clock)
    }

    /// Refuses a group whose activations cannot fit the memory budget, before lowering spends time
    /// on it (see ActivationEstimate.swift).
    private func checkMemory(of ir: EngineIR) throws {
        let largest = ir.ops.max { (ir.values[$0.output].shape.byteCount(of: .float32) ?? .max) < (ir.values[$1.output].shape.byteCount(of: .float32) ?? .max) }
        let detail = largest.map { ", the largest being the output \(ir.values[$0.output].shape) of node '\($0.name)'" } ?? ""
        try MemoryBudget.process.check(bytes: ir.estimatedActivationBytes(elementSize: 4),
                                       for: "the cpu engine's activations (\(ir.ops.count) ops\(detail))")
    }

    private func finish(_ plan: EnginePlan, start: ContinuousClock.Instant, optimized: ContinuousClock.Instant,
                        clock: ContinuousClock) throws -> EnginePlan {
        let end = clock.now
        plan.setReport {
            $0.optimizeSeconds = Self.seconds(optimized - start)
            $0.lowerSeconds = Self.seconds(end - optimized)
            $0.totalSeconds = Self.seconds(end - start)
        }
        if options.verbose { FileHandle.standardError.write(Data((plan.report.description + "\n").utf8)) }
        return plan
    }

    /// Empties the process's plan cache (plans already made keep their primitives).
    public static func clearProcessCache() { MemoryPlanCache.shared.removeAll() }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
