import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// The capability table: one entry per op gives both the support rule and the lowering.
@Suite struct CapabilityTests {
    /// data -> conv(weight) -> Activation(tanh) -> SoftmaxOutput
    static func graph() -> Graph {
        let data = Symbol.variable("data")
        let conv = Symbol.make("Convolution", [data, .variable("w")], attributes: ["kernel": "(3, 3)", "num_filter": "2", "no_bias": "True"], name: "conv")
        let act = Symbol.make("Activation", [conv], attributes: ["act_type": "tanh"], name: "act")
        return Symbol.make("SoftmaxOutput", [act, .variable("label")], name: "out").graph
    }

    static func index(_ g: Graph, _ name: String) -> Int { g.nodes.firstIndex { $0.name == name } ?? -1 }

    static let table: CapabilityTable<String> = [
        "Convolution": .init(lowering: "conv", when: .weightsKnownAtBind),
        "Activation": .init(lowering: "eltwise", when: .attribute("act_type", in: ["relu", "sigmoid"])),
    ]

    @Test func absentOpsAreUnsupportedWithTheOpName() {
        let g = Self.graph()
        let s = Self.table.support(SupportQuery(graph: g, node: Self.index(g, "out")))
        #expect(s == .unsupported("op SoftmaxOutput is not supported"))
        #expect(s.reason == .unsupportedOp("SoftmaxOutput"))
        #expect(Self.table.lowering(for: "SoftmaxOutput") == nil)
    }

    @Test func attributeRuleNamesTheValue() {
        let g = Self.graph()
        let s = Self.table.support(SupportQuery(graph: g, node: Self.index(g, "act")))
        #expect(s.reason == .unsupportedAttribute("act_type=tanh"))
    }

    @Test func weightsMustBeKnownAtBind() {
        let g = Self.graph()
        let conv = Self.index(g, "conv")
        #expect(Self.table.support(SupportQuery(graph: g, node: conv)).reason == .weightsNotKnownAtBind("weight"))
        #expect(Self.table.support(SupportQuery(graph: g, node: conv, constants: ["w"])) == .supported)
        #expect(Self.table.lowering(for: "Convolution") == "conv")
    }

    @Test func variablesAreSupportedAndAliasesResolve() {
        let g = Self.graph()
        #expect(Self.table.support(SupportQuery(graph: g, node: Self.index(g, "data"))) == .supported)
        var t = CapabilityTable<Int>()
        t.add("_plus", .init(lowering: 1))
        #expect(t.opNames == ["elemwise_add"])
        #expect(t.lowering(for: "_Plus") == 1)
    }

    @Test func rulesCombineFirstRefusalWins() {
        let g = Self.graph()
        let rule = SupportRule.weightsKnownAtBind.and(.attribute("layout", in: ["NHWC"]))
        let conv = Self.index(g, "conv")
        #expect(rule.evaluate(SupportQuery(graph: g, node: conv)).reason == .weightsNotKnownAtBind("weight"))
        #expect(rule.evaluate(SupportQuery(graph: g, node: conv, constants: ["w"])).reason == .unsupportedAttribute("layout=None"))
    }

    @Test func otherReasonsPassThrough() {
        #expect(Support.unsupported("float16 data").reason == .other("float16 data"))
        #expect(Support.supported.reason == nil)
    }

    /// Every op the fake engine says it supports has a lowering: the table cannot disagree with itself.
    @Test func everySupportedNodeHasALowering() throws {
        let dag = RandomDAG(seed: 7, opCount: 30)
        let engine = FakeEngine(supporting: dag.ops)
        let g = dag.symbol.graph
        for i in g.nodes.indices where !g.nodes[i].isVariable {
            let q = SupportQuery(graph: g, node: i, constants: Set(dag.params.keys))
            if engine.support(q).isSupported { #expect(engine.table.lowering(for: g.nodes[i].op) != nil) }
        }
    }
}
