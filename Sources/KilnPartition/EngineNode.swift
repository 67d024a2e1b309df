import KilnCore
import KilnGraph
import KilnRuntime

// Running engine nodes: a kernel factory for `_kiln_engine` that compiles the node's group with the
// engine its `backend` attribute names, once, at bind.
//
// ```
// bind:    kiln_engine0 {backend: "cpu", subgraph: [conv0, relu0]}
//            └─ factory: engines["cpu"].compile(subgraph, shapes, types, constants: [w0: ...])
// forward: kernel feeds the non-constant inputs (data) to the compiled group, returns its outputs
// ```
//
// Everything comes in as arguments: the engines by name and the constants of this one bind (the
// weights and auxiliary states given at bind), so there is no global state and two binds with
// different engines or weights do not meet.

/// The kernel factory and backend that run engine nodes.
public enum EngineNode {
    /// A kernel factory for `_kiln_engine` nodes, for one bind.
    ///
    /// - Parameters:
    ///   - engines: engines by the name engine nodes carry in their `backend` attribute.
    ///   - constants: values known at bind, by variable name (weights and auxiliary states). Inputs
    ///     of an engine node found here are compiled in as constants; later changes to those
    ///     arguments do not reach the engine.
    public static func factory(engines: [String: any Backend], constants: [String: NDArray]) -> KernelFactory {
        { signature in
            let node = signature.node.name
            var attributes = signature.attributes
            attributes.node = node
            let sub = try EngineSubgraph(attributes)
            guard let engine = engines[sub.backend] else {
                throw PartitionError.unknownEngine(node: node, engine: sub.backend, known: Array(engines.keys))
            }
            var givenShapes: [String: Shape] = [:], givenTypes: [String: DType] = [:]
            for (k, name) in sub.inputNames.enumerated() where k < signature.inputShapes.count {
                givenShapes[name] = signature.inputShapes[k]
                givenTypes[name] = signature.inputTypes[k]
            }
            let shapes = try sub.graph.inferShapes(givenShapes)
            let types = try sub.graph.inferTypes(givenTypes)
            var baked: [String: NDArray] = [:]
            for name in sub.inputNames {
                guard let value = constants[name], let expected = shapes.byName[name] else { continue }
                guard value.shape == expected else {
                    throw PartitionError.constantShape(node: node, name: name, expected: expected, actual: value.shape)
                }
                baked[name] = value
            }
            // The engine must still accept every member with what this bind knows.
            let read = sub.graph.readOutputs
            for (i, n) in sub.graph.nodes.enumerated() where !n.isVariable {
                let q = SupportQuery(graph: sub.graph, node: i, shapes: shapes, types: types, constants: Set(baked.keys), outputsRead: read[i])
                if case let .unsupported(reason) = engine.support(q) {
                    throw PartitionError.unsupportedInEngine(node: node, engine: sub.backend, member: n.name, reason: reason.text)
                }
            }
            let compiled = try engine.compile(sub.graph, shapes: shapes, types: types, constants: baked)
            return EngineKernel(node: node, compiled: compiled, inputNames: sub.inputNames, constants: Set(baked.keys))
        }
    }

    /// An op-by-op backend that runs `base`'s kernels and engine nodes through ``factory(engines:constants:)``:
    /// what binds a partitioned symbol.
    ///
    /// ```
    /// let (partitioned, report) = try symbol.partitioned(for: engine, argParams: args, auxParams: aux)
    /// let backend = EngineNode.backend(engines: [report.engine: engine], constants: args.merging(aux) { a, _ in a })
    /// let exec = try partitioned.bind(shapes: ["data": shape], sharedBuffer: params, backend: backend)
    /// ```
    public static func backend(engines: [String: any Backend], constants: [String: NDArray],
                               base: OpByOpBackend = .framework) -> OpByOpBackend {
        let engineTable = KernelTable([[EngineSubgraph.opName: factory(engines: engines, constants: constants)]])
        return OpByOpBackend(name: base.name, kernels: base.kernels.overlaid(with: engineTable))
    }
}

/// Runs one engine node's compiled group.
final class EngineKernel: StartableKernel {
    let node: String
    let compiled: any CompiledGraph
    let inputNames: [String]
    /// Inputs compiled in as constants; they are not fed at run time.
    let constants: Set<String>

    init(node: String, compiled: any CompiledGraph, inputNames: [String], constants: Set<String>) {
        self.node = node
        self.compiled = compiled
        self.inputNames = inputNames
        self.constants = constants
    }

    func forward(_ inputs: [NDArray], _ outputs: inout [NDArray], isTrain: Bool) throws {
        var feed: [String: NDArray] = [:]
        for (name, value) in zip(inputNames, inputs) where !constants.contains(name) { feed[name] = value }
        let results = try compiled.run(feed, isTrain: isTrain)
        guard results.count == outputs.count else {
            throw PartitionError.outputCount(node: node, expected: outputs.count, actual: results.count)
        }
        outputs = results
    }

    func start(_ inputs: [NDArray]) throws -> (any PendingRun)? {
        guard let startable = compiled as? any StartableGraph else { return nil }
        var feed: [String: NDArray] = [:]
        for (name, value) in zip(inputNames, inputs) where !constants.contains(name) { feed[name] = value }
        return try startable.start(feed)
    }
}
