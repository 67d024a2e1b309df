import Foundation
import KilnCore
import KilnGraph
import Testing

// Shape, type and schema rules of the elementwise family, and the structure of graphs built with the
// Symbol operators. Expected label shapes and errors follow what MXNet 1.9.1 reports.

/// The shapes of a one-op symbol's arguments and outputs for given input shapes.
private func shapes(_ s: Symbol, _ given: [String: Shape]) throws -> InferredShapes { try s.inferShape(given) }

/// Whether `name` is `prefix` followed by a counter, as automatic names are (`_plus3`).
private func isAutoName(_ name: String?, _ prefix: String) -> Bool {
    guard let name, name.hasPrefix(prefix) else { return false }
    return Int(name.dropFirst(prefix.count)) != nil
}

@Suite("ElementwiseOps shapes")
struct ElementwiseOpsShapeTests {
    let x = Symbol.variable("x"), y = Symbol.variable("y")

    @Test(arguments: [Shape([]), [7], [2, 3], [2, 3, 4, 5]])
    func unaryOpsKeepTheShape(_ shape: Shape) throws {
        for net in [Symbol.relu(x), .exp(x), .activation(x, kind: .softSign), .leakyReLU(x, kind: .gelu), .plusScalar(x, 1),
                    .clip(x, min: 0, max: 1), .copy(x), .cast(x, dtype: .int8), .dropout(x)] {
            #expect(try shapes(net, ["x": shape]).outputs == [shape])
        }
    }

    @Test func elementwiseBinaryFillsAnUnknownOperand() throws {
        let s = try shapes(.elementwiseAdd(x, y, name: "add"), ["x": [2, 3]])
        #expect(s.byName["y"] == [2, 3])
        #expect(s.outputs == [[2, 3]])
        let t = try shapes(.elementwiseMultiply(x, y), ["y": [4]])
        #expect(t.byName["x"] == [4])
    }

    @Test func elementwiseBinaryRefusesDifferentShapes() throws {
        let net = Symbol.elementwiseAdd(x, y, name: "add")
        #expect(throws: GraphError.shapeMismatch(node: "add", op: "elemwise_add", input: "rhs", expected: "(2, 3)", actual: [3, 2])) {
            _ = try shapes(net, ["x": [2, 3], "y": [3, 2]])
        }
        let error = #expect(throws: GraphError.self) { _ = try shapes(net, ["x": [2, 3], "y": [3, 2]]) }
        let text = error?.description ?? ""
        #expect(text.contains("'add'") && text.contains("(2, 3)") && text.contains("(3, 2)"))
    }

    @Test(arguments: [
        ([2, 3, 4], [2, 3, 4], [2, 3, 4]), ([2, 3, 4], [1, 3, 1], [2, 3, 4]), ([2, 1, 4], [1, 3, 1], [2, 3, 4]),
        ([1, 3, 4], [2, 3, 4], [2, 3, 4]), ([2, 3], [1, 1], [2, 3]), ([2, 3], [2, 1, 3], [2, 2, 3]),
        ([2, 3, 4], [3, 1], [2, 3, 4]), ([2, 3], [1], [2, 3]), ([], [2, 2], [2, 2]),
    ] as [([Int], [Int], [Int])])
    func broadcastShapes(_ a: [Int], _ b: [Int], _ out: [Int]) throws {
        for net in [Symbol.broadcastAdd(x, y), .broadcastSubtract(x, y), .broadcastMultiply(x, y), .broadcastDivide(x, y)] {
            #expect(try shapes(net, ["x": Shape(a), "y": Shape(b)]).outputs == [Shape(out)])
        }
    }

    @Test(arguments: [([2, 3], [3, 2]), ([2, 3], [4]), ([2, 3, 4], [3, 3])] as [([Int], [Int])])
    func broadcastRefusesIncompatibleShapes(_ a: [Int], _ b: [Int]) throws {
        let net = Symbol.broadcastMultiply(x, y, name: "bmul")
        let error = #expect(throws: GraphError.self) { _ = try shapes(net, ["x": Shape(a), "y": Shape(b)]) }
        guard case let .invalidShape(node, op, reason)? = error else {
            Issue.record("expected invalidShape, got \(String(describing: error))")
            return
        }
        #expect(node == "bmul" && op == "broadcast_mul")
        #expect(reason.contains(Shape(a).description) && reason.contains(Shape(b).description))
    }

    @Test func preluInfersGammaPerChannel() throws {
        let net = Symbol.leakyReLU(x, kind: .prelu, name: "act")
        #expect(net.listArguments() == ["x", "act_gamma"])
        #expect(try shapes(net, ["x": [2, 3, 4, 2]]).byName["act_gamma"] == [3])
        #expect(try shapes(net, ["x": [5, 7]]).byName["act_gamma"] == [7])
        #expect(try shapes(net, ["x": [2, 3, 4], "act_gamma": [1]]).outputs == [[2, 3, 4]])
        #expect(throws: GraphError.inputDoesNotFitWeight(node: "act", op: "LeakyReLU", input: "data", shape: [2, 3, 4],
                                                         weight: "gamma", weightShape: [2], expected: "(3,) or (1,)")) {
            _ = try shapes(net, ["x": [2, 3, 4], "act_gamma": [2]])
        }
        #expect(throws: GraphError.self) { _ = try shapes(net, ["x": [5]]) }
        let def = try #require(OpRegistry.shared.lookup("LeakyReLU"))
        #expect(def.weightInputs(["act_type": "prelu"]) == [1])
    }

    @Test func rreluHasAHiddenMask() throws {
        let net = Symbol.leakyReLU(x, kind: .rrelu, name: "rr")
        #expect(net.outputs.count == 1)
        #expect(net.listOutputs() == ["rr_output"])
        let g = net.graph
        #expect(try g.outputCount(of: g.nodes.count - 1) == 2)
        #expect(try g.inferShapes(["x": [2, 3]]).nodeOutputs.last == [[2, 3], [2, 3]])
    }

    @Test(arguments: [
        ([String: String](), [4, 5], [4]),
        ([:], [2, 3, 2, 2], [2, 3, 2]),
        (["multi_output": "True"], [2, 4, 3], [2, 3]),
        (["multi_output": "True"], [2, 4], [2, 1]),
        (["multi_output": "True"], [2, 4, 3, 5], [2, 15]),
        (["multi_output": "True", "preserve_shape": "True"], [2, 4, 3, 5], [2, 15]),
        (["preserve_shape": "True"], [2, 3, 4], [2, 3]),
        (["preserve_shape": "True"], [4, 5], [4]),
    ] as [([String: String], [Int], [Int])])
    func softmaxOutputInfersTheLabel(_ attrs: [String: String], _ data: [Int], _ label: [Int]) throws {
        let net = try Symbol.apply("SoftmaxOutput", [x], attributes: attrs, name: "so")
        #expect(net.listArguments() == ["x", "so_label"])
        let s = try shapes(net, ["x": Shape(data)])
        #expect(s.byName["so_label"] == Shape(label))
        #expect(s.outputs == [Shape(data)])
    }

    @Test func softmaxOutputChecksAGivenLabel() throws {
        let net = Symbol.softmaxOutput(x, name: "so")
        #expect(try shapes(net, ["x": [4, 5], "so_label": [4, 5]]).outputs == [[4, 5]])
        #expect(throws: GraphError.shapeMismatch(node: "so", op: "SoftmaxOutput", input: "label", expected: "(4,) or (4, 5)", actual: [3])) {
            _ = try shapes(net, ["x": [4, 5], "so_label": [3]])
        }
        let multi = Symbol.softmaxOutput(x, multiOutput: true, name: "mo")
        for label: Shape in [[2, 12], [2, 3, 4], [2, 1, 3, 4]] {
            #expect(try shapes(multi, ["x": [2, 5, 3, 4], "mo_label": label]).outputs == [[2, 5, 3, 4]])
        }
        #expect(throws: GraphError.self) { _ = try shapes(net, ["x": [7]]) }
    }

    @Test func softmaxChecksItsAxisAndTakesALength() throws {
        #expect(throws: GraphError.invalidShape(node: "sm", op: "softmax", reason: "axis 3 is out of range for the data of shape (2, 3)")) {
            _ = try shapes(.softmax(x, axis: 3, name: "sm"), ["x": [2, 3]])
        }
        #expect(try shapes(.logSoftmax(x, axis: -2), ["x": [2, 3]]).outputs == [[2, 3]])
        let withLength = try Symbol.apply("softmax", [x], attributes: ["use_length": "True", "axis": "1"], name: "sl")
        #expect(withLength.listArguments() == ["x", "sl_length"])
        #expect(try shapes(withLength, ["x": [2, 3, 4]]).byName["sl_length"] == [2, 4])
        // log_softmax has no length input in MXNet 1.9, even with use_length.
        let log = try Symbol.apply("log_softmax", [x], attributes: ["use_length": "True"], name: "ls")
        #expect(log.listArguments() == ["x"])
    }

    @Test func dropoutHasAHiddenMaskAndChecksItsAttributes() throws {
        let net = Symbol.dropout(x, p: 0.3, name: "do")
        #expect(net.listOutputs() == ["do_output"])
        #expect(try net.graph.inferShapes(["x": [4, 6]]).nodeOutputs.last == [[4, 6], [4, 6]])
        #expect(throws: GraphError.self) { _ = try shapes(.dropout(x, p: 1.5), ["x": [2]]) }
        #expect(throws: GraphError.self) { _ = try shapes(.dropout(x, axes: [2]), ["x": [2, 3]]) }
    }

    @Test func addNNamesItsInputsAndChecksShapes() throws {
        let net = try Symbol.addN([x, y, .variable("z")], name: "sum")
        #expect(net.listArguments() == ["x", "y", "z"])
        #expect(try shapes(net, ["x": [2, 3]]).byName["z"] == [2, 3])
        #expect(throws: GraphError.self) { _ = try shapes(net, ["x": [2, 3], "y": [2, 3], "z": [3]]) }
        #expect(throws: GraphError.self) { _ = try Symbol.addN([]) }
        let auto = try Symbol.apply("add_n", [], attributes: ["num_args": "2"], name: "an")
        #expect(auto.listArguments() == ["an_arg0", "an_arg1"])
    }
}

@Suite("ElementwiseOps types")
struct ElementwiseOpsTypeTests {
    let x = Symbol.variable("x")

    @Test(arguments: DType.allCases)
    func castSetsTheOutputType(_ t: DType) throws {
        #expect(try Symbol.cast(x, dtype: t).inferType(["x": .float16]).outputs == [t])
    }

    @Test func castToBoolIsRefused() throws {
        let net = try Symbol.apply("Cast", [x], attributes: ["dtype": "bool"], name: "c")
        #expect(throws: GraphError.self) { _ = try net.inferType(["x": .float32]) }
    }

    @Test func scalarOpsOnIntegersWithoutIsIntGiveFloat64() throws {
        #expect(try Symbol.plusScalar(x, 2.5).inferType(["x": .int32]).outputs == [.int32])
        let exact = try Symbol.apply("_mul_scalar", [x], attributes: ["scalar": "2.5", "is_int": "False"])
        #expect(try exact.inferType(["x": .int32]).outputs == [.float64])
        #expect(try exact.inferType(["x": .float16]).outputs == [.float16])
    }

    @Test func softmaxDTypeSetsTheOutputType() throws {
        #expect(try Symbol.softmax(x, dtype: .float64).inferType(["x": .float32]).outputs == [.float64])
        #expect(try Symbol.logSoftmax(x).inferType(["x": .float16]).outputs == [.float16])
    }

    @Test func binaryOpsRefuseMixedTypes() throws {
        let net = Symbol.elementwiseAdd(x, .variable("y"), name: "add")
        #expect(throws: GraphError.typeMismatch(node: "add", op: "elemwise_add", input: "rhs", expected: .float32, actual: .int32)) {
            _ = try net.inferType(["x": .float32, "y": .int32])
        }
    }
}

@Suite("ElementwiseOps registry")
struct ElementwiseOpsRegistryTests {
    @Test(arguments: [
        ("_Plus", "elemwise_add"), ("_plus", "elemwise_add"), ("_add", "elemwise_add"),
        ("_Minus", "elemwise_sub"), ("_minus", "elemwise_sub"), ("_sub", "elemwise_sub"),
        ("_Mul", "elemwise_mul"), ("_mul", "elemwise_mul"), ("_Div", "elemwise_div"), ("_div", "elemwise_div"),
        ("broadcast_plus", "broadcast_add"), ("broadcast_minus", "broadcast_sub"),
        ("ElementWiseSum", "add_n"), ("Softmax", "SoftmaxOutput"), ("identity", "_copy"), ("cast", "Cast"),
    ])
    func aliasesResolve(_ alias: String, _ name: String) {
        #expect(OpRegistry.shared.lookup(alias)?.name == name)
    }

    @Test func defaultsAreMXNets() throws {
        func resolved(_ op: String, _ attrs: Attributes = [:]) throws -> [String: String] {
            try #require(OpRegistry.shared.lookup(op)).resolve(attrs, node: "n").values
        }
        let leaky = try resolved("LeakyReLU")
        #expect(leaky["act_type"] == "leaky" && leaky["slope"] == "0.25" && leaky["lower_bound"] == "0.125" && leaky["upper_bound"] == "0.334")
        let scalar = try resolved("_power_scalar")
        #expect(scalar["scalar"] == "1.0" && AttributeText.bool(scalar["is_int"] ?? "") == true)
        let dropout = try resolved("Dropout")
        #expect(dropout["p"] == "0.5" && dropout["mode"] == "training" && dropout["axes"] == "()")
        let so = try resolved("SoftmaxOutput")
        #expect(so["grad_scale"] == "1.0" && so["ignore_label"] == "-1.0" && so["normalization"] == "null" && so["smooth_alpha"] == "0.0")
        let sm = try resolved("softmax")
        #expect(sm["axis"] == "-1" && sm["temperature"] == "None" && sm["dtype"] == "None")
        // GPU-only cudnn_off is accepted (and ignored).
        #expect(try resolved("Dropout", ["cudnn_off": "True"])["cudnn_off"] == "True")
        #expect(try resolved("Dropout", ["cudnn_off": "None"])["cudnn_off"] == "None")
    }

    @Test func requiredAndUnknownAttributesAreErrors() throws {
        let activation = try #require(OpRegistry.shared.lookup("Activation"))
        #expect(throws: GraphError.missingAttribute(node: "a", op: "Activation", attribute: "act_type")) {
            _ = try activation.resolve([:], node: "a")
        }
        #expect(throws: GraphError.self) { _ = try activation.resolve(["act_type": "swish"], node: "a") }
        let clip = try #require(OpRegistry.shared.lookup("clip"))
        #expect(throws: GraphError.missingAttribute(node: "c", op: "clip", attribute: "a_max")) {
            _ = try clip.resolve(["a_min": "0"], node: "c")
        }
        let relu = try #require(OpRegistry.shared.lookup("relu"))
        #expect(throws: GraphError.self) { _ = try relu.resolve(["slope": "0.1"], node: "r") }
    }

    @Test(arguments: [
        ("relu", FusionKind.elementwise), ("Activation", .elementwise), ("elemwise_add", .elementwise), ("_plus_scalar", .elementwise),
        ("add_n", .elementwise), ("clip", .elementwise), ("Cast", .elementwise), ("_copy", .elementwise),
        ("broadcast_add", .broadcast), ("LeakyReLU", .broadcast), ("softmax", .reduction), ("log_softmax", .reduction),
        ("SoftmaxOutput", .opaque), ("Dropout", .opaque),
    ])
    func fusionKinds(_ op: String, _ kind: FusionKind) {
        #expect(OpRegistry.shared.lookup(op)?.fusion == kind)
    }
}

@Suite("ElementwiseOps Symbol operators")
struct ElementwiseOpsOperatorTests {
    let a = Symbol.variable("a"), b = Symbol.variable("b")

    /// The op, attributes and input names of a single-output symbol's node.
    func node(_ s: Symbol) -> (op: String, attributes: [String: String], inputs: [String]) {
        let n = s.outputs[0].node
        return (n.op, n.attributes.values, n.inputs.map(\.node.name))
    }

    @Test func symbolWithSymbol() {
        let cases: [(Symbol, String, String)] = [(a + b, "elemwise_add", "_plus"), (a - b, "elemwise_sub", "_minus"),
                                                 (a * b, "elemwise_mul", "_mul"), (a / b, "elemwise_div", "_div")]
        for (s, op, prefix) in cases {
            let n = node(s)
            #expect(n.op == op && n.inputs == ["a", "b"] && n.attributes.isEmpty)
            #expect(isAutoName(s.name, prefix), "\(s.name ?? "?") should be \(prefix)N")
        }
    }

    @Test func symbolWithScalar() {
        let cases: [(Symbol, String, String, String)] = [
            (a + 1.0, "_plus_scalar", "1.0", "_plusscalar"), (1.0 + a, "_plus_scalar", "1.0", "_plusscalar"),
            (a - 2.5, "_minus_scalar", "2.5", "_minusscalar"), (1.0 - a, "_rminus_scalar", "1.0", "_rminusscalar"),
            (a * 2, "_mul_scalar", "2.0", "_mulscalar"), (3 * a, "_mul_scalar", "3.0", "_mulscalar"),
            (a / 4, "_div_scalar", "4.0", "_divscalar"), (2 / a, "_rdiv_scalar", "2.0", "_rdivscalar"),
            (-a, "_mul_scalar", "-1.0", "_mulscalar"),
        ]
        for (s, op, scalar, prefix) in cases {
            let n = node(s)
            #expect(n.op == op && n.inputs == ["a"] && n.attributes == ["scalar": scalar], "\(op)")
            #expect(isAutoName(s.name, prefix), "\(s.name ?? "?") should be \(prefix)N")
        }
    }

    @Test func expressionsBuildTheExpectedGraph() throws {
        // (a + b) * 0.5 - a  ->  elemwise_add, _mul_scalar, elemwise_sub, with a read twice.
        let s = (a + b) * 0.5 - a
        let g = s.graph
        #expect(g.nodes.map(\.op) == ["null", "null", "elemwise_add", "_mul_scalar", "elemwise_sub"])
        #expect(g.nodes[4].inputs == [Graph.Entry(node: 3, index: 0), Graph.Entry(node: 0, index: 0)])
        #expect(s.listArguments() == ["a", "b"])
        #expect(try s.inferShape(["a": [2, 3]]).outputs == [[2, 3]])
    }

    @Test func constructorsNameNodesAfterTheOp() {
        #expect(isAutoName(Symbol.activation(a, kind: .relu).name, "activation"))
        #expect(isAutoName(Symbol.leakyReLU(a).name, "leakyrelu"))
        #expect(isAutoName(Symbol.softmaxOutput(a).name, "softmaxoutput"))
        #expect(isAutoName(Symbol.cast(a, dtype: .int32).name, "cast"))
        #expect(isAutoName(try? Symbol.addN([a, b]).name, "add_n"))
        #expect(Symbol.softmaxOutput(a, name: "sm").listArguments() == ["a", "sm_label"])
    }

    @Test func constructorsWriteOnlyNonDefaultAttributes() {
        #expect(node(.leakyReLU(a)).attributes.isEmpty)
        #expect(node(.leakyReLU(a, kind: .elu, slope: 0.7)).attributes == ["act_type": "elu", "slope": "0.7"])
        #expect(node(.dropout(a, p: 0.2, mode: .always, axes: [1])).attributes == ["p": "0.2", "mode": "always", "axes": "(1,)"])
        #expect(node(.softmax(a, axis: 1, temperature: 2)).attributes == ["axis": "1", "temperature": "2.0"])
        #expect(node(.softmaxOutput(a, multiOutput: true, normalization: .valid)).attributes == ["multi_output": "True", "normalization": "valid"])
        #expect(node(.clip(a, min: -0.5, max: 0.5)).attributes == ["a_min": "-0.5", "a_max": "0.5"])
        #expect(node(.activation(a, kind: .softReLU)).attributes == ["act_type": "softrelu"])
    }

    @Test func jsonMatchesMXNetsForAnOperatorExpression() throws {
        // MXNet 1.9.1 writes SoftmaxOutput((a + b) * 2.0 - 1.0 / a, name='out') as these nodes (op, name
        // without its counter, attributes, inputs); the counters depend on what was built before.
        let expected: [(String, String, [String: String], [[Int]])] = [
            ("null", "a", [:], []), ("null", "b", [:], []),
            ("elemwise_add", "_plus", [:], [[0, 0, 0], [1, 0, 0]]),
            ("_mul_scalar", "_mulscalar", ["scalar": "2.0"], [[2, 0, 0]]),
            ("_rdiv_scalar", "_rdivscalar", ["scalar": "1.0"], [[0, 0, 0]]),
            ("elemwise_sub", "_minus", [:], [[3, 0, 0], [4, 0, 0]]),
            ("null", "out_label", [:], []),
            ("SoftmaxOutput", "out", [:], [[5, 0, 0], [6, 0, 0]]),
        ]
        let net = Symbol.softmaxOutput((a + b) * 2.0 - 1.0 / a, name: "out")
        let text = try net.jsonString()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        #expect(nodes.count == expected.count)
        for (n, e) in zip(nodes, expected) {
            #expect(n["op"] as? String == e.0)
            let name = n["name"] as? String ?? ""
            #expect(name == e.1 || isAutoName(name, e.1), "\(name) for \(e.1)")
            #expect((n["attrs"] as? [String: String] ?? [:]) == e.2)
            #expect((n["inputs"] as? [[Int]] ?? []) == e.3)
        }
        let reloaded = try Symbol(json: text)
        #expect(reloaded.listArguments() == ["a", "b", "out_label"])
        #expect(try reloaded.inferShape(["a": [2, 5], "b": [2, 5]]).byName["out_label"] == [2])
    }
}
