import KilnCore
import KilnGraph

/// A backend's answer for one node.
public enum Support: Sendable, Equatable {
    case supported
    /// Not supported, with a typed reason (``SupportReason``: an op without an entry, an attribute
    /// value, weights not known at bind, or another reason in a sentence fragment).
    case unsupported(SupportReason)

    public var isSupported: Bool { self == .supported }

    /// The reason of an `.unsupported` answer; nil when supported.
    public var reason: SupportReason? {
        guard case let .unsupported(r) = self else { return nil }
        return r
    }

    /// The reason's sentence fragment (empty when supported).
    public var text: String { reason?.text ?? "" }
}

/// What a backend sees when asked whether it can run one node: the graph, the node, and what is
/// known at bind time (shapes and types when inferred, and which variables hold constants such as
/// weights given in the shared buffer).
public struct SupportQuery: Sendable {
    public let graph: Graph
    public let node: Int
    public let shapes: InferredShapes?
    public let types: InferredTypes?
    /// Names of variables whose values are known at bind (weights and auxiliary states).
    public let constants: Set<String>
    /// The indices of the node's outputs that other nodes or the graph's heads read, when the caller
    /// knows them (the partitioner finds them for all nodes in one pass); nil to have them found by
    /// scanning the graph, which costs a pass per query.
    public let outputsRead: Set<Int>?

    public init(graph: Graph, node: Int, shapes: InferredShapes? = nil, types: InferredTypes? = nil, constants: Set<String> = [],
                outputsRead: Set<Int>? = nil) {
        self.graph = graph
        self.node = node
        self.shapes = shapes
        self.types = types
        self.constants = constants
        self.outputsRead = outputsRead
    }

    /// The indices of the node's outputs that are read (see ``outputsRead``).
    public var readOutputIndices: Set<Int> {
        outputsRead ?? graph.readOutputs[node]
    }

    /// The node asked about.
    public var graphNode: Graph.Node { graph.nodes[node] }

    /// Whether input `k` of the node is a variable whose value is known at bind.
    public func isConstant(input k: Int) -> Bool {
        let n = graph.nodes[node]
        guard k < n.inputs.count else { return false }
        let src = graph.nodes[n.inputs[k].node]
        return src.isVariable && constants.contains(src.name)
    }

    /// Shapes of the node's inputs, when shapes were inferred.
    public var inputShapes: [Shape]? {
        guard let shapes else { return nil }
        return graph.nodes[node].inputs.map { shapes.nodeOutputs[$0.node][$0.index] }
    }
}

/// Something that runs a compiled graph: the framework's op-by-op plan or an engine's compiled group.
public protocol CompiledGraph: AnyObject {
    /// Runs on the given inputs (by variable name) and returns the graph's outputs, one per head.
    func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray]
}

/// A run that was started and may still be computing (on a GPU's stream).
public protocol PendingRun: AnyObject {
    /// Blocks until the run has finished and returns its outputs, one per head. A run whose buffers
    /// were taken by later runs before it was read throws.
    func wait() throws -> [NDArray]
}

/// A compiled graph that may start an inference run and return before it finishes, so that the
/// next run's launch overlaps this one's computation (MXNet's asynchronous `forward`).
public protocol StartableGraph: CompiledGraph {
    /// Copies `inputs` (by variable name) and starts a run on them; the arrays may change afterwards.
    /// `nil` when this graph cannot start runs (then use ``CompiledGraph/run(_:isTrain:)``).
    func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)?
}

extension Graph {
    /// The graph's one op node, when every other node is a variable feeding it and the heads are
    /// its outputs in order: a graph an engine took whole, which can start runs as that node does.
    public var soleOpNode: Int? {
        let ops = nodes.indices.filter { !nodes[$0].isVariable }
        guard ops.count == 1, let i = ops.first, !heads.isEmpty,
              heads == heads.indices.map({ Entry(node: i, index: $0) }),
              nodes[i].inputs.allSatisfy({ nodes[$0.node].isVariable }) else { return nil }
        return i
    }
}

/// A way to run graphs. The framework implements it op by op; engines (later issues) compile
/// whole subgraphs. A backend answers one question per node, "can you run this, and if not, why",
/// kept apart from any choice of whether it should.
public protocol Backend: Sendable {
    /// Short name for reports (`"framework"`, `"reference"`, `"engine-cpu"`).
    var name: String { get }
    /// Whether this backend can run the node, and if not, why.
    func support(_ query: SupportQuery) -> Support
    /// Compiles `graph`, every op node of which this backend supports, for the given shapes and types.
    /// `constants` are variables whose values are known at compile time (weights).
    func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph
    /// Whether executors bound with `context` may use this backend (CPU backends: `.cpu` only).
    func runs(on context: Context) -> Bool
}

extension Backend {
    public func runs(on context: Context) -> Bool { context == .cpu }
}

/// A backend that runs a graph one op at a time from a kernel table.
public struct OpByOpBackend: Backend {
    public let name: String
    public let kernels: KernelTable

    public init(name: String, kernels: KernelTable) {
        self.name = name
        self.kernels = kernels
    }

    public func support(_ query: SupportQuery) -> Support {
        let n = query.graphNode
        if n.isVariable { return .supported }
        return kernels.factory(for: n.op) == nil ? .unsupported("no \(name) kernel for \(n.op)") : .supported
    }

    public func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        try OpByOpPlan(graph: graph, shapes: shapes, types: types, kernels: kernels, backendName: name, constants: constants)
    }
}

extension OpByOpBackend {
    /// Naive Swift kernels: slow, simple, the oracle of the tests.
    public static let reference = OpByOpBackend(name: "reference", kernels: ReferenceKernels.table)
    /// The framework's kernels: oneDNN primitives one op at a time, plain NCHW between ops, no fusion.
    /// Ops without a oneDNN kernel use their reference kernel.
    public static let framework = OpByOpBackend(name: "framework", kernels: ReferenceKernels.table.overlaid(with: FrameworkKernels.table))
}
