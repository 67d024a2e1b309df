import KilnCore
import KilnGraph
import KilnRuntime

/// The engine's graph of one group: tensors (values) and ops in topological order. Passes rewrite
/// it; each engine's lowering turns each op into its kernels (oneDNN primitives, cuDNN calls).
///
/// ```
/// %0 = input data (16, 3, 32, 32)
/// %1 = constant conv0_weight (16, 3, 3, 3)
/// %2 = convolution conv0+relu0 (%0, %1) post-ops [eltwise(relu)] -> (16, 16, 32, 32)
/// outputs: %2
/// ```
///
/// Every value is a group input, a constant known at compile, or the output of exactly one op.
public struct EngineIR: Sendable, CustomStringConvertible {
    /// Where a value comes from.
    public enum Origin: Sendable {
        /// Fed at run time, by variable name.
        case input(String)
        /// Known at compile (weights, folded results).
        case constant(NDArray)
        /// Written by an op.
        case computed
    }

    /// A tensor of the group: its shape, a name for reports, and where it comes from.
    public struct Value: Sendable {
        /// The tensor's logical shape (its layout is chosen at lowering).
        public var shape: Shape
        /// For reports: the variable's or the producing node's name.
        public var name: String
        /// Input, constant or computed.
        public var origin: Origin

        public init(shape: Shape, name: String, origin: Origin) {
            (self.shape, self.name, self.origin) = (shape, name, origin)
        }

        /// Whether the value is known at compile.
        public var isConstant: Bool { if case .constant = origin { return true } else { return false } }
        /// The constant's array, if the value is one.
        public var constant: NDArray? { if case let .constant(a) = origin { return a } else { return nil } }
        /// The input's variable name, if the value is fed at run time.
        public var inputName: String? { if case let .input(n) = origin { return n } else { return nil } }
    }

    /// Work an op does after its main computation, in order, before its result is stored (oneDNN's
    /// post-ops; the cuda engine's epilogues). Which ops take which post-ops is the engine's
    /// ``FusionPolicy``.
    public enum PostOp: Codable, Equatable, Sendable {
        /// Adds a value of the output's shape (a residual connection).
        case sum(Int)
        /// Applies an elementwise function.
        case eltwise(EltwiseSpec)
    }

    /// One op of the group: a node (or several fused ones) and how it is lowered.
    public struct Op: Sendable {
        /// The node's name; fused ops keep the first node's name and list the rest in ``fused``.
        public var name: String
        /// The canonical MXNet op of the node.
        public var op: String
        /// The node's attributes, defaults filled in.
        public var attributes: Attributes
        /// The op's fusion kind from its definition (passes read it).
        public var fusion: FusionKind
        /// Indices into ``inputs`` of weights (from the op definition).
        public var weightInputs: [Int]
        /// What the capability table said the node lowers to.
        public var lowering: LoweringKind
        /// Value ids read, in the op's input order.
        public var inputs: [Int]
        /// The value id written.
        public var output: Int
        /// Work fused into this op's primitive, in order.
        public var postOps: [PostOp] = []
        /// Names of nodes merged into this op by passes.
        public var fused: [String] = []

        public init(name: String, op: String, attributes: Attributes, fusion: FusionKind, weightInputs: [Int], lowering: LoweringKind,
                    inputs: [Int], output: Int, postOps: [PostOp] = [], fused: [String] = []) {
            (self.name, self.op, self.attributes, self.fusion, self.weightInputs) = (name, op, attributes, fusion, weightInputs)
            (self.lowering, self.inputs, self.output, self.postOps, self.fused) = (lowering, inputs, output, postOps, fused)
        }

        /// Every value the op reads: its inputs and its `sum` post-op's operand.
        public var reads: [Int] {
            inputs + postOps.compactMap { if case let .sum(v) = $0 { return v } else { return nil } }
        }
    }

    /// Every value, by id.
    public var values: [Value]
    /// The ops in topological order.
    public var ops: [Op]
    /// The group's outputs, as value ids.
    public var outputs: [Int]

    public init(values: [Value], ops: [Op], outputs: [Int]) {
        self.values = values
        self.ops = ops
        self.outputs = outputs
    }

    /// The IR of a graph every op node of which an engine's `capabilities` support; throws
    /// ``EngineCoreError/unsupportedNode(engine:node:op:reason:)`` for one they do not.
    ///
    /// Variables in `constants` become constant values, the others inputs. Inputs a lowering never
    /// reads (SoftmaxOutput's label) are left out of their op.
    public init(graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray],
                capabilities: EngineCapabilities) throws {
        let engine = capabilities.engine
        values = []
        ops = []
        var valueOf: [Int] = Array(repeating: -1, count: graph.nodes.count)
        let known = Set(constants.keys), read = graph.readOutputs
        for (i, n) in graph.nodes.enumerated() {
            let shape = shapes.nodeOutputs[i][0]
            if n.isVariable {
                if let c = constants[n.name] {
                    guard c.shape == shape else {
                        throw EngineCoreError.constantShape(name: n.name, expected: shape, actual: c.shape)
                    }
                    guard c.dtype == types.nodeOutputs[i][0] else {
                        throw EngineCoreError.constantType(name: n.name, expected: types.nodeOutputs[i][0], actual: c.dtype)
                    }
                    values.append(Value(shape: shape, name: n.name, origin: .constant(c)))
                } else {
                    values.append(Value(shape: shape, name: n.name, origin: .input(n.name)))
                }
                valueOf[i] = values.count - 1
                continue
            }
            let query = SupportQuery(graph: graph, node: i, shapes: shapes, types: types, constants: known, outputsRead: read[i])
            let lowering: LoweringKind
            switch capabilities.verdict(query) {
            case let .refuse(reason): throw EngineCoreError.unsupportedNode(engine: engine, node: n.name, op: n.op, reason: reason.text)
            case let .lower(kind): lowering = kind
            }
            let definition = try OpRegistry.shared.definition(n.op, node: n.name)
            let attributes = try definition.resolve(n.attributes, node: n.name)
            let ignored = capabilities.table.lowering(for: definition.name)?.ignoredInputs ?? []
            var inputs: [Int] = []
            for (k, e) in n.inputs.enumerated() where !ignored.contains(k) {
                guard e.index == 0 else {
                    throw EngineCoreError.unsupportedNode(engine: engine, node: n.name, op: n.op, reason: "it reads output \(e.index) of '\(graph.nodes[e.node].name)'")
                }
                inputs.append(valueOf[e.node])
            }
            // A binary op's operand that broadcasts comes second (its operations commute), as its
            // kernels take it.
            if case .binary = lowering, inputs.count == 2, values[inputs[0]].shape != shape { inputs.swapAt(0, 1) }
            values.append(Value(shape: shape, name: n.name, origin: .computed))
            valueOf[i] = values.count - 1
            ops.append(Op(name: n.name, op: definition.name, attributes: attributes, fusion: definition.fusion,
                          weightInputs: definition.weightInputs(attributes), lowering: lowering, inputs: inputs,
                          output: values.count - 1))
        }
        outputs = []
        for h in graph.heads {
            guard h.index == 0 else {
                throw EngineCoreError.unsupportedNode(engine: engine, node: graph.nodes[h.node].name, op: graph.nodes[h.node].op,
                                                  reason: "output \(h.index) is a group output (the engine computes only the first output)")
            }
            outputs.append(valueOf[h.node])
        }
    }

    // MARK: Queries passes use

    /// The index of the op writing `value`, if an op does.
    public func producer(of value: Int) -> Int? { ops.firstIndex { $0.output == value } }

    /// The index of the op writing `value`, searched backwards from op `reader` (which reads it, so
    /// its producer comes before it and is usually close): a pass asking for each op's producer then
    /// costs near linear time on long chains instead of quadratic.
    public func producer(of value: Int, before reader: Int) -> Int? {
        var k = Swift.min(reader, ops.count) - 1
        while k >= 0 {
            if ops[k].output == value { return k }
            k -= 1
        }
        return nil
    }

    /// How many times `value` is read: by ops (inputs and `sum` post-ops) and as a group output.
    public func useCount(of value: Int) -> Int {
        ops.reduce(0) { $0 + $1.reads.filter { $0 == value }.count } + outputs.filter { $0 == value }.count
    }

    /// Whether `value` is one of the group's outputs.
    public func isOutput(_ value: Int) -> Bool { outputs.contains(value) }

    /// Makes every reader of `old` (ops, post-ops, outputs) read `new` instead.
    public mutating func replaceUses(of old: Int, with new: Int) {
        for i in ops.indices {
            ops[i].inputs = ops[i].inputs.map { $0 == old ? new : $0 }
            ops[i].postOps = ops[i].postOps.map { if case .sum(old) = $0 { return .sum(new) } else { return $0 } }
        }
        outputs = outputs.map { $0 == old ? new : $0 }
    }

    /// Adds a constant value and returns its id.
    public mutating func addConstant(_ array: NDArray, name: String) -> Int {
        values.append(Value(shape: array.shape, name: name, origin: .constant(array)))
        return values.count - 1
    }

    /// The same IR with only the values still used (read, written or output), renumbered in order:
    /// constants left behind by folding are dropped.
    public func compacted() -> EngineIR {
        var used = Set(outputs)
        for op in ops { used.formUnion(op.reads); used.insert(op.output) }
        var map: [Int: Int] = [:]
        var kept: [Value] = []
        for v in values.indices where used.contains(v) {
            map[v] = kept.count
            kept.append(values[v])
        }
        let renumbered = ops.map { op -> Op in
            var o = op
            o.inputs = op.inputs.map { map[$0] ?? $0 }
            o.output = map[op.output] ?? op.output
            o.postOps = op.postOps.map { if case let .sum(v) = $0 { return .sum(map[v] ?? v) } else { return $0 } }
            return o
        }
        return EngineIR(values: kept, ops: renumbered, outputs: outputs.map { map[$0] ?? $0 })
    }

    /// Group inputs some op or output reads, by name, in first-use order.
    public var usedInputs: [String] {
        var seen: [String] = []
        for v in ops.flatMap(\.reads) + outputs {
            if let n = values[v].inputName, !seen.contains(n) { seen.append(n) }
        }
        return seen
    }

    /// Bytes of the constants ops read.
    public var constantBytes: Int {
        Set(ops.flatMap(\.reads)).reduce(0) { $0 + (values[$1].constant?.byteCount ?? 0) }
    }

    public var description: String {
        var lines: [String] = []
        var shown = Set<Int>()
        func show(_ v: Int) {
            guard !shown.contains(v) else { return }
            shown.insert(v)
            switch values[v].origin {
            case let .input(name): lines.append("%\(v) = input \(name) \(values[v].shape)")
            case .constant: lines.append("%\(v) = constant \(values[v].name) \(values[v].shape)")
            case .computed: break
            }
        }
        for op in ops {
            op.reads.forEach(show)
            let names = ([op.name] + op.fused).joined(separator: "+")
            let posts = op.postOps.isEmpty ? "" : " post-ops [" + op.postOps.map { p -> String in
                switch p {
                case let .sum(v): return "sum(%\(v))"
                case let .eltwise(e): return "eltwise(\(e.algorithm.rawValue))"
                }
            }.joined(separator: ", ") + "]"
            let args = op.inputs.map { "%\($0)" }.joined(separator: ", ")
            lines.append("%\(op.output) = \(op.lowering.summary) \(names) (\(args))\(posts) -> \(values[op.output].shape)")
            shown.insert(op.output)
        }
        outputs.forEach(show)
        lines.append("outputs: " + outputs.map { "%\($0)" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
