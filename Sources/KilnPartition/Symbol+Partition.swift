import KilnCore
import KilnGraph
import KilnRuntime

extension Symbol {
    /// This symbol with the groups `backend` supports replaced by engine nodes, and the report that
    /// explains the choice (MXNet's `optimize_for`; the umbrella module offers it as `optimized(for:)`).
    ///
    /// The arrays in `argParams` and `auxParams` are the values known at bind: weights read by a
    /// group are baked into its engine node. They stay inputs of the engine node, so the same params
    /// still bind the partitioned symbol.
    ///
    /// - Parameters:
    ///   - options: per-call options; their `constants` are added to the names of the params.
    ///   - shapes: input shapes (`["data": [1, 3, 32, 32]]`). With them, shape errors are thrown and
    ///     the report estimates FLOPs; without them, shapes are inferred from the params and the
    ///     variables' `__shape__` annotations when possible, and the report omits FLOPs otherwise.
    /// - Returns: the partitioned symbol and its report.
    public func partitioned(for backend: any Backend, options: PartitionOptions = PartitionOptions(),
                            argParams: [String: NDArray] = [:], auxParams: [String: NDArray] = [:],
                            shapes: [String: Shape] = [:]) throws -> (Symbol, PartitionReport) {
        let g = graph
        let variables = Set(g.nodes.filter(\.isVariable).map(\.name))
        var known = shapes
        var givenTypes: [String: DType] = [:]
        for (name, value) in argParams.merging(auxParams, uniquingKeysWith: { a, _ in a }) where variables.contains(name) {
            if known[name] == nil { known[name] = value.shape }
            givenTypes[name] = value.dtype
        }
        let inferred = shapes.isEmpty ? try? g.inferShapes(known) : try g.inferShapes(known)
        let types = shapes.isEmpty ? try? g.inferTypes(givenTypes) : try g.inferTypes(givenTypes)
        var o = options
        o.constants.formUnion(Set(argParams.keys).union(auxParams.keys).intersection(variables))
        let result = try Partitioner(backend: backend, options: o).partition(g, shapes: inferred, types: types)
        return (result.symbol, result.report)
    }
}
