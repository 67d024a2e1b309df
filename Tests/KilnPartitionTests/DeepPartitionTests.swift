import KilnCore
import KilnGraph
import Testing
@testable import KilnPartition

/// Partitioning stays near linear in the graph's size: a 60,000-node chain took 20 minutes when each
/// group kept every reader it ever had and each support query scanned the whole graph. These tests
/// check the invariants that keep the work small, not a time.
@Suite struct DeepPartitionTests {
    static func chain(_ depth: Int) -> Graph {
        var x = Symbol.variable("data")
        for i in 0..<depth { x = Symbol.activation(x, kind: .relu, name: "r\(i)") }
        return x.graph
    }

    /// Merging along a chain: the growing group's readers are only the next node, never the members
    /// it swallowed, so each reachability test looks at one reader.
    @Test(arguments: [10, 1000])
    func aGrowingGroupKeepsOnlyOutsideReaders(depth: Int) {
        let graph = Self.chain(depth)
        var clusters = Clusters(graph)
        var group = clusters.id[1]
        for v in 2...depth {
            #expect(!clusters.hasIndirectPath(from: group, to: clusters.id[v]))
            group = clusters.merge(group, clusters.id[v])
            #expect(clusters.readers[group] == (v < depth ? [v + 1] : []), "after merging node \(v)")
        }
        #expect(clusters.members[group].sorted() == Array(1...depth))
        #expect(Set(clusters.id.dropFirst()) == [group])
    }

    /// The merge keeps the cycle test right: in a diamond a -> (b, c) -> d, merging a and d would
    /// enclose b and c's paths, so it is refused while b and c stay out.
    @Test func theDiamondStillRefusesTheEnclosingMerge() {
        let a = Symbol.activation(.variable("data"), kind: .relu, name: "a")
        let b = Symbol.activation(a, kind: .relu, name: "b"), c = Symbol.activation(a, kind: .tanh, name: "c")
        let d = Symbol.elementwiseAdd(b, c, name: "d")
        let graph = d.graph
        let index = { (name: String) in graph.nodes.firstIndex { $0.name == name }! }
        var clusters = Clusters(graph)
        #expect(clusters.hasIndirectPath(from: clusters.id[index("a")], to: clusters.id[index("d")]))
        clusters.merge(clusters.id[index("a")], clusters.id[index("b")])
        #expect(clusters.hasIndirectPath(from: clusters.id[index("a")], to: clusters.id[index("d")]))
        clusters.merge(clusters.id[index("a")], clusters.id[index("c")])
        #expect(!clusters.hasIndirectPath(from: clusters.id[index("a")], to: clusters.id[index("d")]))
    }

    /// The whole partition of a long chain gives one group holding every node.
    @Test func aLongChainIsOneGroup() throws {
        let graph = Self.chain(5000)
        let p = try Partitioner(backend: FakeEngine(supporting: ["Activation"])).partition(graph)
        #expect(p.report.groups.count == 1 && p.report.groups[0].nodes.count == 5000)
    }
}
