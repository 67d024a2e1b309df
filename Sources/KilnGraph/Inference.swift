import KilnCore

/// Shape and type inference over a ``Graph``: one pass in topological order.
///
/// Each op's rule sees its input shapes (unknown ones nil), fills in those it can derive (a weight's
/// shape follows from the data's), checks the rest and returns its outputs' shapes:
///
/// ```
/// data (16,1,28,28) ─┐
/// conv_weight  ?    ─┼─ Convolution(num_filter 20, kernel 5x5) ─> (16,20,24,24)
/// conv_bias    ?    ─┘   fills conv_weight (20,1,5,5), conv_bias (20,)
/// ```
public struct InferredShapes: Sendable {
    /// Shapes of every output of every node, indexed by node.
    public var nodeOutputs: [[Shape]]
    /// Argument shapes in ``Graph/argumentNames`` order.
    public var arguments: [Shape]
    /// Output shapes, one per head.
    public var outputs: [Shape]
    /// Auxiliary-state shapes in ``Graph/auxiliaryNames`` order.
    public var auxiliaryStates: [Shape]
    /// Every variable's shape by name.
    public var byName: [String: Shape]
}

/// Result of type inference; layout as ``InferredShapes``.
public struct InferredTypes: Sendable {
    public var nodeOutputs: [[DType]]
    public var arguments: [DType]
    public var outputs: [DType]
    public var auxiliaryStates: [DType]
    public var byName: [String: DType]
}

extension Graph {
    /// The shape given by a variable's `__shape__` annotation, when complete (MXNet writes 0 for unknown)
    /// and its elements countable (see ``inferShapes(_:)``).
    func annotatedShape(_ n: Node) -> Shape? {
        guard let text = n.attributes["__shape__"], let dims = AttributeText.intTuple(text),
              !dims.contains(where: { $0 <= 0 }), Shape(dims).checkedElementCount != nil else { return nil }
        return Shape(dims)
    }

    /// The context rules see for node `i`.
    public func context(of i: Int) throws -> (OpDefinition, NodeContext) {
        guard let d = try definition(of: i) else {
            throw GraphError.invalidArgument("Node '\(nodes[i].name)' is a variable and has no op")
        }
        let a = try resolvedAttributes(of: i)
        let n = nodes[i]
        var names = try d.inputNames(a)
        if names.count < n.inputs.count { names += (names.count..<n.inputs.count).map { "arg\($0)" } }
        let outs = try d.outputNames(a).count
        return (d, NodeContext(name: n.name, op: d.name, attributes: a, inputNames: names, outputCount: outs))
    }

    /// Infers every shape from the given ones (by variable name). Variables not given may still be
    /// derived (weights) or come from their `__shape__` annotation; a shape that stays unknown is an error.
    public func inferShapes(_ given: [String: Shape]) throws -> InferredShapes {
        let variableNames = Set(nodes.filter(\.isVariable).map(\.name))
        for name in given.keys where !variableNames.contains(name) {
            throw GraphError.invalidArgument("A shape was given for '\(name)', but the graph has no such argument; its arguments are \(argumentNames.joined(separator: ", "))")
        }
        // Every shape is checked to be addressable: its element count, at 8 bytes an element, fits in
        // Int (zero-length axes counted as 1, so strides fit too). Later code then multiplies
        // dimensions freely; a shape given or inferred past that is an error here, not a trap there.
        enum Fault {
            case negative, tooLarge
            var given: String { self == .negative ? "has a negative dimension" : "holds more elements than a 64-bit count can address" }
            var derived: String { self == .negative ? "with a negative dimension" : "more elements than a 64-bit count can address" }
        }
        func unaddressable(_ s: Shape) -> Fault? {
            guard s.byteCount(of: .float64) == nil else { return nil }
            return s.dims.contains { $0 < 0 } ? .negative : .tooLarge
        }
        for (name, s) in given.sorted(by: { $0.key < $1.key }) {
            if let fault = unaddressable(s) { throw GraphError.invalidArgument("The shape \(s) given for '\(name)' \(fault.given)") }
        }
        var shapes = [[Shape?]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() where n.isVariable {
            shapes[i] = [given[n.name] ?? annotatedShape(n)]
        }
        // Ops in order; a variable's shape is filled in by the first op that can derive it.
        for (i, n) in nodes.enumerated() where !n.isVariable {
            let (def, ctx) = try context(of: i)
            var ins: [Shape?] = n.inputs.map { shapes[$0.node][$0.index] }
            let given = ins
            let outs: [Shape]
            do {
                outs = try def.inferShape(&ins, ctx)
            } catch let GraphError.shapeMismatch(node, op, input, expected, actual) {
                throw Self.blamingData(node: node, op: op, input: input, expected: expected, actual: actual,
                                       def: def, ctx: ctx, known: given)
            }
            guard outs.count == ctx.outputCount else {
                throw GraphError.invalidShape(node: n.name, op: def.name, reason: "its shape rule gave \(outs.count) outputs instead of \(ctx.outputCount)")
            }
            for (k, s) in outs.enumerated() {
                if let why = unaddressable(s) {
                    throw GraphError.invalidShape(node: n.name, op: def.name, reason: "its output \(k) would have shape \(s), \(why.derived)")
                }
            }
            for (k, e) in n.inputs.enumerated() {
                guard let s = ins[k] else { throw GraphError.unknownShape(node: n.name, input: ctx.inputName(k)) }
                if let why = unaddressable(s) {
                    throw GraphError.invalidShape(node: n.name, op: def.name, reason: "its input '\(ctx.inputName(k))' would have shape \(s), \(why.derived)")
                }
                if let old = shapes[e.node][e.index] {
                    guard old == s else {
                        throw GraphError.shapeMismatch(node: n.name, op: def.name, input: ctx.inputName(k), expected: s.description, actual: old)
                    }
                } else {
                    shapes[e.node][e.index] = s
                }
            }
            shapes[i] = outs
        }
        var byName: [String: Shape] = [:]
        var done = [[Shape]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            var row: [Shape] = []
            for s in shapes[i] {
                guard let s else { throw GraphError.unknownShape(node: n.name, input: n.name) }
                row.append(s)
            }
            done[i] = row
            if n.isVariable { byName[n.name] = row[0] }
        }
        return InferredShapes(
            nodeOutputs: done,
            arguments: argumentNames.map { byName[$0]! },
            outputs: heads.map { done[$0.node][$0.index] },
            auxiliaryStates: auxiliaryNames.map { byName[$0]! },
            byName: byName)
    }

    /// A shape rule derives a weight's shape from the data and finds the weight (from the parameters)
    /// different. Most often the data is what does not fit (a 3-channel image fed to a 1-channel
    /// net), so the error names the data input and its shape first, with the weight's, instead of
    /// blaming the weight alone.
    static func blamingData(node: String, op: String, input: String, expected: String, actual: Shape,
                            def: OpDefinition, ctx: NodeContext, known: [Shape?]) -> GraphError {
        let weights = Set(def.weightInputs(ctx.attributes))
        guard let k = ctx.inputNames.firstIndex(of: input), weights.contains(k),
              let d = known.indices.first(where: { !weights.contains($0) && known[$0] != nil }), let data = known[d] else {
            return .shapeMismatch(node: node, op: op, input: input, expected: expected, actual: actual)
        }
        return .inputDoesNotFitWeight(node: node, op: op, input: ctx.inputName(d), shape: data, weight: input, weightShape: actual, expected: expected)
    }

    /// Infers every dtype; variables not given take their `__dtype__` annotation, else the type their
    /// consumer derives, else float32.
    public func inferTypes(_ given: [String: DType] = [:]) throws -> InferredTypes {
        var types = [[DType?]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() where n.isVariable {
            var t = given[n.name]
            if t == nil, let flag = n.attributes["__dtype__"].flatMap({ Int32($0) }) { t = DType(rawValue: flag) }
            types[i] = [t]
        }
        for (i, n) in nodes.enumerated() where !n.isVariable {
            let (def, ctx) = try context(of: i)
            var ins: [DType?] = n.inputs.map { types[$0.node][$0.index] }
            // An input of unknown type on the data path defaults to float32, as simple_bind does.
            if !ins.isEmpty && ins.allSatisfy({ $0 == nil }) { ins[0] = .float32 }
            var outs: [DType]
            do {
                do {
                    outs = try def.inferType(&ins, ctx)
                } catch GraphError.unknownShape where !ins.isEmpty && ins[0] == nil {
                    // The data input is still unknown though other inputs are known (a BatchNorm first in a
                    // graph whose weights were given): float32, simple_bind's default for untyped arguments.
                    ins[0] = .float32
                    outs = try def.inferType(&ins, ctx)
                }
            } catch let GraphError.typeMismatch(node, op, input, expected, actual) {
                // The rule took the data's dtype first and found the weight's different: the data (int64
                // pixels for a float32 net) is what does not fit.
                let weights = Set(def.weightInputs(ctx.attributes))
                if let k = ctx.inputNames.firstIndex(of: input), weights.contains(k),
                   let d = ins.indices.first(where: { !weights.contains($0) && ins[$0] == expected }) {
                    throw GraphError.typeMismatch(node: node, op: op, input: ctx.inputName(d), expected: actual, actual: expected)
                }
                throw GraphError.typeMismatch(node: node, op: op, input: input, expected: expected, actual: actual)
            }
            for (k, e) in n.inputs.enumerated() where types[e.node][e.index] == nil { types[e.node][e.index] = ins[k] ?? .float32 }
            types[i] = outs.count == ctx.outputCount ? outs : outs + [DType](repeating: outs.last ?? .float32, count: max(0, ctx.outputCount - outs.count))
        }
        var byName: [String: DType] = [:]
        let done = types.map { $0.map { $0 ?? .float32 } }
        for (i, n) in nodes.enumerated() where n.isVariable { byName[n.name] = done[i][0] }
        return InferredTypes(
            nodeOutputs: done,
            arguments: argumentNames.map { byName[$0]! },
            outputs: heads.map { done[$0.node][$0.index] },
            auxiliaryStates: auxiliaryNames.map { byName[$0]! },
            byName: byName)
    }
}

extension Symbol {
    /// Infers argument, output and auxiliary shapes from the shapes of some arguments (MXNet's `infer_shape`).
    public func inferShape(_ shapes: [String: Shape]) throws -> InferredShapes { try namingSource { try graph.inferShapes(shapes) } }
    /// Infers dtypes (MXNet's `infer_type`).
    public func inferType(_ types: [String: DType] = [:]) throws -> InferredTypes { try namingSource { try graph.inferTypes(types) } }
}
