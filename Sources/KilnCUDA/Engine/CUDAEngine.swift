import Foundation
import KilnCore
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

    /// The capability table: each op the engine lowers, with the condition it needs.
    public func support(_ query: SupportQuery) -> Support {
        let n = query.graphNode
        if n.isVariable { return .supported }
        let canonical = OpRegistry.shared.lookup(n.op)?.name ?? n.op
        guard let rule = Self.capabilities[canonical] else { return .unsupported("the cuda engine has no lowering for \(n.op)") }
        guard let shapes = query.shapes, let types = query.types, let (_, ctx) = try? query.graph.context(of: query.node) else {
            return .supported
        }
        let sig = KernelSignature(node: ctx, inputShapes: n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] },
                                  inputTypes: n.inputs.map { types.nodeOutputs[$0.node][$0.index] },
                                  outputShapes: shapes.nodeOutputs[query.node], outputTypes: types.nodeOutputs[query.node])
        if let t = sig.inputTypes.first, t != .float32 { return .unsupported("dtype \(t)") }
        if let reason = rule(sig, query) { return .unsupported(reason) }
        return .supported
    }

    typealias Rule = @Sendable (KernelSignature, SupportQuery) -> String?

    /// nil when input k is a constant known at bind, else the reason.
    static func constant(_ q: SupportQuery, _ k: Int, _ what: String) -> String? {
        q.isConstant(input: k) ? nil : "its \(what) is not a constant known at bind"
    }

    static let capabilities: [String: Rule] = [
        "Convolution": { s, q in
            if let r = ConvolutionKernel.check(s) { return r }
            if let r = constant(q, 1, "weight") { return r }
            if let p = try? ConvolutionParameters(s.attributes), !p.noBias, let r = constant(q, 2, "bias") { return r }
            return nil
        },
        "BatchNorm": { s, q in
            if let r = BatchNormKernel.check(s) { return r }
            guard s.inputShapes[0].rank == 4, (try? BatchNormParameters(s.attributes))?.axis == 1 else { return "data other than (N, C, H, W) with axis 1" }
            for (k, what) in [(1, "gamma"), (2, "beta"), (3, "moving_mean"), (4, "moving_var")] {
                if let r = constant(q, k, what) { return r }
            }
            return nil
        },
        "Activation": { s, _ in
            let t = (try? s.attributes.string("act_type")) ?? ""
            return EngineActivation(rawValue: t) == nil ? "act_type \(t)" : nil
        },
        "relu": { _, _ in nil }, "sigmoid": { _, _ in nil }, "tanh": { _, _ in nil },
        "elemwise_add": { s, _ in s.inputShapes[0] == s.inputShapes[1] ? nil : "inputs of different shapes" },
        "Pooling": { s, _ in PoolingKernel.check(s) },
        "FullyConnected": { s, q in
            if let r = FullyConnectedKernel.check(s) { return r }
            guard let p = try? FullyConnectedParameters(s.attributes) else { return "attributes that do not parse" }
            if !p.flatten && s.inputShapes[0].rank > 2 { return "flatten=False on data of rank \(s.inputShapes[0].rank)" }
            if let r = constant(q, 1, "weight") { return r }
            if !p.noBias, let r = constant(q, 2, "bias") { return r }
            return nil
        },
        "Flatten": { _, _ in nil }, "Reshape": { _, _ in nil }, "_copy": { _, _ in nil }, "expand_dims": { _, _ in nil },
        "Dropout": { _, _ in nil },
        "softmax": { s, _ in SoftmaxKernel.check(s) },
        "SoftmaxOutput": { s, _ in SoftmaxKernel.check(s) },
    ]

    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        try compilePlan(graph, shapes: shapes, types: types, constants: constants)
    }

    /// Compiles and returns the plan with its report.
    public func compilePlan(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> CUDAEngineGroup {
        let device = try CUDA.shared.device(ordinal)
        let group = CUDAEngineGroup(plan: try CUDAEnginePlan(graph: graph, shapes: shapes, types: types, constants: constants, device: device,
                                                             precision: precision, captureGraph: capturesGraphs,
                                                             fusedConvolutions: fusesConvolutions, timesAlgorithms: timesAlgorithms,
                                                             profiles: profiles, tunesFusedConvolutions: tunesFusedConvolutions))
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
