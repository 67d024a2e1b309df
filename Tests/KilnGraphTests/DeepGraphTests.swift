import KilnCore
import KilnGraph
import Testing

/// Graphs far deeper than any network: building, walking and releasing them must not recurse once
/// per node (a chain of about 35,000 nodes overflowed the stack when its last reference went away).
@Suite struct DeepGraphTests {
    /// A chain of `depth` relu nodes over one variable, loaded from symbol JSON as a user's file would be.
    static func chainJSON(depth: Int) -> String {
        var nodes = [#"{"op": "null", "name": "data", "inputs": []}"#]
        for i in 1...depth { nodes.append(#"{"op": "relu", "name": "r\#(i)", "inputs": [[\#(i - 1), 0, 0]]}"#) }
        return #"{"nodes": [\#(nodes.joined(separator: ","))], "arg_nodes": [0], "heads": [[\#(depth), 0, 0]]}"#
    }

    static let depth = 200_000

    /// 50,000 nodes: beyond the 35,000 that crashed, small enough for a debug build's JSON and shape
    /// inference to take a few seconds.
    @Test func aLongChainLoadsAndWalks() throws {
        let depth = 50_000
        let symbol = try Symbol(json: Self.chainJSON(depth: depth))
        let graph = symbol.graph
        #expect(graph.nodes.count == depth + 1)
        let shapes = try graph.inferShapes(["data": [2, 3]])
        #expect(shapes.nodeOutputs[depth][0] == [2, 3])
    }

    /// Reaching the end means the chain was released (the old recursive release crashed).
    @Test func aLongChainIsReleased() {
        let depth = Self.depth
        var chain = SymbolNode(op: "null", name: "x")
        for i in 0..<depth { chain = SymbolNode(op: "relu", name: "r\(i)", inputs: [SymbolEntry(node: chain, index: 0)]) }
        #expect(chain.inputs.count == 1)
    }

    /// Nodes two consumers share survive the release of one of them.
    @Test func sharedInputsSurviveOneOwner() {
        let shared = SymbolNode(op: "null", name: "x")
        var a: SymbolNode? = SymbolNode(op: "relu", name: "a", inputs: [SymbolEntry(node: shared, index: 0)])
        let b = SymbolNode(op: "relu", name: "b", inputs: [SymbolEntry(node: shared, index: 0)])
        #expect(a != nil)
        a = nil
        #expect(b.inputs[0].node === shared && shared.name == "x")
    }
}
