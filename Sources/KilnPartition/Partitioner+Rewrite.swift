import KilnCore
import KilnGraph
import KilnRuntime

// Pass 4 of the partitioner: each kept group becomes one engine node, and the graph is re-sorted
// with every group contracted to one unit.
//
// ```
// data ─> conv0 ─> relu0 ─> softmax        data ──┐
// w0 ───┘          └─────> out1            w0 ────┴─> kiln_engine0 ─┬─(0)─> softmax
//                                                     [conv0, relu0] └─(0)─> out1
// ```
//
// The engine node's inputs are the entries its members read from outside the group (each once,
// weights included: they stay variables, so the original params file still binds); its outputs are
// the members' entries read outside the group or returned as heads. Inside, each input is a variable
// named after the outer entry (`data`, `w0`, `pool1_output`); op outputs get names no outer
// variable has, so constants given by name at bind can only match real variables.

struct Rewriter {
    let graph: Graph
    let groups: [[Int]]
    let groupOf: [Int?]
    let groupNames: [String]
    let constants: Set<String>
    let engine: String
    let engineOptions: String

    /// The partitioned graph and, for each group, its part of the report.
    mutating func rewrite(shapes: InferredShapes?) throws -> (Graph, [PartitionReport.Group]) {
        let order = try contractedOrder()
        let consumers = graph.consumers
        let heads = Set(graph.heads)
        let variableNames = Set(graph.nodes.filter(\.isVariable).map(\.name))
        var nodes: [Graph.Node] = []
        var nodeMap = [Int?](repeating: nil, count: graph.nodes.count)
        var entryMap: [Graph.Entry: Graph.Entry] = [:]
        func mapped(_ e: Graph.Entry) throws -> Graph.Entry {
            if let n = nodeMap[e.node] { return Graph.Entry(node: n, index: e.index) }
            guard let m = entryMap[e] else {
                throw PartitionError.verificationFailed("entry \(e.index) of node '\(graph.nodes[e.node].name)' is read before it is written")
            }
            return m
        }
        var report: [PartitionReport.Group] = []

        for unit in order {
            guard case let .group(g) = unit else {
                guard case let .node(i) = unit else { continue }
                var n = graph.nodes[i]
                n.inputs = try n.inputs.map(mapped)
                nodeMap[i] = nodes.count
                nodes.append(n)
                continue
            }
            let members = groups[g]
            let memberSet = Set(members)
            // The entries read from outside, each once, in the order members read them.
            var inputs: [Graph.Entry] = []
            var inputSlot: [Graph.Entry: Int] = [:]
            for m in members {
                for e in graph.nodes[m].inputs where !memberSet.contains(e.node) && inputSlot[e] == nil {
                    inputSlot[e] = inputs.count
                    inputs.append(e)
                }
            }
            // The entries read outside the group or returned as heads. A member nobody reads (possible
            // only in a hand-built graph) gives its first output, so that it stays reachable.
            var outputs: [Graph.Entry] = []
            for m in members {
                let outside = consumers[m].filter { !memberSet.contains($0) }
                for k in 0..<(try graph.outputCount(of: m)) {
                    let e = Graph.Entry(node: m, index: k)
                    let read = heads.contains(e) || outside.contains { graph.nodes[$0].inputs.contains(e) }
                    if read || (k == 0 && consumers[m].isEmpty && !heads.contains { $0.node == m }) { outputs.append(e) }
                }
            }
            // The inner graph: one variable per input, then the members in topological order.
            var used = variableNames
            var names: [String] = []
            for e in inputs {
                let v = graph.nodes[e.node]
                names.append(v.isVariable ? v.name : Partitioner.unique(try entryName(e), &used))
            }
            var inner = names.map { Graph.Node(op: "null", name: $0) }
            var innerIndex: [Int: Int] = [:]
            for m in members {
                var n = graph.nodes[m]
                n.inputs = try n.inputs.map { e in
                    if let k = innerIndex[e.node] { return Graph.Entry(node: k, index: e.index) }
                    guard let slot = inputSlot[e] else {
                        throw PartitionError.verificationFailed("member '\(n.name)' reads a member of its group that comes after it")
                    }
                    return Graph.Entry(node: slot, index: 0)
                }
                innerIndex[m] = inner.count
                inner.append(n)
            }
            let innerHeads = try outputs.map { e -> Graph.Entry in
                guard let k = innerIndex[e.node] else { throw PartitionError.verificationFailed("an output of group \(groupNames[g]) is not a member") }
                return Graph.Entry(node: k, index: e.index)
            }
            var attributes = try EngineSubgraph.attributes(subgraph: Graph(nodes: inner, heads: innerHeads).symbol,
                                                           backend: engine, options: engineOptions)
            attributes.node = groupNames[g]
            let sub = try EngineSubgraph(attributes)
            // The engine node reads its inputs in the subgraph's order (arguments, then auxiliary states).
            let entryByName = Dictionary(zip(names, inputs), uniquingKeysWith: { first, _ in first })
            let engineInputs = try sub.inputNames.map { name -> Graph.Entry in
                guard let e = entryByName[name] else { throw PartitionError.verificationFailed("engine input '\(name)' has no outer entry") }
                return try mapped(e)
            }
            let index = nodes.count
            nodes.append(Graph.Node(op: EngineSubgraph.opName, name: groupNames[g], attributes: Attributes(attributes.values), inputs: engineInputs))
            for (j, e) in outputs.enumerated() { entryMap[e] = Graph.Entry(node: index, index: j) }

            let baked = sub.inputNames.filter { name in
                guard constants.contains(name), let e = entryByName[name], graph.nodes[e.node].isVariable else { return false }
                return consumers[e.node].allSatisfy { memberSet.contains($0) } && !heads.contains(e)
            }
            report.append(PartitionReport.Group(
                name: groupNames[g],
                nodes: members.map { PartitionReport.Node(name: graph.nodes[$0].name, op: graph.nodes[$0].op) },
                inputs: sub.inputNames,
                outputs: try outputs.map(entryName),
                bakedWeights: baked,
                flops: shapes.map { FLOPEstimate.flops(of: members, in: graph, shapes: $0) }))
        }
        return (Graph(nodes: nodes, heads: try graph.heads.map(mapped)), report)
    }

    enum Unit: Equatable {
        case group(Int)
        case node(Int)
    }

    /// A topological order of the graph with each group contracted to one unit (Kahn's algorithm,
    /// ties broken by the first original index, so the order stays close to the original).
    func contractedOrder() throws -> [Unit] {
        let count = groups.count + graph.nodes.count
        func unit(_ i: Int) -> Int { groupOf[i] ?? groups.count + i }
        func first(_ u: Int) -> Int { u < groups.count ? groups[u][0] : u - groups.count }
        var present = [Bool](repeating: false, count: count)
        var indegree = [Int](repeating: 0, count: count)
        var successors = [[Int]](repeating: [], count: count)
        var edges = Set<Int>()
        for (i, n) in graph.nodes.enumerated() {
            let u = unit(i)
            present[u] = true
            for e in n.inputs {
                let s = unit(e.node)
                if s != u && edges.insert(s * count + u).inserted {
                    successors[s].append(u)
                    indegree[u] += 1
                }
            }
        }
        // Ready units sorted by first original index, largest first, so popLast takes the smallest.
        var ready = (0..<count).filter { present[$0] && indegree[$0] == 0 }.sorted { first($0) > first($1) }
        var order: [Unit] = []
        while let u = ready.popLast() {
            order.append(u < groups.count ? .group(u) : .node(u - groups.count))
            for s in successors[u] {
                indegree[s] -= 1
                if indegree[s] == 0 {
                    let at = ready.firstIndex { first($0) < first(s) } ?? ready.count
                    ready.insert(s, at: at)
                }
            }
        }
        guard order.count == present.filter({ $0 }).count else {
            let stuck = (0..<count).filter { present[$0] && indegree[$0] > 0 }.map { u in
                u < groups.count ? groupNames[u] : graph.nodes[u - groups.count].name
            }
            throw PartitionError.verificationFailed("the groups form a cycle through \(stuck.prefix(5).joined(separator: ", "))")
        }
        return order
    }

    /// The name of an outer entry: a variable's name, or `NODE_OUTPUT` as MXNet's `list_outputs` writes it.
    func entryName(_ e: Graph.Entry) throws -> String {
        let n = graph.nodes[e.node]
        if n.isVariable { return n.name }
        let (def, ctx) = try graph.context(of: e.node)
        let names = try def.outputNames(ctx.attributes)
        return "\(n.name)_\(e.index < names.count ? names[e.index] : "output\(e.index)")"
    }
}
