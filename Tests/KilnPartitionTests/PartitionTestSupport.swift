import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// A FAKE engine for partitioner tests, built from a set of supported op names (never a real engine):
/// its capability table maps each op to a kernel factory of `kernels` (the reference kernels by
/// default), with the rule that weights be known at bind, plus any extra rules given per op.
struct FakeEngine: Backend {
    let name: String
    let table: CapabilityTable<KernelFactory>

    init(name: String = "fake", supporting ops: Set<String>, kernels: KernelTable = ReferenceKernels.table,
         rules: [String: SupportRule] = [:]) {
        self.name = name
        var t = CapabilityTable<KernelFactory>()
        for op in ops {
            guard let f = kernels.factory(for: op) else { continue }
            t.add(op, .init(lowering: f, when: SupportRule.weightsKnownAtBind.and(rules[op] ?? .always)))
        }
        table = t
    }

    func support(_ query: SupportQuery) -> Support { table.support(query) }

    func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        var factories: [String: KernelFactory] = [:]
        for n in graph.nodes where !n.isVariable {
            guard let f = table.lowering(for: n.op) else { throw RuntimeError.noKernel(op: n.op, node: n.name, backend: name) }
            factories[n.op] = f
        }
        return try OpByOpPlan(graph: graph, shapes: shapes, types: types, kernels: KernelTable([factories]),
                              backendName: name, constants: constants)
    }
}

/// SplitMix64: a small seeded generator, so that every random test can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random array of a shape, values in [-1, 1).
func randomArray(_ shape: Shape, _ rng: inout SeededGenerator) -> NDArray {
    NDArray(shape: shape, values: (0..<shape.elementCount).map { _ in Float.random(in: -1..<1, using: &rng) })
}

/// A random DAG of real registry ops on tensors of one shape: unary activations and scalar ops,
/// elementwise binaries, Concat followed by SliceChannel (a two-output node), Convolution with a
/// weight and BatchNorm with auxiliary states.
struct RandomDAG {
    let symbol: Symbol
    /// The op names the graph uses.
    let ops: Set<String>
    /// Weights and auxiliary states, known at bind.
    let params: [String: NDArray]
    /// The data inputs.
    let inputs: [String: NDArray]

    static let shape: Shape = [2, 4, 3, 3]

    init(seed: UInt64, opCount: Int) {
        var rng = SeededGenerator(seed: seed)
        var pool: [Symbol] = []
        var consumed = Set<SymbolEntry>()
        var params: [String: NDArray] = [:], inputs: [String: NDArray] = [:]
        var ops = Set<String>()
        for k in 0..<Int.random(in: 1...2, using: &rng) {
            pool.append(.variable("data\(k)"))
            inputs["data\(k)"] = randomArray(Self.shape, &rng)
        }
        func pick() -> Symbol {
            // Mostly recent entries, for depth; sometimes any, for long edges.
            let i = Bool.random(using: &rng) ? max(0, pool.count - 1 - Int.random(in: 0...2, using: &rng))
                                             : Int.random(in: 0..<pool.count, using: &rng)
            consumed.insert(pool[i].outputs[0])
            return pool[i]
        }
        func add(_ op: String, _ inputs: [Symbol], _ attributes: [String: String] = [:], _ name: String) -> Symbol {
            ops.insert(op)
            return Symbol.make(op, inputs, attributes: attributes, name: name)
        }
        var k = 0
        while k < opCount {
            let name = "n\(k)"
            switch Int.random(in: 0..<12, using: &rng) {
            case 0: pool.append(add("relu", [pick()], [:], name))
            case 1: pool.append(add("sigmoid", [pick()], [:], name))
            case 2: pool.append(add("tanh", [pick()], [:], name))
            case 3: pool.append(add("Activation", [pick()], ["act_type": "relu"], name))
            case 4: pool.append(add("_mul_scalar", [pick()], ["scalar": "0.5"], name))
            case 5: pool.append(add("elemwise_add", [pick(), pick()], [:], name))
            case 6: pool.append(add("elemwise_mul", [pick(), pick()], [:], name))
            case 7: pool.append(add("elemwise_sub", [pick(), pick()], [:], name))
            case 8:
                let joined = add("Concat", [pick(), pick()], ["num_args": "2"], name)
                k += 1
                let parts = add("SliceChannel", [joined], ["num_outputs": "2"], "n\(k)")
                pool.append(parts[0])
                pool.append(parts[1])
            case 9:
                let w = Symbol.variable("\(name)_weight")
                params["\(name)_weight"] = randomArray([4, 4, 3, 3], &rng)
                pool.append(add("Convolution", [pick(), w], ["kernel": "(3, 3)", "pad": "(1, 1)", "num_filter": "4", "no_bias": "True"], name))
            case 10:
                var bnInputs = [pick()]
                for p in ["gamma", "beta", "moving_mean", "moving_var"] {
                    bnInputs.append(.variable("\(name)_\(p)"))
                    var values = randomArray([4], &rng)
                    if p == "moving_var" { values = NDArray(shape: [4], values: values.floats().map { abs($0) + 0.5 }) }
                    params["\(name)_\(p)"] = values
                }
                pool.append(add("BatchNorm", bnInputs, ["fix_gamma": "False"], name))
            default: pool.append(add("_plus_scalar", [pick()], ["scalar": "1"], name))
            }
            k += 1
        }
        // Heads: every entry nobody reads, and now and then one that is also read inside.
        var heads: [SymbolEntry] = []
        for s in pool where !s.outputs[0].node.isVariable {
            let e = s.outputs[0]
            if !consumed.contains(e) || Int.random(in: 0..<5, using: &rng) == 0 { heads.append(e) }
        }
        symbol = Symbol(outputs: heads)
        self.ops = ops
        self.params = params
        self.inputs = inputs
    }
}

/// Runs a symbol on a backend with the given arrays and returns its outputs.
func run(_ symbol: Symbol, inputs: [String: NDArray], params: [String: NDArray], backend: any Backend) throws -> [NDArray] {
    let arguments = Set(symbol.listArguments())
    let shared = inputs.merging(params) { a, _ in a }
    let shapes = inputs.filter { arguments.contains($0.key) }.mapValues(\.shape)
    let exec = try symbol.bind(shapes: shapes, sharedBuffer: shared, backend: backend)
    try exec.forward()
    return exec.outputs
}

/// The backend that runs a partitioned symbol: the framework, with engine nodes on `engine`.
func engineBackend(_ engine: FakeEngine, constants: [String: NDArray]) -> OpByOpBackend {
    EngineNode.backend(engines: [engine.name: engine], constants: constants)
}

/// A compact structural description of a graph, one line per op node, for comparing before and
/// after: `name=op(input, ...)`, engine nodes as `name=engine[member, ...](input, ...)`, inputs as
/// `node` or `node.k` for outputs past the first.
func describe(_ graph: Graph) throws -> [String] {
    func entry(_ e: Graph.Entry) -> String { graph.nodes[e.node].name + (e.index == 0 ? "" : ".\(e.index)") }
    var lines: [String] = []
    for (i, n) in graph.nodes.enumerated() where !n.isVariable {
        let ins = n.inputs.map(entry).joined(separator: ", ")
        if n.op == EngineSubgraph.opName {
            let sub = try EngineSubgraph(try graph.resolvedAttributes(of: i))
            let members = sub.graph.nodes.filter { !$0.isVariable }.map(\.name).joined(separator: ", ")
            lines.append("\(n.name)=engine[\(members)](\(ins))")
        } else {
            lines.append("\(n.name)=\(n.op)(\(ins))")
        }
    }
    lines.append("heads: " + graph.heads.map(entry).joined(separator: ", "))
    return lines
}

/// Names of the op nodes of a partitioned graph, those inside engine nodes included.
func placedOpNames(_ graph: Graph) throws -> [String] {
    var names: [String] = []
    for (i, n) in graph.nodes.enumerated() where !n.isVariable {
        if n.op == EngineSubgraph.opName {
            let sub = try EngineSubgraph(try graph.resolvedAttributes(of: i))
            names += sub.graph.nodes.filter { !$0.isVariable }.map(\.name)
        } else {
            names.append(n.name)
        }
    }
    return names
}
