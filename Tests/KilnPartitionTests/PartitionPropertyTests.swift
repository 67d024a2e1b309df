import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// Properties of the partitioner on random DAGs with random support sets, each case replayable from
/// its seed: every op node ends up in exactly one place, the result sorts topologically, groups are
/// as large as acyclicity allows, and the partitioned graph computes what the original computes.
@Suite struct PartitionPropertyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let seed: UInt64
        var testDescription: String { "seed \(seed)" }
    }

    static let cases = (1...80).map { Case(seed: UInt64($0)) }

    /// The random choices of one case besides the graph: the support set and the options.
    static func setup(_ c: Case, _ dag: RandomDAG) -> (FakeEngine, PartitionOptions) {
        var rng = SeededGenerator(seed: c.seed &* 7919)
        let ops = dag.ops.sorted()
        let supported = Set(ops.filter { _ in Int.random(in: 0..<10, using: &rng) < 7 })
        let excluded: Set<String> = Int.random(in: 0..<4, using: &rng) == 0 && !ops.isEmpty ? [ops[Int.random(in: 0..<ops.count, using: &rng)]] : []
        // Now and then a weight is not known at bind.
        var constants = Set(dag.params.keys)
        if Bool.random(using: &rng), let drop = constants.sorted().first { constants.remove(drop) }
        let options = PartitionOptions(minGroupSize: Int.random(in: 1...3, using: &rng), excludedOps: excluded, constants: constants)
        return (FakeEngine(supporting: supported), options)
    }

    @Test(arguments: cases)
    func partitionKeepsEveryNodeOnceAndSorts(_ c: Case) throws {
        let dag = RandomDAG(seed: c.seed, opCount: 4 + Int(c.seed % 23))
        let (engine, options) = Self.setup(c, dag)
        let original = dag.symbol.graph
        let shapes = try original.inferShapes(dag.inputs.mapValues(\.shape).filter { k, _ in original.argumentNames.contains(k) })
        let p = try Partitioner(backend: engine, options: options).partition(original, shapes: shapes)

        // Every op node in exactly one place.
        let originalOps = original.nodes.filter { !$0.isVariable }.map(\.name)
        #expect(try placedOpNames(p.graph).sorted() == originalOps.sorted())
        let reported = p.report.groups.flatMap { $0.nodes.map(\.name) } + p.report.frameworkNodes.map(\.name)
        #expect(reported.sorted() == originalOps.sorted())

        // The result sorts: its own order is topological, and so is the order of its symbol re-read.
        try p.graph.validate()
        let reread = try Symbol(json: try p.symbol.jsonString(), source: "seed \(c.seed)")
        try reread.graph.validate()
        #expect(reread.graph.nodes.count == p.symbol.graph.nodes.count)

        // Members are supported, not excluded, and groups respect the minimum size.
        for g in p.report.groups {
            #expect(g.nodes.count >= options.minGroupSize)
            for n in g.nodes {
                #expect(engine.table.entry(for: n.op) != nil && !options.excludedOps.contains(n.op), "\(n.name) (\(n.op))")
            }
        }

        // Maximal along edges: two engine nodes joined by an edge are also joined by a longer path
        // (merging them would close a cycle).
        let g = p.graph
        let consumers = g.consumers
        func reaches(_ from: Int, _ to: Int, avoidingDirect: Bool) -> Bool {
            var stack = consumers[from].filter { !(avoidingDirect && $0 == to) }
            var seen = Set(stack)
            while let x = stack.popLast() {
                if x == to { return true }
                for y in consumers[x] where seen.insert(y).inserted { stack.append(y) }
            }
            return false
        }
        for (i, n) in g.nodes.enumerated() where n.op == EngineSubgraph.opName {
            for j in consumers[i] where g.nodes[j].op == EngineSubgraph.opName {
                #expect(reaches(i, j, avoidingDirect: true), "\(n.name) -> \(g.nodes[j].name) could have been merged")
            }
        }
    }

    @Test(arguments: cases)
    func partitionedOutputsEqualTheFrameworks(_ c: Case) throws {
        let dag = RandomDAG(seed: c.seed, opCount: 4 + Int(c.seed % 23))
        let (engine, options) = Self.setup(c, dag)
        let (partitioned, _) = try dag.symbol.partitioned(for: engine, options: options, argParams: dag.params.filter { options.constants.contains($0.key) })
        let expected = try run(dag.symbol, inputs: dag.inputs, params: dag.params, backend: OpByOpBackend.framework)
        let constants = dag.params.filter { options.constants.contains($0.key) }
        let got = try run(partitioned, inputs: dag.inputs, params: dag.params, backend: engineBackend(engine, constants: constants))
        #expect(got.count == expected.count)
        for (k, (a, b)) in zip(got, expected).enumerated() { expectClose(a, b, relative: 1e-5, "seed \(c.seed) output \(k)") }

        // Saved and loaded again, the partitioned symbol binds and gives the same outputs.
        if c.seed % 4 == 0 {
            let again = try Symbol(json: try partitioned.jsonString(), source: "seed \(c.seed)")
            let reloaded = try run(again, inputs: dag.inputs, params: dag.params, backend: engineBackend(engine, constants: constants))
            for (a, b) in zip(reloaded, expected) { expectClose(a, b, relative: 1e-5, "seed \(c.seed) after JSON") }
        }
    }
}
