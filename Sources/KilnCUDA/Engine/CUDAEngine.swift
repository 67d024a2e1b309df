import Foundation
import KilnCore
import KilnEngineCore
import KilnGraph
import KilnRuntime

/// The CUDA engine: compiles a group of supported ops into one ``CUDAEngineReport``-described plan
/// on one GPU: BatchNorm folded into convolutions, bias, residual add and activation fused into one
/// generated epilogue per convolution, NHWC with tensor cores in fp16/bf16 (fp32 accumulation),
/// one arena for the intermediates, and every forward one CUDA graph launch.
///
/// ```
/// let engine = CUDAEngine(precision: .fp16)
/// let exec = try net.simpleBind(context: .gpu(0), shapes: shapes, sharedBuffer: weights, engine: .cuda(options))
/// ```
public struct CUDAEngine: Backend {
    /// Arithmetic inside a group; the borders are always float32 NCHW.
    public enum Precision: String, Sendable, CaseIterable {
        /// float32 NCHW with FMA math (no TF32), within 1e-4 of the framework.
        case fp32
        /// float16 NHWC on tensor cores, float32 accumulation.
        case fp16
        /// bfloat16 NHWC on tensor cores, float32 accumulation.
        case bf16
    }

    public let precision: Precision
    public let ordinal: Int
    /// Whether forwards replay a captured CUDA graph (`KILN_ENGINE_CUDA_GRAPH=0` turns it off).
    public let capturesGraphs: Bool
    /// Whether a convolution with its bias, residual and ReLU is first tried as cuDNN's one fused call
    /// (`KILN_ENGINE_CUDA_FUSED_CONV=0`: always convolution, then a generated epilogue).
    public let fusesConvolutions: Bool
    /// Whether each convolution's algorithm is chosen by timing cuDNN's candidates at compile
    /// (`KILN_ENGINE_CUDA_FIND=1`). Off by default: on ResNet-56 fp16 the heuristic ranking ran
    /// 10-20% faster, as the timing measures the plain convolution, not the fused call.
    public let timesAlgorithms: Bool
    /// Whether each compile also times every launch of a forward on the device and puts the table in
    /// its report (`KILN_ENGINE_CUDA_PROFILE=1`; `kiln bench --context gpu` prints the reports).
    public let profiles: Bool
    /// Whether each fused convolution times every cuDNN algorithm that runs it, on the device, and
    /// keeps the fastest (`KILN_ENGINE_CUDA_TUNE=1`); off, the first that runs in cuDNN's ranking.
    /// Off by default: on ResNet-56 fp16 on the H200 it changed no throughput (A/B with
    /// tools/gpu/ab.sh, batch 1, 16 and 64) and added compile time.
    public let tunesFusedConvolutions: Bool

    public init(precision: Precision = .fp32, device ordinal: Int = 0, capturesGraphs: Bool = true, fusesConvolutions: Bool = true,
                timesAlgorithms: Bool = false, profiles: Bool = false, tunesFusedConvolutions: Bool = false) {
        self.profiles = profiles
        self.tunesFusedConvolutions = tunesFusedConvolutions
        self.precision = precision
        self.ordinal = ordinal
        self.capturesGraphs = capturesGraphs
        self.fusesConvolutions = fusesConvolutions
        self.timesAlgorithms = timesAlgorithms
    }

    public var name: String { "cuda" }

    public func runs(on context: Context) -> Bool { context == .gpu(ordinal) }

    /// Whether the engine can run a node, from its capability table (variables always).
    public func support(_ query: SupportQuery) -> Support { Self.capabilities.support(query) }

    /// The cuda engine's ONE capability table: the engine core's shared rules for the ops it lowers,
    /// with what its kernels cannot do refused here.
    public static let capabilities = EngineCapabilities(engine: "cuda", lowerings: [
        "Convolution": EngineRules.convolution,
        "BatchNorm": EngineRules.batchNorm.refusing { f, _ in
            // An unfolded BatchNorm is a generated scale-shift over (N, C, H, W).
            guard let d = f.inputShapes?.first, d.rank != 4 else { return nil }
            return .refuse("data of shape \(d) is not (N, C, H, W)")
        },
        "Activation": EngineRules.activation,
        "relu": EngineRules.activationOp(.relu),
        "sigmoid": EngineRules.activationOp(.sigmoid),
        "tanh": EngineRules.activationOp(.tanh),
        "elemwise_add": EngineRules.add,
        "Pooling": EngineRules.pooling.refusing { f, kind in
            // cuDNN pads both sides alike and floors the output size.
            guard case let .pooling(spec) = kind, let d = f.inputShapes?.first, d.rank == 4,
                  case let .success(w) = spec.geometry(input: [d[2], d[3]]), w.padBefore != w.padAfter else { return nil }
            return f.refuse("pooling_convention", "an output size cuDNN's floor rounding does not give")
        },
        "FullyConnected": EngineRules.fullyConnected.refusing { f, kind in
            guard case let .innerProduct(spec) = kind, !spec.flatten, let d = f.inputShapes?.first, d.rank > 2 else { return nil }
            return f.refuse("flatten", "a dense layer over the last axis of data of rank \(d.rank) is not lowered")
        },
        "Flatten": EngineRules.reshape,
        "Reshape": EngineRules.reshape,
        "expand_dims": EngineRules.reshape,
        "_copy": EngineRules.identity,
        "Dropout": EngineRules.dropout,
        "softmax": EngineRules.softmax,
        "SoftmaxOutput": EngineRules.softmaxOutput,
    ])

    /// The ops in the table (canonical MXNet names).
    public static var table: CapabilityTable<EngineLowering> { capabilities.table }

    /// What the generated epilogues fuse: a convolution takes a residual (`sum`, first) and one
    /// activation; a dense layer, an unfolded BatchNorm and an add take one activation.
    public static let fusion = FusionPolicy { kind, postOps, next in
        let activations = postOps.filter { if case .eltwise = $0 { return true } else { return false } }.count
        switch (kind, next) {
        case (.convolution, .sum): return postOps.isEmpty
        case (.convolution, .eltwise), (.innerProduct, .eltwise), (.batchNorm, .eltwise), (.add, .eltwise): return activations == 0
        default: return false
        }
    }

    /// The cuda engine's passes: the engine core's standard pipeline with its fusion policy and the
    /// fused head (whose kernel applies a ReLU).
    public static let pipeline = EnginePipeline.standard(policy: fusion, head: [HeadFusion(activations: [.relu])])

    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        try compilePlan(graph, shapes: shapes, types: types, constants: constants)
    }

    /// The engine core's optimized IR of a group for this engine: built from the capability table,
    /// then the pipeline, checked after every pass.
    public static func optimize(_ graph: Graph, shapes: InferredShapes, types: InferredTypes,
                                constants: [String: NDArray]) throws -> (ir: EngineIR, passes: [PassRecord]) {
        try pipeline.optimize(graph, shapes: shapes, types: types, constants: constants, capabilities: capabilities)
    }

    /// Compiles and returns the plan with its report.
    public func compilePlan(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> CUDAEngineGroup {
        let started = ContinuousClock().now
        let device = try CUDA.shared.device(ordinal)
        let (ir, passes) = try Self.optimize(graph, shapes: shapes, types: types, constants: constants)
        let group = CUDAEngineGroup(plan: try CUDAEnginePlan(ir: ir, passes: passes, device: device,
                                                             precision: precision, captureGraph: capturesGraphs,
                                                             fusedConvolutions: fusesConvolutions, timesAlgorithms: timesAlgorithms,
                                                             profiles: profiles, tunesFusedConvolutions: tunesFusedConvolutions,
                                                             started: started))
        Self.log.append(group.report)
        return group
    }

    /// The reports of the groups this process compiled, oldest first (for `kiln bench` and
    /// `kiln gpu-check`, which bind through `simpleBind` and so never hold the groups themselves).
    public static var compiledReports: [CUDAEngineReport] { log.all }

    static let log = ReportLog()
}

/// A lock-protected list of reports.
final class ReportLog: @unchecked Sendable {
    private let lock = NSLock()
    private var reports: [CUDAEngineReport] = []

    func append(_ r: CUDAEngineReport) { lock.lock(); reports.append(r); lock.unlock() }
    var all: [CUDAEngineReport] { lock.lock(); defer { lock.unlock() }; return reports }
}

/// A compiled group of the CUDA engine: runs host arrays through the GPU and reports what it built.
public final class CUDAEngineGroup: StartableGraph {
    let plan: CUDAEnginePlan

    init(plan: CUDAEnginePlan) { self.plan = plan }

    public var report: CUDAEngineReport { plan.report }

    public func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        try plan.run(inputs, isTrain: isTrain)
    }

    /// Queues a forward and returns at once (see ``Executor/startForward()``); up to three may be in
    /// flight, each with its own pinned buffers and CUDA graph.
    public func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)? {
        try plan.start(inputs)
    }
}
