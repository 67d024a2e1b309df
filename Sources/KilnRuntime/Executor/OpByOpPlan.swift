import KilnCore
import KilnGraph

/// A graph bound for fixed shapes and run one op at a time: a kernel per op node, created once, and
/// every output array allocated once.
///
/// ```
/// data ─> conv0 ─> relu0 ─> fc0 ─> out      values[node][output] hold the arrays;
/// w0 ───┘          w1 ─────┘                 kernels[node] run in this order
/// ```
public final class OpByOpPlan: StartableGraph {
    let graph: Graph
    let shapes: InferredShapes
    let types: InferredTypes
    let kernels: [(any Kernel)?]
    var values: [[NDArray]]
    let constants: [String: NDArray]
    let backendName: String

    public init(graph: Graph, shapes: InferredShapes, types: InferredTypes, kernels table: KernelTable,
                backendName: String, constants: [String: NDArray] = [:]) throws {
        self.graph = graph
        self.shapes = shapes
        self.types = types
        self.constants = constants
        self.backendName = backendName
        // Every output is allocated once, here: refuse shapes that would not fit before allocating any.
        var arrays: [(name: String, shape: Shape, dtype: DType)] = []
        for (i, n) in graph.nodes.enumerated() {
            for (k, (shape, dtype)) in zip(shapes.nodeOutputs[i], types.nodeOutputs[i]).enumerated() {
                arrays.append((n.isVariable ? "'\(n.name)'" : "output \(k) of node '\(n.name)'", shape, dtype))
            }
        }
        try MemoryBudget.process.check(arrays: arrays, for: "the arrays of the \(backendName) backend's plan")
        var kernels: [(any Kernel)?] = []
        var values: [[NDArray]] = []
        for (i, n) in graph.nodes.enumerated() {
            let outShapes = shapes.nodeOutputs[i], outTypes = types.nodeOutputs[i]
            values.append(zip(outShapes, outTypes).map { NDArray(zeros: $0, dtype: $1) })
            if n.isVariable { kernels.append(nil); continue }
            guard let factory = table.factory(for: n.op) else {
                throw RuntimeError.noKernel(op: n.op, node: n.name, backend: backendName)
            }
            let (_, ctx) = try graph.context(of: i)
            let sig = KernelSignature(
                node: ctx,
                inputShapes: n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] },
                inputTypes: n.inputs.map { types.nodeOutputs[$0.node][$0.index] },
                outputShapes: outShapes, outputTypes: outTypes)
            kernels.append(try factory(sig))
        }
        self.kernels = kernels
        self.values = values
    }

    public func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
        for (i, n) in graph.nodes.enumerated() {
            guard let kernel = kernels[i] else {
                try bindVariable(i, inputs)
                continue
            }
            let ins = n.inputs.map { values[$0.node][$0.index] }
            try kernel.forward(ins, &values[i], isTrain: isTrain)
        }
        return graph.heads.map { values[$0.node][$0.index] }
    }

    private func bindVariable(_ i: Int, _ inputs: [String: NDArray]) throws {
        let n = graph.nodes[i]
        guard let v = inputs[n.name] ?? constants[n.name] else {
            throw RuntimeError.missingArgument(name: n.name, known: graph.nodes.filter(\.isVariable).map(\.name))
        }
        let expected = shapes.nodeOutputs[i][0]
        guard v.shape == expected else { throw RuntimeError.argumentShape(name: n.name, expected: expected, actual: v.shape) }
        let t = types.nodeOutputs[i][0]
        guard v.dtype == t else { throw RuntimeError.argumentType(name: n.name, expected: t, actual: v.dtype) }
        values[i][0] = v
    }

    /// Starts an inference run without waiting for it, when the graph is one op node (see
    /// ``Graph/soleOpNode``) whose kernel can (see ``StartableKernel``); `nil` otherwise.
    public func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)? {
        guard let i = graph.soleOpNode, let kernel = kernels[i] as? any StartableKernel else { return nil }
        for e in graph.nodes[i].inputs { try bindVariable(e.node, inputs) }
        return try kernel.start(graph.nodes[i].inputs.map { values[$0.node][$0.index] })
    }
}

extension OpByOpPlan {
    /// Gradients of the given variables (by node index), by reverse-mode accumulation over the graph
    /// after a training forward:
    ///
    /// ```
    /// forward:  x ─> conv ─> relu ─> out        backward walks the ops in reverse; an entry read by
    /// backward: dx <─ conv' <─ relu' <─ dout     several ops sums their input gradients
    /// ```
    ///
    /// Only ops on a path from a wanted variable to a head are differentiated.
    func backward(headGradients: [NDArray], wanted: Set<Int>) throws -> [Int: NDArray] {
        var needs = [Bool](repeating: false, count: graph.nodes.count)
        for (i, n) in graph.nodes.enumerated() {
            needs[i] = n.isVariable ? wanted.contains(i) : n.inputs.contains { needs[$0.node] }
        }
        var grads: [Graph.Entry: NDArray] = [:]
        func accumulate(_ e: Graph.Entry, _ g: NDArray) throws {
            if let old = grads[e] { grads[e] = try old.addingGradient(g) } else { grads[e] = g }
        }
        for (h, g) in zip(graph.heads, headGradients) where needs[h.node] { try accumulate(h, g) }
        for i in graph.nodes.indices.reversed() where needs[i] {
            guard let kernel = kernels[i] else { continue }
            let n = graph.nodes[i]
            let (def, ctx) = try graph.context(of: i)
            guard let rule = def.gradient else {
                throw RuntimeError.unsupported(node: n.name, op: n.op, reason: "the op has no gradient, but a gradient is requested through it")
            }
            let differentiable = Set(rule.inputs(ctx.attributes))
            let outGrads = values[i].indices.map { k in
                grads[Graph.Entry(node: i, index: k)] ?? NDArray(zeros: values[i][k].shape, dtype: values[i][k].dtype)
            }
            let ins = n.inputs.map { values[$0.node][$0.index] }
            let needed = n.inputs.enumerated().map { k, e in needs[e.node] && differentiable.contains(k) }
            guard needed.contains(true) else { continue }
            var inGrads = ins.map { NDArray(zeros: $0.shape, dtype: $0.dtype) }
            try kernel.backward(ins, values[i], outGrads, &inGrads, needed: needed)
            for (k, e) in n.inputs.enumerated() where needed[k] { try accumulate(e, inGrads[k]) }
        }
        var result: [Int: NDArray] = [:]
        for i in wanted {
            let v = values[i][0]
            result[i] = grads[Graph.Entry(node: i, index: 0)] ?? NDArray(zeros: v.shape, dtype: v.dtype)
        }
        return result
    }

    /// Auxiliary states changed by the last training forward, by variable name.
    func auxiliaryUpdates() -> [String: NDArray] {
        var updates: [String: NDArray] = [:]
        for (i, n) in graph.nodes.enumerated() {
            guard let kernel = kernels[i] else { continue }
            for (input, value) in kernel.auxiliaryUpdates() where input < n.inputs.count {
                updates[graph.nodes[n.inputs[input].node].name] = value
            }
        }
        return updates
    }
}

extension NDArray {
    /// `self + other` elementwise in their own dtype, for gradients that add up at one entry.
    ///
    /// Not `zipMap`, whose result is float32: the sum is the gradient the next kernel's backward
    /// reads by the entry's bound dtype, and a float64 entry holding float32 bytes would be read
    /// past its end.
    func addingGradient(_ other: NDArray) throws -> NDArray {
        guard shape == other.shape, dtype == other.dtype else {
            throw RuntimeError.invalidArgument("Cannot add a gradient of shape \(other.shape) and dtype \(other.dtype) to one of shape \(shape) and dtype \(dtype)")
        }
        var sum = self
        switch dtype {
        case .float32:
            sum.withUnsafeMutableBufferPointer(as: Float.self) { s in
                other.withUnsafeBufferPointer(as: Float.self) { o in for i in 0..<s.count { s[i] += o[i] } }
            }
        case .float64:
            sum.withUnsafeMutableBufferPointer(as: Double.self) { s in
                other.withUnsafeBufferPointer(as: Double.self) { o in for i in 0..<s.count { s[i] += o[i] } }
            }
        default:
            for i in 0..<elementCount { sum.setElement(i, element(i) + other.element(i)) }
        }
        return sum
    }
}
