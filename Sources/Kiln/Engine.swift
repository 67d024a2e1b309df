import Foundation

/// Errors of the umbrella module: settings read from the environment.
public enum KilnError: Error, CustomStringConvertible, Equatable {
    /// An environment variable with a value Kiln does not accept.
    case invalidSetting(name: String, value: String, accepted: String)
    /// A label in a user's file that is not a class index (NaN, infinite, negative, fractional, huge).
    case invalidLabel(file: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case let .invalidSetting(name, value, accepted):
            return "\(name)=\(value) is not accepted; use one of \(accepted)."
        case let .invalidLabel(file, index, value):
            return "The labels file \(file) holds \(value) at position \(index), which is not a class index (a whole number from 0 to 2147483647)."
        }
    }
}

/// Class labels read from a user's file, converted with a check (a NaN, infinite or 1e30 label
/// trapped in `Int(_:)` before).
public enum ClassLabels {
    /// The labels as class indices; throws ``KilnError/invalidLabel(file:index:value:)`` for the first
    /// that is not a whole number from 0 to 2^31 - 1.
    public static func indices(_ values: [Float], file: String) throws -> [Int] {
        try values.enumerated().map { i, v in
            guard v.isFinite, v >= 0, v < 2_147_483_648, v.rounded() == v else { throw KilnError.invalidLabel(file: file, index: i, value: v) }
            return Int(v)
        }
    }
}

/// What binding does with the subgraphs an engine supports.
public enum EngineSelection: Sendable, Equatable {
    /// Every node runs in the framework, op by op.
    case framework
    /// Supported subgraphs become engine nodes compiled by the CPU engine on oneDNN. Bound with a
    /// GPU context, the same switch means the engine of that context: the cuda engine.
    case cpu(EngineOptions)
    /// Supported subgraphs become engine nodes compiled by the cuda engine (bind with `.gpu(N)`).
    case cuda(EngineOptions)

    /// The selection the environment asks for: `KILN_USE_ENGINE` (`0`/`1`, `false`/`true`, `none`,
    /// `cpu`; unset means `0`) and, for an engine, the `KILN_ENGINE_*` options. Read at each bind, so
    /// flipping the variable and binding again is enough.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EngineSelection {
        let raw = environment["KILN_USE_ENGINE"]?.trimmingWhitespace.lowercased() ?? "0"
        switch raw {
        case "", "0", "false", "none", "framework":
            return .framework
        case "1", "true", "cpu":
            return .cpu(try EngineOptions(environment: environment))
        case "cuda", "gpu":
            return .cuda(try EngineOptions(environment: environment))
        default:
            throw KilnError.invalidSetting(name: "KILN_USE_ENGINE", value: raw, accepted: "0, 1, false, true, none, cpu, cuda")
        }
    }

    /// The engines an engine node may name, for one bind.
    var engines: [String: any Backend] {
        switch self {
        case .framework: return [:]
        case let .cpu(options): return ["cpu": CPUEngine(options: options)]
        case let .cuda(options): return (try? CUDAEngine(options: options, device: 0)).map { ["cuda": $0] } ?? [:]
        }
    }

    /// The engine's options, nil for the framework.
    var options: EngineOptions? {
        switch self {
        case .framework: return nil
        case let .cpu(o), let .cuda(o): return o
        }
    }
}

extension CUDAEngine {
    /// The cuda engine for the shared engine options (`KILN_ENGINE_PRECISION` fp32, fp16 or bf16;
    /// `KILN_ENGINE_CUDA_GRAPH=0` replays no CUDA graph; `KILN_ENGINE_CUDA_FUSED_CONV=0` never uses
    /// cuDNN's fused convolution call; `KILN_ENGINE_CUDA_FIND=1` times cuDNN's algorithms at compile;
    /// `KILN_ENGINE_CUDA_PROFILE=1` puts the device time per launch into each group's report;
    /// `KILN_ENGINE_CUDA_TUNE=1` times every fused algorithm instead of taking cuDNN's first).
    public init(options: EngineOptions, device ordinal: Int,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let p = CUDAEngine.Precision(rawValue: options.precision.rawValue) else {
            throw KilnError.invalidSetting(name: "KILN_ENGINE_PRECISION", value: options.precision.rawValue, accepted: "fp32, fp16 or bf16 on the cuda engine")
        }
        func flag(_ name: String, _ otherwise: Bool) -> Bool {
            environment[name].map { !["0", "false", "off", ""].contains($0.lowercased()) } ?? otherwise
        }
        self.init(precision: p, device: ordinal, capturesGraphs: flag("KILN_ENGINE_CUDA_GRAPH", true),
                  fusesConvolutions: flag("KILN_ENGINE_CUDA_FUSED_CONV", true), timesAlgorithms: flag("KILN_ENGINE_CUDA_FIND", false),
                  profiles: flag("KILN_ENGINE_CUDA_PROFILE", false), tunesFusedConvolutions: flag("KILN_ENGINE_CUDA_TUNE", false))
    }
}

extension Symbol {
    /// The partitioned symbol: each maximal group of nodes the engine supports replaced by one
    /// `_kiln_engine` node (MXNet's `optimize_for`). Weights given in `argParams`/`auxParams` count as
    /// known at bind. The result saves and loads as any symbol, and binds with the same parameters.
    public func optimized(for selection: EngineSelection, argParams: [String: NDArray] = [:],
                          auxParams: [String: NDArray] = [:], shapes: [String: Shape] = [:]) throws -> Symbol {
        try partitionedWithReport(for: selection, argParams: argParams, auxParams: auxParams, shapes: shapes).symbol
    }

    /// The partitioned symbol and the report of what went where and why (`kiln partition`).
    public func partitionedWithReport(for selection: EngineSelection, argParams: [String: NDArray] = [:],
                                      auxParams: [String: NDArray] = [:], shapes: [String: Shape] = [:]) throws -> (symbol: Symbol, report: PartitionReport) {
        let engine: any Backend
        let options: EngineOptions
        switch selection {
        case .framework:
            throw KilnError.invalidSetting(name: "engine", value: "framework", accepted: "an engine selection such as .cpu(EngineOptions())")
        case let .cpu(o):
            engine = CPUEngine(options: o)
            options = o
        case let .cuda(o):
            engine = try CUDAEngine(options: o, device: 0)
            options = o
        }
        let partitionOptions = PartitionOptions(minGroupSize: options.minGroupSize, excludedOps: options.excludedOps,
                                                constants: Set(argParams.keys).union(auxParams.keys),
                                                engineName: engine.name, engineOptions: options.compact)
        let (symbol, report) = try partitioned(for: engine, options: partitionOptions, argParams: argParams, auxParams: auxParams, shapes: shapes)
        return (symbol, report)
    }

    /// Binds the symbol for the given shapes (MXNet's `simple_bind`), honouring the engine switch.
    ///
    /// With `engine` nil, `KILN_USE_ENGINE` decides (unset: framework). With an engine, the symbol is
    /// partitioned first: arrays in `sharedBuffer` that are not inputs (weights, auxiliary states)
    /// are known at bind and baked into the engine nodes that read them; everything the engine does
    /// not take runs in the framework. Labels of loss heads (`listLabelArguments()`) may be left out:
    /// they start as zeros, which inference does not read.
    public func simpleBind(context: Context = .cpu, shapes: [String: Shape], types: [String: DType] = [:],
                           gradReq: GradReq = .null, gradReqs: [String: GradReq] = [:],
                           sharedBuffer: [String: NDArray] = [:], engine: EngineSelection? = nil) throws -> Executor {
        try namingSource {
            try simpleBindNamed(context: context, shapes: shapes, types: types, gradReq: gradReq, gradReqs: gradReqs,
                                sharedBuffer: sharedBuffer, engine: engine)
        }
    }

    private func simpleBindNamed(context: Context, shapes: [String: Shape], types: [String: DType], gradReq: GradReq,
                                 gradReqs: [String: GradReq], sharedBuffer: [String: NDArray], engine: EngineSelection?) throws -> Executor {
        let selection = try engine ?? EngineSelection.fromEnvironment()
        if case let .gpu(ordinal) = context {
            // The GPU's framework mode (cuDNN, cuBLAS and generated kernels op by op), with the cuda
            // engine's groups as nodes of it when the engine is on.
            guard let options = selection.options else {
                return try bind(context: context, shapes: shapes, types: types, gradReq: gradReq, gradReqs: gradReqs,
                                sharedBuffer: sharedBuffer, backend: CUDABackend(device: ordinal))
            }
            return try partitionThenBind(for: .cuda(options), context: context, shapes: shapes, types: types, gradReq: gradReq,
                                         gradReqs: gradReqs, sharedBuffer: sharedBuffer) { constants in
                let engine = try CUDAEngine(options: options, device: ordinal)
                let table = EngineNode.backend(engines: ["cuda": engine], constants: constants).kernels
                return CUDABackend(device: ordinal, fallback: table)
            }
        }
        guard case .cpu = selection else {
            if case .cuda = selection {
                throw KilnError.invalidSetting(name: "KILN_USE_ENGINE", value: "cuda", accepted: "cuda only with context: .gpu(N)")
            }
            // A symbol partitioned earlier (`kiln partition --output`, `optimized(for:)`) holds engine
            // nodes that only an engine runs: say so rather than "no kernel for op '_kiln_engine'".
            if graph.nodes.contains(where: { $0.op == EngineSubgraph.opName }) {
                throw KilnError.invalidSetting(name: "KILN_USE_ENGINE", value: "0",
                                               accepted: "1 or cpu for this symbol, whose engine nodes (made by partitioning) only the engine runs")
            }
            return try bind(context: context, shapes: shapes, types: types, gradReq: gradReq, gradReqs: gradReqs, sharedBuffer: sharedBuffer)
        }
        return try partitionThenBind(for: selection, context: context, shapes: shapes, types: types, gradReq: gradReq,
                                     gradReqs: gradReqs, sharedBuffer: sharedBuffer) { constants in
            EngineNode.backend(engines: selection.engines, constants: constants)
        }
    }

    /// Binds with an engine (CPU or cuda): refuses training, partitions the symbol for `selection`
    /// unless it already holds engine nodes, prints the report when the options ask for it, and binds
    /// on the backend `makeBackend` returns for the constants.
    ///
    /// Data inputs are the arrays whose shapes are given; everything else in `sharedBuffer` is a
    /// constant, known at bind and baked into the engine nodes that read it.
    private func partitionThenBind(for selection: EngineSelection, context: Context, shapes: [String: Shape],
                                   types: [String: DType], gradReq: GradReq, gradReqs: [String: GradReq], sharedBuffer: [String: NDArray],
                                   makeBackend: ([String: NDArray]) throws -> any Backend) throws -> Executor {
        guard gradReq == .null && gradReqs.values.allSatisfy({ $0 == .null }) else {
            throw KilnError.invalidSetting(name: "KILN_USE_ENGINE", value: "1", accepted: "0 when binding for training (engines run inference)")
        }
        let constants = sharedBuffer.filter { shapes[$0.key] == nil }
        let backend = try makeBackend(constants)
        // A symbol that `optimized(for:)` already partitioned binds as it is.
        if graph.nodes.contains(where: { $0.op == "_kiln_engine" }) {
            return try bind(context: context, shapes: shapes, types: types, sharedBuffer: sharedBuffer, backend: backend)
        }
        let aux = Set(listAuxiliaryStates())
        let (partitioned, report) = try partitionedWithReport(
            for: selection, argParams: constants.filter { !aux.contains($0.key) }, auxParams: constants.filter { aux.contains($0.key) },
            shapes: shapes)
        if selection.options?.verbose == true { FileHandle.standardError.write(Data(report.text().utf8)) }
        return try partitioned.bind(context: context, shapes: shapes, types: types, sharedBuffer: sharedBuffer, backend: backend)
    }
}
