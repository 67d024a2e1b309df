import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// The named traps of partitioning, each compared before and after structurally, then run.
/// `sigmoid` is the unsupported op throughout.
@Suite struct PartitionerTrapTests {
    static let engine = FakeEngine(supporting: ["relu", "tanh", "elemwise_add", "elemwise_mul", "SliceChannel", "Concat", "Convolution"])

    static func partition(_ s: Symbol, _ options: PartitionOptions = PartitionOptions(), engine: FakeEngine = engine) throws -> Partition {
        let shapes = try s.inferShape(["data": [2, 4, 3, 3]])
        return try Partitioner(backend: engine, options: options).partition(s.graph, shapes: shapes)
    }

    static func unary(_ op: String, _ x: Symbol, _ name: String) -> Symbol { Symbol.make(op, [x], name: name) }
    static func add(_ a: Symbol, _ b: Symbol, _ name: String) -> Symbol { Symbol.make("elemwise_add", [a, b], name: name) }

    /// The partitioned symbol gives the framework's outputs.
    static func expectSameOutputs(_ original: Symbol, _ p: Partition, params: [String: NDArray] = [:]) throws {
        var rng = SeededGenerator(seed: 11)
        let inputs = ["data": randomArray([2, 4, 3, 3], &rng)]
        let expected = try run(original, inputs: inputs, params: params, backend: OpByOpBackend.framework)
        let got = try run(p.symbol, inputs: inputs, params: params, backend: engineBackend(engine, constants: params))
        #expect(got.count == expected.count)
        for (a, b) in zip(got, expected) { expectClose(a, b, relative: 1e-5, "partitioned output") }
    }

    /// ```
    /// data ─> a ─> b(sigmoid) ─> d ─> e          a and c cannot join d: the path a -> b -> d
    ///         └──> c ────────────^                would leave and re-enter the group.
    /// ```
    @Test func diamondWithAnUnsupportedBranch() throws {
        let data = Symbol.variable("data")
        let a = Self.unary("relu", data, "a")
        let b = Self.unary("sigmoid", a, "b")
        let c = Self.unary("tanh", a, "c")
        let e = Self.unary("relu", Self.add(b, c, "d"), "e")
        let p = try Self.partition(e)
        #expect(try describe(p.graph) == [
            "kiln_engine0=engine[a, c](data)",
            "b=sigmoid(kiln_engine0)",
            "kiln_engine1=engine[d, e](b, kiln_engine0.1)",
            "heads: kiln_engine1",
        ])
        #expect(p.report.reason(of: "b") == .unsupportedOp("sigmoid"))
        #expect(p.report.groups.map(\.outputs) == [["a_output", "c_output"], ["e_output"]])
        // Three hand-offs: a into the framework's b, b into group 1, c from group 0 into group 1.
        #expect(p.report.switches == 3)
        #expect(p.report.text().contains("2 engine groups, 3 framework-engine switches."))
        try Self.expectSameOutputs(e, p)
    }

    /// ```
    /// data ─> a ─> b ─> u(sigmoid) ─> c        c would close a loop b -> u -> c through the framework,
    ///              └──────────────────^        so it stays out, alone and too small to be a group.
    /// ```
    @Test func chainThroughAnUnsupportedNodeBackIntoTheGroup() throws {
        let data = Symbol.variable("data")
        let b = Self.unary("tanh", Self.unary("relu", data, "a"), "b")
        let c = Self.add(b, Self.unary("sigmoid", b, "u"), "c")
        let p = try Self.partition(c)
        #expect(try describe(p.graph) == [
            "kiln_engine0=engine[a, b](data)",
            "u=sigmoid(kiln_engine0)",
            "c=elemwise_add(kiln_engine0, u)",
            "heads: c",
        ])
        #expect(p.report.reason(of: "c") == .keptOutToAvoidCycle(group: "kiln_engine0"))
        #expect(p.report.reason(of: "u") == .unsupportedOp("sigmoid"))
        try Self.expectSameOutputs(c, p)

        // With a minimum of 1, c is a group of its own, after u.
        let one = try Self.partition(c, PartitionOptions(minGroupSize: 1))
        #expect(try describe(one.graph) == [
            "kiln_engine0=engine[a, b](data)",
            "u=sigmoid(kiln_engine0)",
            "kiln_engine1=engine[c](kiln_engine0, u)",
            "heads: kiln_engine1",
        ])
        try Self.expectSameOutputs(c, one)
    }

    /// ```
    /// data ─> a ─> b ─> c ─> head 0       a is read inside (b, c) and outside (u, head 1);
    ///         │    └──────> head 2        b inside (c) and as head 2: the engine node returns
    ///         └──> u(sigmoid) ─> head 3   a, b and c, and u reads its output 0.
    /// ```
    @Test func outputsUsedInsideAndOutsideTheGroup() throws {
        let data = Symbol.variable("data")
        let a = Self.unary("relu", data, "a")
        let b = Self.unary("tanh", a, "b")
        let c = Self.add(a, b, "c")
        let u = Self.unary("sigmoid", a, "u")
        let s = Symbol.group([c, a, b, u])
        let p = try Self.partition(s)
        #expect(try describe(p.graph) == [
            "kiln_engine0=engine[a, b, c](data)",
            "u=sigmoid(kiln_engine0)",
            "heads: kiln_engine0.2, kiln_engine0, kiln_engine0.1, u",
        ])
        #expect(p.report.groups.first?.outputs == ["a_output", "b_output", "c_output"])
        #expect(p.symbol.listOutputs() == ["kiln_engine0_c_output", "kiln_engine0_a_output", "kiln_engine0_b_output", "u_output"])
        try Self.expectSameOutputs(s, p)
    }

    /// A two-output SliceChannel outside a group, feeding it by both outputs; then inside a group,
    /// its second output read by the framework.
    @Test func multiOutputNodeAtAGroupBorder() throws {
        let data = Symbol.variable("data")
        let joined = Symbol.make("Concat", [data, data], attributes: ["num_args": "2"], name: "cat")
        let parts = Symbol.make("SliceChannel", [joined], attributes: ["num_outputs": "2"], name: "split")
        let y = Self.add(Self.unary("tanh", parts[0], "y0"), Self.unary("relu", parts[1], "y1"), "z")
        let noSplit = FakeEngine(supporting: ["relu", "tanh", "elemwise_add"])
        let p = try Self.partition(y, engine: noSplit)
        #expect(try describe(p.graph) == [
            "cat=Concat(data, data)",
            "split=SliceChannel(cat)",
            "kiln_engine0=engine[y0, y1, z](split, split.1)",
            "heads: kiln_engine0",
        ])
        #expect(p.report.groups.first?.inputs == ["split_output0", "split_output1"])
        try Self.expectSameOutputs(y, p)

        let u = Self.unary("sigmoid", parts[1], "u")
        let s = Symbol.group([Self.unary("tanh", parts[0], "t"), u])
        let q = try Self.partition(s)
        #expect(try describe(q.graph) == [
            "kiln_engine0=engine[cat, split, t](data)",
            "u=sigmoid(kiln_engine0)",
            "heads: kiln_engine0.1, u",
        ])
        #expect(q.report.groups.first?.outputs == ["split_output1", "t_output"])
        try Self.expectSameOutputs(s, q)
    }

    @Test func minimumGroupSize() throws {
        let data = Symbol.variable("data")
        let s = Self.unary("relu", Self.unary("tanh", Self.unary("relu", data, "a"), "b"), "c")
        let three = try Self.partition(s, PartitionOptions(minGroupSize: 3))
        #expect(three.report.groups.count == 1)
        let four = try Self.partition(s, PartitionOptions(minGroupSize: 4))
        #expect(four.report.groups.isEmpty)
        #expect(four.report.frameworkNodes.map(\.reason) == [PartitionReport.Reason](repeating: .groupTooSmall(size: 3, minimum: 4), count: 3))
        #expect(try describe(four.graph) == (try describe(s.graph)))
        #expect(throws: PartitionError.self) { try Self.partition(s, PartitionOptions(minGroupSize: 0)) }
    }

    @Test func excludedOpsStayWithTheFramework() throws {
        let data = Symbol.variable("data")
        let a = Self.unary("relu", data, "a")
        let s = Self.unary("tanh", Self.add(a, Self.unary("tanh", a, "b"), "c"), "d")
        // Aliases name the same op.
        let p = try Self.partition(s, PartitionOptions(minGroupSize: 1, excludedOps: ["_plus"]))
        #expect(p.report.reason(of: "c") == .excludedByUser)
        #expect(p.report.excludedOps == ["elemwise_add"])
        #expect(try describe(p.graph) == [
            "kiln_engine0=engine[a, b](data)",
            "c=elemwise_add(kiln_engine0, kiln_engine0.1)",
            "kiln_engine1=engine[d](c)",
            "heads: kiln_engine1",
        ])
        try Self.expectSameOutputs(s, p)
        do {
            _ = try Self.partition(s, PartitionOptions(excludedOps: ["NoSuchOp"]))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("'NoSuchOp'"), "\(error)")
        }
    }

    /// A convolution whose weight is not known at bind stays with the framework, with that reason;
    /// known, the weight is baked into the group (and stays an input, so the params still bind).
    @Test func weightsNotKnownAtBind() throws {
        let data = Symbol.variable("data")
        let conv = Symbol.make("Convolution", [data, .variable("w")],
                               attributes: ["kernel": "(3, 3)", "pad": "(1, 1)", "num_filter": "4", "no_bias": "True"], name: "conv")
        let s = Self.unary("relu", Self.unary("tanh", conv, "t"), "r")
        let unknown = try Self.partition(s)
        #expect(unknown.report.reason(of: "conv") == .weightsNotKnownAtBind("weight"))
        #expect(unknown.report.groups.map { $0.nodes.map(\.name) } == [["t", "r"]])

        let known = try Self.partition(s, PartitionOptions(constants: ["w"]))
        #expect(known.report.groups.first?.nodes.map(\.name) == ["conv", "t", "r"])
        #expect(known.report.groups.first?.inputs == ["data", "w"])
        #expect(known.report.groups.first?.bakedWeights == ["w"])
        #expect(known.symbol.listArguments() == ["data", "w"])
        var rng = SeededGenerator(seed: 5)
        try Self.expectSameOutputs(s, known, params: ["w": randomArray([4, 4, 3, 3], &rng)])
    }

    /// A weight read by the group and by the framework is an input of both and not counted as baked.
    @Test func sharedWeightsAreNotBaked() throws {
        let data = Symbol.variable("data"), w = Symbol.variable("w")
        let a = Self.add(Self.unary("relu", data, "r"), w, "a")
        let s = Symbol.group([Self.unary("tanh", a, "t"), Symbol.make("elemwise_mul", [Self.unary("sigmoid", data, "u"), w], name: "m")])
        let p = try Self.partition(s, PartitionOptions(constants: ["w"]))
        #expect(p.report.groups.first?.inputs == ["data", "w"])
        #expect(p.report.groups.first?.bakedWeights == [])
        var rng = SeededGenerator(seed: 6)
        try Self.expectSameOutputs(s, p, params: ["w": randomArray([2, 4, 3, 3], &rng)])
    }

    @Test func unsupportedAttributeValuesAreNamed() throws {
        let data = Symbol.variable("data")
        let s = Symbol.activation(Symbol.activation(Symbol.activation(data, kind: .relu, name: "a"), kind: .tanh, name: "b"), kind: .relu, name: "c")
        let engine = FakeEngine(supporting: ["Activation"], rules: ["Activation": .attribute("act_type", in: ["relu"])])
        let p = try Self.partition(s, PartitionOptions(minGroupSize: 1), engine: engine)
        #expect(p.report.reason(of: "b") == .unsupportedAttribute("act_type=tanh"))
        #expect(p.report.groups.count == 2)
    }

    /// Partitioning twice gives the same result, and engine names avoid names the graph already uses.
    @Test func deterministicAndNamesAreUnique() throws {
        let data = Symbol.variable("data")
        let s = Self.unary("relu", Self.unary("tanh", data, "kiln_engine0"), "b")
        let p = try Self.partition(s)
        #expect(p.report.groups.map(\.name) == ["kiln_engine0_1"])
        #expect(try describe(try Self.partition(s).graph) == (try describe(p.graph)))
        #expect(try p.symbol.jsonString() == (try Self.partition(s).symbol.jsonString()))
    }
}
