import KilnCore
import KilnGraph

/// A graph bound for fixed shapes and run one op at a time: a kernel per op node, created once, and
/// every output array allocated once.
///
/// ```
/// data ─> conv0 ─> relu0 ─> fc0 ─> out      values[node][output] hold the arrays;
/// w0 ───┘          w1 ─────┘                 kernels[node] run in this order
/// ```
public final class OpByOpPlan: CompiledGraph {
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
                guard let v = inputs[n.name] ?? constants[n.name] else {
                    throw RuntimeError.missingArgument(name: n.name, known: graph.nodes.filter(\.isVariable).map(\.name))
                }
                let expected = shapes.nodeOutputs[i][0]
                guard v.shape == expected else { throw RuntimeError.argumentShape(name: n.name, expected: expected, actual: v.shape) }
                let t = types.nodeOutputs[i][0]
                guard v.dtype == t else { throw RuntimeError.argumentType(name: n.name, expected: t, actual: v.dtype) }
                values[i][0] = v
                continue
            }
            let ins = n.inputs.map { values[$0.node][$0.index] }
            try kernel.forward(ins, &values[i], isTrain: isTrain)
        }
        return graph.heads.map { values[$0.node][$0.index] }
    }
}
