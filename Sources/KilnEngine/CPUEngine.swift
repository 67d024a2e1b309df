import Foundation
import KilnCore
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
/// the intermediates. With a cache directory the optimized IR is stored on disk, keyed by the graph,
/// shapes, dtypes, weights, options, CPU and oneDNN version, and a later compile of the same group
/// loads it instead of running the passes.
///
/// Shapes are fixed at compile: another batch size is another compile (and another cache entry); see
/// docs/ENGINE.md for what that costs.
public struct CPUEngine: Backend {
    public let options: EngineOptions

    public init(options: EngineOptions = EngineOptions()) {
        self.options = options
    }

    public var name: String { "cpu" }

    /// Whether the engine can run a node, from its capability table (variables always).
    public func support(_ query: SupportQuery) -> Support {
        if query.graphNode.isVariable { return .supported }
        switch CPUCapabilities.verdict(query) {
        case .lower: return .supported
        case let .refuse(reason): return .unsupported(reason)
        }
    }

    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        try compilePlan(graph, shapes: shapes, types: types, constants: constants)
    }

    /// Compiles `graph` (every op node of which the engine supports) into a plan; see the type's notes.
    /// Variables in `constants` are baked in; the others are the plan's inputs.
    public func compilePlan(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> EnginePlan {
        let clock = ContinuousClock()
        let start = clock.now
        var report = EngineReport()
        report.graphOps = graph.nodes.filter { !$0.isVariable }.count
        var optimized: EngineIR?
        var key: [UInt8]?
        if let directory = options.cacheDirectory {
            let k = try CacheKey.compute(graph: graph, shapes: shapes, types: types, constants: constants, options: options)
            key = k
            report.cacheKey = SHA256.hex(k)
            switch PlanCache.load(directory: directory, key: k) {
            case let .hit(ir):
                optimized = ir
                report.cache = .hit
            case .missing:
                report.cache = .miss
            case let .unusable(reason):
                report.cache = .rebuilt(reason)
            }
        }
        let ir: EngineIR
        if let optimized {
            ir = optimized
        } else {
            var built = try EngineIR(graph: graph, shapes: shapes, types: types, constants: constants)
            report.passes = try EnginePipeline.run(&built)
            ir = built.compacted()
            if let directory = options.cacheDirectory, let key {
                do {
                    try PlanCache.store(ir, directory: directory, key: key)
                } catch {
                    // A cache that cannot be written costs the next compile time, never this one's result.
                    if options.verbose { FileHandle.standardError.write(Data("kiln engine: \(error)\n".utf8)) }
                }
            }
        }
        let optimizedAt = clock.now
        report.optimizeSeconds = Self.seconds(optimizedAt - start)
        let plan = try EnginePlan(ir: ir, report: report)
        let end = clock.now
        plan.setReport {
            $0.lowerSeconds = Self.seconds(end - optimizedAt)
            $0.totalSeconds = Self.seconds(end - start)
        }
        if options.verbose { FileHandle.standardError.write(Data((plan.report.description + "\n").utf8)) }
        return plan
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
