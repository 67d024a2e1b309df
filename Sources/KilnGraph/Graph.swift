import KilnCore

/// A symbol flattened into an array of nodes in topological order, as MXNet's indexed graph.
///
/// Entries refer to nodes by index. This is the form the executor, the partitioner and the JSON
/// reader and writer work on.
public struct Graph: Sendable {
    /// One output of a node, by index.
    public struct Entry: Hashable, Sendable, Comparable {
        public var node: Int
        public var index: Int
        public init(node: Int, index: Int) {
            self.node = node
            self.index = index
        }
        public static func < (a: Entry, b: Entry) -> Bool { (a.node, a.index) < (b.node, b.index) }
    }

    public struct Node: Sendable {
        /// MXNet op name; `"null"` for variables.
        public var op: String
        public var name: String
        /// Attributes as given (no defaults).
        public var attributes: Attributes
        public var inputs: [Entry]

        public init(op: String, name: String, attributes: Attributes = [:], inputs: [Entry] = []) {
            self.op = op
            self.name = name
            self.attributes = attributes
            self.inputs = inputs
        }

        public var isVariable: Bool { op == "null" }
    }

    public var nodes: [Node]
    /// The graph's outputs.
    public var heads: [Entry]

    public init(nodes: [Node], heads: [Entry]) {
        self.nodes = nodes
        self.heads = heads
    }

    /// Flattens a symbol: depth-first from the outputs, inputs in order, each node after its inputs.
    public init(_ symbol: Symbol) {
        var index: [ObjectIdentifier: Int] = [:]
        var nodes: [Node] = []
        // Iterative post-order so deep graphs (ResNet-110) cannot overflow the stack.
        for head in symbol.outputs {
            var stack: [(SymbolNode, Int)] = [(head.node, 0)]
            while let (node, next) = stack.last {
                if index[ObjectIdentifier(node)] != nil { stack.removeLast(); continue }
                if next < node.inputs.count {
                    stack[stack.count - 1].1 = next + 1
                    let child = node.inputs[next].node
                    if index[ObjectIdentifier(child)] == nil { stack.append((child, 0)) }
                } else {
                    stack.removeLast()
                    let inputs = node.inputs.map { Entry(node: index[ObjectIdentifier($0.node)]!, index: $0.index) }
                    index[ObjectIdentifier(node)] = nodes.count
                    nodes.append(Node(op: node.op, name: node.name, attributes: node.attributes, inputs: inputs))
                }
            }
        }
        self.nodes = nodes
        self.heads = symbol.outputs.map { Entry(node: index[ObjectIdentifier($0.node)]!, index: $0.index) }
    }

    /// The symbol for this graph.
    public var symbol: Symbol {
        var built: [SymbolNode] = []
        built.reserveCapacity(nodes.count)
        for n in nodes {
            built.append(SymbolNode(op: n.op, name: n.name, attributes: n.attributes,
                                    inputs: n.inputs.map { SymbolEntry(node: built[$0.node], index: $0.index) }))
        }
        return Symbol(outputs: heads.map { SymbolEntry(node: built[$0.node], index: $0.index) })
    }

    /// The registry definition of node `i`, or nil for a variable.
    public func definition(of i: Int) throws -> OpDefinition? {
        let n = nodes[i]
        if n.isVariable { return nil }
        return try OpRegistry.shared.definition(n.op, node: n.name)
    }

    /// Node `i`'s attributes with the op's defaults filled in and checked.
    public func resolvedAttributes(of i: Int) throws -> Attributes {
        guard let d = try definition(of: i) else { return nodes[i].attributes }
        return try d.resolve(nodes[i].attributes, node: nodes[i].name)
    }

    /// Number of outputs of node `i` (all, visible or not); 1 for a variable.
    public func outputCount(of i: Int) throws -> Int {
        guard let d = try definition(of: i) else { return 1 }
        return try d.outputNames(try resolvedAttributes(of: i)).count
    }

    /// Indices of variable nodes that feed an auxiliary-state input slot of some op.
    public var auxiliaryNodeIndices: Set<Int> {
        var aux = Set<Int>()
        for n in nodes where !n.isVariable {
            guard let d = OpRegistry.shared.lookup(n.op),
                  let a = try? d.resolve(n.attributes, node: n.name) else { continue }
            let k = d.auxiliaryCount(a)
            for e in n.inputs.suffix(k) where nodes[e.node].isVariable { aux.insert(e.node) }
        }
        return aux
    }

    /// Indices of variable nodes read only as the label of a loss head (see
    /// ``OpDefinition/labelInputs``): inputs that inference does not need.
    public var labelNodeIndices: Set<Int> {
        var label = Set<Int>(), other = Set<Int>()
        for n in nodes where !n.isVariable {
            let d = OpRegistry.shared.lookup(n.op)
            let slots = d.flatMap { d in (try? d.resolve(n.attributes, node: n.name)).map { Set(d.labelInputs($0)) } } ?? []
            for (k, e) in n.inputs.enumerated() where nodes[e.node].isVariable {
                if slots.contains(k) { label.insert(e.node) } else { other.insert(e.node) }
            }
        }
        for h in heads { other.insert(h.node) }
        return label.subtracting(other)
    }

    /// Names of the arguments that are only labels of loss heads (`softmax_label`), in MXNet's order.
    public var labelArgumentNames: [String] {
        let labels = labelNodeIndices
        return nodes.indices.filter { labels.contains($0) }.map { nodes[$0].name }
    }

    /// Argument names in MXNet's order.
    public var argumentNames: [String] {
        let aux = auxiliaryNodeIndices
        return nodes.indices.filter { nodes[$0].isVariable && !aux.contains($0) }.map { nodes[$0].name }
    }

    /// Auxiliary-state names in MXNet's order.
    public var auxiliaryNames: [String] {
        let aux = auxiliaryNodeIndices
        return nodes.indices.filter { aux.contains($0) }.map { nodes[$0].name }
    }

    /// Output names as MXNet's `list_outputs`.
    public var outputNames: [String] {
        heads.map { e in
            let n = nodes[e.node]
            if n.isVariable { return n.name }
            let names = (try? definition(of: e.node)).flatMap { d in (try? resolvedAttributes(of: e.node)).flatMap { try? d.outputNames($0) } } ?? ["output"]
            let suffix = e.index < names.count ? names[e.index] : "output\(e.index)"
            return "\(n.name)_\(suffix)"
        }
    }

    /// For each node, the indices of its outputs that other nodes or the heads read, found in one pass.
    public var readOutputs: [Set<Int>] {
        var read = [Set<Int>](repeating: [], count: nodes.count)
        for n in nodes { for e in n.inputs { read[e.node].insert(e.index) } }
        for h in heads { read[h.node].insert(h.index) }
        return read
    }

    /// For each node, the indices of nodes that read one of its outputs.
    public var consumers: [[Int]] {
        var c = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() { for e in n.inputs where !c[e.node].contains(i) { c[e.node].append(i) } }
        return c
    }

    /// Checks that every input refers to an earlier node (the order is topological) and to an output
    /// that node has; names the first offending node.
    public func validate(source: String = "graph") throws {
        for (i, n) in nodes.enumerated() {
            for (k, e) in n.inputs.enumerated() {
                guard e.node >= 0 && e.node < i else {
                    throw GraphError.malformedJSON(source: source, field: "nodes[\(i)].inputs[\(k)]",
                                                   reason: "node '\(n.name)' reads node \(e.node), which does not come before it")
                }
                let count = try outputCount(of: e.node)
                guard e.index >= 0 && e.index < count else {
                    throw GraphError.invalidOutput(node: nodes[e.node].name, index: e.index, count: count)
                }
            }
        }
        for (k, h) in heads.enumerated() {
            guard h.node >= 0 && h.node < nodes.count else {
                throw GraphError.malformedJSON(source: source, field: "heads[\(k)]", reason: "node \(h.node) does not exist")
            }
            let count = try outputCount(of: h.node)
            guard h.index >= 0 && h.index < count else {
                throw GraphError.invalidOutput(node: nodes[h.node].name, index: h.index, count: count)
            }
        }
    }
}
