import KilnCore
import KilnGraph
import KilnRuntime

// The partitioner: replaces each maximal connected group of nodes an engine supports by one engine
// node (`_kiln_engine`), and explains every choice in a `PartitionReport`.
//
// ```
// before                                        after
// data ─> conv0 ─> relu0 ─> softmax ─> out      data ─> kiln_engine0 ─> softmax ─> out
// w0 ───┘                                       w0 ───┘ (conv0, relu0; w0 baked)
// ```
//
// A group must be convex: no path may leave it and come back in, or its engine node and the
// framework would wait on each other. The trap, with `u` unsupported:
//
// ```
// a ─> u ─> c        grouping {a, c} would give  E ─> u ─> E  (a cycle), so c stays apart:
//  └─────────^       the groups are {a} and {c}, and with the default minimum of 2 ops both
//                    stay with the framework ("kept out to avoid a cycle").
// ```
//
// Groups grow by merging the groups at both ends of an edge, refused when another path joins them
// (it would become a cycle). The merged groups form a DAG at every step, so the rewrite sorts.

/// Options of one partitioning. Given per call and never kept in shared state.
public struct PartitionOptions: Sendable, Equatable {
    /// Groups with fewer op nodes stay with the framework (default 2).
    public var minGroupSize: Int
    /// MXNet op names (or aliases) the engine must not take, whatever it supports.
    public var excludedOps: Set<String>
    /// Names of variables whose values are known at bind (weights and auxiliary states).
    public var constants: Set<String>
    /// The name written in each engine node's `backend` attribute, under which the engine-node
    /// factory finds the engine; the backend's own name when nil.
    public var engineName: String?
    /// The engine's options as a compact string, written in each engine node's `options` attribute.
    public var engineOptions: String

    /// Options with the defaults: groups of 2 op nodes or more, nothing excluded, no constants.
    public init(minGroupSize: Int = 2, excludedOps: Set<String> = [], constants: Set<String> = [],
                engineName: String? = nil, engineOptions: String = "") {
        self.minGroupSize = minGroupSize
        self.excludedOps = excludedOps
        self.constants = constants
        self.engineName = engineName
        self.engineOptions = engineOptions
    }
}

/// A partitioned graph and the report that explains it.
public struct Partition: Sendable {
    /// The graph with each group replaced by one engine node, in topological order.
    public let graph: Graph
    /// The explanation of every choice.
    public let report: PartitionReport
    /// The partitioned graph as a symbol.
    public var symbol: Symbol { graph.symbol }
}

/// Splits a graph between an engine and the framework.
///
/// ```
/// let p = Partitioner(backend: engine, options: PartitionOptions(constants: Set(params.keys)))
/// let result = try p.partition(symbol.graph, shapes: try symbol.inferShape(["data": [1, 3, 32, 32]]))
/// print(result.report.text())
/// ```
public struct Partitioner: Sendable {
    /// The backend's name, for the report.
    public let backendName: String
    /// The engine's answer for one node.
    public let support: @Sendable (SupportQuery) -> Support
    /// The options of every call of ``partition(_:shapes:types:)``.
    public let options: PartitionOptions

    /// A partitioner asking `backend` which nodes it supports.
    public init(backend: any Backend, options: PartitionOptions = PartitionOptions()) {
        self.backendName = backend.name
        self.support = { backend.support($0) }
        self.options = options
    }

    /// A partitioner asking any support function (a backend's capability table, or a test's fake).
    public init(backendName: String, options: PartitionOptions = PartitionOptions(),
                support: @escaping @Sendable (SupportQuery) -> Support) {
        self.backendName = backendName
        self.support = support
        self.options = options
    }

    /// Partitions `graph`. Shapes and types, when given, reach the engine's support rules and give
    /// the report its FLOP estimates; when given, they must be those of `graph`.
    public func partition(_ graph: Graph, shapes: InferredShapes? = nil, types: InferredTypes? = nil) throws -> Partition {
        guard options.minGroupSize >= 1 else {
            throw PartitionError.invalidOption(name: "minGroupSize", value: String(options.minGroupSize), reason: "a group needs at least 1 op node")
        }
        var excluded = Set<String>()
        for op in options.excludedOps {
            guard let d = OpRegistry.shared.lookup(op) else { throw PartitionError.unknownExcludedOp(op) }
            excluded.insert(d.name)
        }
        try graph.validate()
        let engineName = options.engineName ?? backendName
        var reasons: [Int: PartitionReport.Reason] = [:]

        // 1. Ask the engine about every op node; excluded ops are not asked.
        var supported = [Bool](repeating: false, count: graph.nodes.count)
        // Which outputs of each node are read, found once (a query scanning the graph for its node
        // made asking about every node quadratic in the graph's size).
        let outputsRead = graph.readOutputs
        for (i, n) in graph.nodes.enumerated() where !n.isVariable {
            if excluded.contains(OpRegistry.shared.lookup(n.op)?.name ?? n.op) { reasons[i] = .excludedByUser; continue }
            let answer = support(SupportQuery(graph: graph, node: i, shapes: shapes, types: types, constants: options.constants,
                                              outputsRead: outputsRead[i]))
            if let r = answer.reason { reasons[i] = PartitionReport.Reason(r) } else { supported[i] = true }
        }

        // 2. Grow groups: merge along edges between supported nodes until no merge keeps the groups acyclic.
        var clusters = Clusters(graph)
        var merged = true
        while merged {
            merged = false
            for (v, n) in graph.nodes.enumerated() where supported[v] {
                for e in n.inputs where supported[e.node] {
                    let a = clusters.id[e.node], b = clusters.id[v]
                    if a != b && !clusters.hasIndirectPath(from: a, to: b) {
                        clusters.merge(a, b)
                        merged = true
                    }
                }
            }
        }

        // 3. Keep groups of at least the minimum size; name them in topological order.
        let candidates = Set(graph.nodes.indices.filter { supported[$0] }.map { clusters.id[$0] })
        let byFirstMember = candidates.map { clusters.members[$0].sorted() }.sorted { $0[0] < $1[0] }
        var usedNames = Set(graph.nodes.map(\.name))
        var groups: [[Int]] = []
        var groupNames: [String] = []
        var groupOf = [Int?](repeating: nil, count: graph.nodes.count)
        for members in byFirstMember where members.count >= options.minGroupSize {
            for m in members { groupOf[m] = groups.count }
            groups.append(members)
            groupNames.append(Self.unique("kiln_engine\(groupNames.count)", &usedNames))
        }
        for members in byFirstMember where members.count < options.minGroupSize {
            // A supported neighbour in a kept group means the merge was refused for a cycle.
            let refused = members.lazy.compactMap { m -> Int? in
                let neighbours = graph.nodes[m].inputs.map(\.node) + clusters.consumers[m]
                return neighbours.lazy.compactMap { supported[$0] ? groupOf[$0] : nil }.first
            }.first
            for m in members {
                reasons[m] = refused.map { .keptOutToAvoidCycle(group: groupNames[$0]) }
                    ?? .groupTooSmall(size: members.count, minimum: options.minGroupSize)
            }
        }

        // 4. Rewrite: each group becomes one engine node whose outputs are its entries read outside it.
        var rewriter = Rewriter(graph: graph, groups: groups, groupOf: groupOf, groupNames: groupNames,
                                constants: options.constants, engine: engineName, engineOptions: options.engineOptions)
        let (partitioned, reportGroups) = try rewriter.rewrite(shapes: shapes)

        // 5. Verify: the result sorts topologically and every original op node is in exactly one place.
        try Self.verify(original: graph, partitioned: partitioned, shapes: shapes)

        let frameworkNodes = graph.nodes.indices.filter { !graph.nodes[$0].isVariable && groupOf[$0] == nil }.map { i in
            PartitionReport.FrameworkNode(name: graph.nodes[i].name, op: graph.nodes[i].op,
                                          reason: reasons[i] ?? .unsupported("no reason recorded"))
        }
        // Values handed between the framework and an engine group (or between two groups), each once
        // per receiving side: every one is a switch of runtime at inference.
        var handOffs = Set<[Int]>()
        for (c, n) in graph.nodes.enumerated() where !n.isVariable {
            for e in n.inputs where !graph.nodes[e.node].isVariable && groupOf[e.node] != groupOf[c] {
                handOffs.insert([e.node, e.index, groupOf[c] ?? -1])
            }
        }
        let report = PartitionReport(
            backend: backendName, engine: engineName, minGroupSize: options.minGroupSize,
            excludedOps: excluded.sorted(), groups: reportGroups, frameworkNodes: frameworkNodes, switches: handOffs.count,
            opNodeCount: graph.nodes.filter { !$0.isVariable }.count,
            totalFLOPs: shapes.map { FLOPEstimate.flops(of: graph.nodes.indices, in: graph, shapes: $0) })
        return Partition(graph: partitioned, report: report)
    }

    /// `base`, or `base_1`, `base_2`, ... the first not in `used`; records it as used.
    static func unique(_ base: String, _ used: inout Set<String>) -> String {
        var name = base
        var k = 1
        while used.contains(name) {
            name = "\(base)_\(k)"
            k += 1
        }
        used.insert(name)
        return name
    }

    /// Checks the partitioner's guarantees on its result.
    static func verify(original: Graph, partitioned: Graph, shapes: InferredShapes?) throws {
        do {
            try partitioned.validate(source: "the partitioned graph")
        } catch {
            throw PartitionError.verificationFailed("it does not sort topologically (\(error))")
        }
        // Each original op node, as (name, op), must appear once: outside, or inside one engine node.
        var count: [String: Int] = [:]
        for n in original.nodes where !n.isVariable { count["\(n.name)|\(n.op)", default: 0] += 1 }
        for (i, n) in partitioned.nodes.enumerated() where !n.isVariable {
            if n.op == EngineSubgraph.opName {
                let sub = try EngineSubgraph(try partitioned.resolvedAttributes(of: i))
                for m in sub.graph.nodes where !m.isVariable { count["\(m.name)|\(m.op)", default: 0] -= 1 }
            } else {
                count["\(n.name)|\(n.op)", default: 0] -= 1
            }
        }
        if let (key, c) = count.first(where: { $0.value != 0 }) {
            let name = key.split(separator: "|").first.map(String.init) ?? key
            throw PartitionError.verificationFailed("op node '\(name)' appears \(c < 0 ? "more often" : "less often") than in the original graph")
        }
        // With shapes, the partitioned graph must infer the same output shapes.
        if let shapes {
            let variables = Set(partitioned.nodes.filter(\.isVariable).map(\.name))
            let again = try partitioned.inferShapes(shapes.byName.filter { variables.contains($0.key) })
            guard again.outputs == shapes.outputs else {
                throw PartitionError.verificationFailed("its output shapes \(again.outputs) differ from the original's \(shapes.outputs)")
            }
        }
    }
}

/// Groups of nodes while they grow: each node's group id and each group's members, with the
/// reachability test that keeps the groups acyclic.
///
/// Costs stay near linear on graphs of tens of thousands of nodes (a 60,000-node chain took 20
/// minutes when every test walked all members of the growing group and every merge re-sorted it):
/// a merge moves the smaller group into the larger, each group keeps the nodes outside it that read
/// it, and a search never enters a group that starts after the target ends (edges go forward in
/// the nodes' topological order, so such a group cannot reach the target).
struct Clusters {
    /// Group id of each node (initially the node's own index).
    var id: [Int]
    /// Members of each group id, in no particular order; empty for ids merged away.
    var members: [[Int]]
    /// Nodes reading each node's outputs.
    let consumers: [[Int]]
    /// For each group, the nodes outside it that read one of its members.
    var readers: [Set<Int>]
    /// The smallest and largest member index of each group.
    var first: [Int], last: [Int]

    init(_ graph: Graph) {
        id = Array(graph.nodes.indices)
        members = graph.nodes.indices.map { [$0] }
        consumers = graph.consumers
        readers = consumers.map { Set($0) }
        first = Array(graph.nodes.indices)
        last = Array(graph.nodes.indices)
    }

    /// Whether a path leads from group `a` to group `b` through some other group: merging them
    /// would then close a cycle. (With an edge a -> b, b cannot reach a in an acyclic group graph.)
    func hasIndirectPath(from a: Int, to b: Int) -> Bool {
        var seen: Set<Int> = [a, b]
        var stack: [Int] = []
        for r in readers[a] where seen.insert(id[r]).inserted && first[id[r]] <= last[b] { stack.append(id[r]) }
        while let g = stack.popLast() {
            for r in readers[g] {
                let h = id[r]
                if h == b { return true }
                if first[h] <= last[b] && seen.insert(h).inserted { stack.append(h) }
            }
        }
        return false
    }

    /// Merges groups `a` and `b`, the smaller into the larger; returns the id kept.
    @discardableResult
    mutating func merge(_ a: Int, _ b: Int) -> Int {
        let (large, small) = members[a].count >= members[b].count ? (a, b) : (b, a)
        let moved = members[small]
        for m in moved { id[m] = large }
        // Readers of either group that now lie inside the merged group are readers no more.
        for r in readers[small] where id[r] != large { readers[large].insert(r) }
        for m in moved { readers[large].remove(m) }
        members[large] += moved
        members[small] = []
        readers[small] = []
        first[large] = min(first[large], first[small])
        last[large] = max(last[large], last[small])
        return large
    }
}
