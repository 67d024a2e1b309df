import KilnCore
import KilnGraph
import KilnRuntime

// Constant folding: an op all of whose inputs are known at compile is computed once, by the
// framework's own kernel for that op, and replaced by its result. Views of constants (Reshape,
// Flatten) fold without running anything.
//
// ```
// before:  w (constant) ──> _copy ──> Reshape ──┐         after:  w' (constant) ──┐
//          x ──────────────────────────────────> add              x ────────────> add
// ```
//
// Weights that arrive through such chains become plain constants that later passes (BatchNorm
// folding) and lowering (weights reordered once) can use.

/// Replaces ops whose inputs are all constants by their computed value.
public struct ConstantFolding: EnginePass {
    public init() {}
    public var name: String { "constant folding" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var folded = 0
        var i = 0
        while i < ir.ops.count {
            let op = ir.ops[i]
            let inputs = op.reads.compactMap { ir.values[$0].constant }
            guard op.postOps.isEmpty, !op.inputs.isEmpty, inputs.count == op.reads.count,
                  let result = Self.evaluate(op, inputs, shape: ir.values[op.output].shape) else { i += 1; continue }
            let c = ir.addConstant(result, name: op.name)
            ir.ops.remove(at: i)
            ir.replaceUses(of: op.output, with: c)   // f(constants) -> constant
            folded += 1
        }
        return folded
    }

    /// The op's output for constant inputs: a view for reshapes, else the framework kernel's result;
    /// nil when the op cannot be evaluated alone (it then stays in the graph).
    static func evaluate(_ op: EngineIR.Op, _ inputs: [NDArray], shape: Shape) -> NDArray? {
        switch op.lowering {
        case .reshape, .identity:
            return try? inputs[0].reshaped(shape)
        default:
            var nodes = inputs.indices.map { Graph.Node(op: "null", name: "constant\($0)") }
            nodes.append(Graph.Node(op: op.op, name: op.name, attributes: op.attributes,
                                    inputs: inputs.indices.map { Graph.Entry(node: $0, index: 0) }))
            let graph = Graph(nodes: nodes, heads: [Graph.Entry(node: inputs.count, index: 0)])
            var given: [String: NDArray] = [:]
            for (k, a) in inputs.enumerated() { given["constant\(k)"] = a }
            guard let shapes = try? graph.inferShapes(given.mapValues(\.shape)),
                  let types = try? graph.inferTypes(given.mapValues(\.dtype)),
                  let plan = try? OpByOpBackend.framework.compile(graph, shapes: shapes, types: types, constants: given),
                  let out = try? plan.run([:], isTrain: false).first, out.shape == shape else { return nil }
            return out
        }
    }
}
