import KilnCore
import KilnGraph
import Testing

/// Shape rules, attribute schemas and Reshape's special codes of the tensor family. Expected shapes
/// come from MXNet 1.9.1's documentation and from running it (noted where it disagrees with Kiln).
@Suite struct TensorOpsShapeTests {
    // MARK: Reshape codes, hand-worked from MXNet's documentation of Reshape

    struct CodeCase: CustomTestStringConvertible, Sendable {
        let input: Shape, codes: [Int], reverse: Bool, expected: Shape
        init(_ input: Shape, _ codes: [Int], reverse: Bool = false, _ expected: Shape) {
            self.input = input
            self.codes = codes
            self.reverse = reverse
            self.expected = expected
        }
        var testDescription: String { "\(input) with \(codes)\(reverse ? " reversed" : "") -> \(expected)" }
    }

    static let codeCases: [CodeCase] = [
        // -1 infers one dim; positive dims are taken as they are.
        CodeCase([2, 3, 4], [6, 1, -1], [6, 1, 4]),
        CodeCase([2, 3, 4], [3, -1, 8], [3, 1, 8]),
        CodeCase([2, 3, 4], [-1], [24]),
        // 0 copies the input dim at the same position.
        CodeCase([2, 3, 4], [4, 0, 2], [4, 3, 2]),
        CodeCase([2, 3, 4], [2, 0, 0], [2, 3, 4]),
        // -2 copies the remaining dims.
        CodeCase([2, 3, 4], [-2], [2, 3, 4]),
        CodeCase([2, 3, 4], [2, -2], [2, 3, 4]),
        CodeCase([2, 3, 4], [-2, 1, 1], [2, 3, 4, 1, 1]),
        // -3 merges two consecutive dims.
        CodeCase([2, 3, 4], [-3, 4], [6, 4]),
        CodeCase([2, 3, 4, 5], [-3, -3], [6, 20]),
        CodeCase([2, 3, 4], [0, -3], [2, 12]),
        CodeCase([2, 3, 4], [-3, -2], [6, 4]),
        // -4 splits one dim into the next two entries, one of which may be -1.
        CodeCase([2, 3, 4], [-4, 1, 2, -2], [1, 2, 3, 4]),
        CodeCase([2, 3, 4], [2, -4, -1, 3, -2], [2, 1, 3, 4]),
        CodeCase([2, 6, 5], [0, -4, -1, 2, 0], [2, 3, 2, 5]),
        // reverse matches codes right to left.
        CodeCase([10, 5, 4], [-1, 0], [40, 5]),
        CodeCase([10, 5, 4], [-1, 0], reverse: true, [50, 4]),
        CodeCase([2, 3, 4], [0, -3], reverse: true, [2, 12]),
        CodeCase([2, 3, 4], [1, -1, 0], reverse: true, [1, 6, 4]),   // MXNet 1.9.1 gives (1, 6, 4)
        // Zero-size arrays reshape as numpy's do.
        CodeCase([2, 0, 4], [0, -1], [2, 0]),
    ]

    @Test(arguments: codeCases)
    func reshapeCodes(_ c: CodeCase) throws {
        #expect(try ShapeCodes.reshape(c.input, codes: c.codes, reverse: c.reverse) == c.expected)
    }

    struct BadCode: CustomTestStringConvertible, Sendable {
        let input: Shape, codes: [Int], reverse: Bool, mentions: String
        var testDescription: String { "\(input) with \(codes)" }
    }

    static let badCodes: [BadCode] = [
        BadCode(input: [2, 3, 4], codes: [-1, -1], reverse: false, mentions: "-1 twice"),
        BadCode(input: [2, 3, 4], codes: [0, 0, 0, 0], reverse: false, mentions: "after all 3 dims"),
        BadCode(input: [2, 3, 4], codes: [0, 0, -3], reverse: false, mentions: "code -3"),
        BadCode(input: [2, 3, 4], codes: [-4, -1, -1, -2], reverse: false, mentions: "at most one of them -1"),
        BadCode(input: [2, 3, 4], codes: [-4, 3, 3, -2], reverse: false, mentions: "do not multiply to 2"),
        BadCode(input: [2, 3, 4], codes: [-4, 2, -1, 0], reverse: true, mentions: "without the two dims"),
        BadCode(input: [2, 3, 4], codes: [-5, 4], reverse: false, mentions: "code -5"),
        // MXNet 1.9.1 accepts these and gives (5, 5) and (2, 3, 1); Kiln requires equal element counts.
        BadCode(input: [2, 3, 4], codes: [5, 5], reverse: false, mentions: "gives (5, 5) (25 elements) for the input (2, 3, 4) (24 elements)"),
        BadCode(input: [2, 3, 4], codes: [-2, 1], reverse: true, mentions: "gives (2, 3, 1)"),
        BadCode(input: [2, 3, 4], codes: [5, -1], reverse: false, mentions: "cannot infer its -1"),
        // With a zero-size dim among the others, -1 could be anything.
        BadCode(input: [2, 0, 4], codes: [-1, 0], reverse: false, mentions: "cannot infer its -1"),
    ]

    @Test(arguments: badCodes)
    func reshapeCodeErrors(_ c: BadCode) {
        #expect {
            _ = try ShapeCodes.reshape(c.input, codes: c.codes, reverse: c.reverse)
        } throws: { error in
            String(describing: error).contains(c.mentions)
        }
    }

    @Test func legacyTargetShape() throws {
        #expect(try ShapeCodes.legacyReshape([2, 3, 4], target: [0, 4]) == [6, 4])
        #expect(try ShapeCodes.legacyReshape([2, 3, 4], target: [4, 6]) == [4, 6])
        #expect(try ShapeCodes.legacyReshape([2, 3, 4], target: [7, 0], keepHighest: true) == [2, 12])
        #expect(try ShapeCodes.legacyReshape([2, 3, 4], target: [7, 3, 0], keepHighest: true) == [2, 3, 4])
        #expect(try ShapeCodes.legacyReshape([2, 3, 4], target: [0, 0], keepHighest: true) == [2, 12])
        // Two zeros: nothing is inferred, and (0, 0) does not hold 24 elements.
        #expect(throws: ShapeCodes.Failure.self) { try ShapeCodes.legacyReshape([2, 3, 4], target: [0, 0]) }
        #expect(throws: ShapeCodes.Failure.self) { try ShapeCodes.legacyReshape([2, 3, 4], target: [-1, 6]) }
    }

    // MARK: Shape rules through inference

    func inferred(_ s: Symbol, _ shapes: [String: Shape]) throws -> [Shape] { try s.inferShape(shapes).outputs }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return String(describing: error) }
        return "no error"
    }

    @Test func flattenShapes() throws {
        let x = Symbol.variable("x")
        #expect(try inferred(.flatten(x), ["x": [2, 3, 4, 5]]) == [[2, 60]])
        #expect(try inferred(.flatten(x), ["x": [3, 4]]) == [[3, 4]])
        #expect(try inferred(.flatten(x), ["x": [5]]) == [[5, 1]])
        #expect(message { _ = try inferred(.flatten(x, name: "f"), ["x": []]) }.contains("'f'"))
    }

    @Test func reshapeThroughInference() throws {
        let x = Symbol.variable("x")
        #expect(try inferred(.reshape(x, shape: [0, -1]), ["x": [2, 3, 4]]) == [[2, 12]])
        #expect(try inferred(.reshape(x, shape: [-1, 0], reverse: true), ["x": [2, 3, 4]]) == [[6, 4]])
        let legacy = try Symbol.apply("Reshape", [x], attributes: ["target_shape": "(0, 4)"])
        #expect(try inferred(legacy, ["x": [2, 3, 4]]) == [[6, 4]])
        let keep = try Symbol.apply("Reshape", [x], attributes: ["target_shape": "(7, 0)", "keep_highest": "True"])
        #expect(try inferred(keep, ["x": [2, 3, 4]]) == [[2, 12]])
    }

    @Test func reshapeElementCountMismatchNamesNodeInputAndRequest() {
        let text = message { _ = try inferred(.reshape(.variable("x"), shape: [5, 5], name: "r"), ["x": [2, 3, 4]]) }
        #expect(text.contains("'r'"))
        #expect(text.contains("(2, 3, 4)"))
        #expect(text.contains("shape (5, 5)"))
        let none = message { _ = try inferred(try Symbol.apply("Reshape", [.variable("x")], name: "r0"), ["x": [2, 3]]) }
        #expect(none.contains("'r0'") && none.contains("needs the attribute shape"))
    }

    @Test func transposeShapes() throws {
        let x = Symbol.variable("x")
        #expect(try inferred(.transpose(x), ["x": [2, 3, 4]]) == [[4, 3, 2]])
        #expect(try inferred(.transpose(x, axes: [0, 2, 1, 3]), ["x": [2, 3, 4, 5]]) == [[2, 4, 3, 5]])
        #expect(try inferred(.transpose(x), ["x": [7]]) == [[7]])
        // MXNet 1.9.1 accepts (0, 0, 1) and gives (4, 4, 3); a non-permutation is an error here.
        for bad in [[0, 1], [0, 0, 1], [0, -1, 1]] {
            let text = message { _ = try inferred(.transpose(x, axes: bad, name: "t"), ["x": [4, 3, 2]]) }
            #expect(text.contains("'t'") && text.contains("not a permutation"))
        }
    }

    @Test(arguments: [(0, [1, 3, 4]), (1, [3, 1, 4]), (2, [3, 4, 1]), (-1, [3, 4, 1]), (-3, [1, 3, 4])] as [(Int, Shape)])
    func expandDims(axis: Int, expected: Shape) throws {
        #expect(try inferred(.expandDims(.variable("x"), axis: axis), ["x": [3, 4]]) == [expected])
    }

    @Test func expandDimsOutOfRange() {
        for axis in [3, -4] {
            let text = message { _ = try inferred(.expandDims(.variable("x"), axis: axis, name: "e"), ["x": [3, 4]]) }
            #expect(text.contains("'e'") && text.contains("axis \(axis)") && text.contains("[-3, 2]"))
        }
    }

    @Test func concatShapesAndNames() throws {
        let a = Symbol.variable("a"), b = Symbol.variable("b"), c = Symbol.variable("c")
        #expect(try inferred(.concat([a, b, c]), ["a": [2, 1, 4], "b": [2, 3, 4], "c": [2, 2, 4]]) == [[2, 6, 4]])
        #expect(try inferred(.concat([a, b], dim: 0), ["a": [2, 3], "b": [4, 3]]) == [[6, 3]])
        #expect(try inferred(.concat([a, b], dim: -1), ["a": [2, 3, 2], "b": [2, 3, 3]]) == [[2, 3, 5]])
        // Inputs MXNet creates itself are named arg0, arg1, ... as its list_arguments shows.
        let auto = try Symbol.apply("Concat", [], attributes: ["num_args": "3"], name: "cat")
        #expect(auto.listArguments() == ["cat_arg0", "cat_arg1", "cat_arg2"])
        #expect(Symbol.concat([a, b]).outputs[0].node.attributes.values == ["num_args": "2"])
    }

    @Test func concatMismatchNamesNodeInputAndBothShapes() {
        let text = message {
            _ = try inferred(.concat([.variable("a"), .variable("b")], dim: 1, name: "cat"), ["a": [2, 3, 4], "b": [2, 3, 5]])
        }
        #expect(text.contains("'cat'"))
        #expect(text.contains("'arg1'"))
        #expect(text.contains("(2, 3, 5)") && text.contains("(2, 3, 4)"))
        #expect(text.contains("axis 2"))
        let rank = message { _ = try inferred(.concat([.variable("a"), .variable("b")], name: "cat"), ["a": [2, 3, 4], "b": [2, 3]]) }
        #expect(rank.contains("'arg1'") && rank.contains("(2, 3)") && rank.contains("same rank"))
        let dim = message { _ = try inferred(.concat([.variable("a"), .variable("b")], dim: 3, name: "cat"), ["a": [2, 3, 4], "b": [2, 3, 4]]) }
        #expect(dim.contains("dim 3"))
    }

    @Test func concatInputCountMustMatchNumArgs() {
        let a = Symbol.variable("a")
        let node = SymbolNode(op: "Concat", name: "cat", attributes: ["num_args": "3"], inputs: [a.outputs[0], a.outputs[0]])
        let text = message { _ = try Symbol(outputs: [SymbolEntry(node: node, index: 0)]).inferShape(["a": [2, 2]]) }
        #expect(text.contains("'cat'") && text.contains("num_args=3"))
    }

    @Test func splitShapesAndOutputs() throws {
        let x = Symbol.variable("x")
        let s = Symbol.split(x, numOutputs: 3, name: "s")
        #expect(s.outputs.count == 3)
        #expect(s.listOutputs() == ["s_output0", "s_output1", "s_output2"])
        #expect(try inferred(s, ["x": [2, 6, 2]]) == [[2, 2, 2], [2, 2, 2], [2, 2, 2]])
        #expect(try inferred(.split(x, numOutputs: 4, axis: 2, squeezeAxis: true), ["x": [2, 3, 4]]) == Array(repeating: [2, 3], count: 4))
        #expect(try inferred(.split(x, numOutputs: 2, axis: -2), ["x": [2, 4]]) == [[1, 4], [1, 4]])
        #expect(try inferred(.split(x, numOutputs: 4, axis: 0, squeezeAxis: true), ["x": [4]]) == Array(repeating: [], count: 4))
        #expect(try inferred(s[1], ["x": [2, 6, 2]]) == [[2, 2, 2]])
    }

    @Test func splitErrors() {
        let x = Symbol.variable("x")
        #expect(message { _ = try inferred(.split(x, numOutputs: 3, name: "s"), ["x": [2, 4]]) }.contains("cannot be split into 3"))
        #expect(message { _ = try inferred(.split(x, numOutputs: 2, squeezeAxis: true, name: "s"), ["x": [2, 4]]) }.contains("squeeze_axis"))
        #expect(message { _ = try inferred(.split(x, numOutputs: 2, axis: 2, name: "s"), ["x": [2, 4]]) }.contains("axis 2 is outside"))
    }

    @Test(arguments: [
        (1, 1, 3, [2, 5, 3], [2, 2, 3]),
        (-1, -3, -1, [2, 3, 6], [2, 3, 2]),
        (0, 2, nil, [5, 3], [3, 3]),
        (2, -2, nil, [2, 3, 4], [2, 3, 2]),
    ] as [(Int, Int, Int?, Shape, Shape)])
    func sliceAxisShapes(axis: Int, begin: Int, end: Int?, input: Shape, expected: Shape) throws {
        #expect(try inferred(.sliceAxis(.variable("x"), axis: axis, begin: begin, end: end), ["x": input]) == [expected])
    }

    @Test(arguments: [
        (0, 1, 1, "[1, 1)"), (0, 2, 1, "[2, 1)"), (0, 1, 6, "[1, 6)"), (0, -6, 2, "[-2, 2)"), (0, 4, nil, "[4, 4)"),
        (2, 0, 2, "axis 2 is outside"),
    ] as [(Int, Int, Int?, String)])
    func sliceAxisOutOfRange(axis: Int, begin: Int, end: Int?, mentions: String) {
        let text = message { _ = try inferred(.sliceAxis(.variable("x"), axis: axis, begin: begin, end: end, name: "sl"), ["x": [4, 3]]) }
        #expect(text.contains("'sl'") && text.contains(mentions) && text.contains("(4, 3)"))
    }

    @Test func padShapes() throws {
        let x = Symbol.variable("x")
        #expect(try inferred(.pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 2, 2, 1]), ["x": [1, 2, 3, 3]]) == [[1, 2, 6, 6]])
        #expect(try inferred(.pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 1, 1, 1, 0, 0, 1]), ["x": [1, 1, 3, 3, 3]]) == [[1, 1, 5, 4, 4]])
    }

    @Test func padErrors() {
        let x = Symbol.variable("x")
        let threeD = message { _ = try inferred(.pad(x, mode: .constant, padWidth: [0, 0, 1, 1, 1, 1], name: "p"), ["x": [1, 3, 3]]) }
        #expect(threeD.contains("'p'") && threeD.contains("rank 4 or 5") && threeD.contains("(1, 3, 3)"))
        #expect(message { _ = try inferred(.pad(x, mode: .constant, padWidth: [1, 0, 0, 0, 1, 1, 1, 1]), ["x": [1, 1, 3, 3]]) }.contains("first two axes"))
        #expect(message { _ = try inferred(.pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 1]), ["x": [1, 1, 3, 3]]) }.contains("needs 8"))
        #expect(message { _ = try inferred(.pad(x, mode: .reflect, padWidth: [0, 0, 0, 0, 3, 3, 1, 1]), ["x": [1, 1, 3, 3]]) }.contains("smaller than its extent 3"))
        #expect(message { _ = try inferred(.pad(x, mode: .constant, padWidth: [0, 0, 0, 0, -1, 0, 0, 1]), ["x": [1, 1, 3, 3]]) }.contains("negative"))
        // mode has no default in MXNet.
        let noMode = message { _ = try inferred(try Symbol.apply("Pad", [x], attributes: ["pad_width": "(0, 0, 0, 0, 1, 1, 1, 1)"], name: "p"), ["x": [1, 1, 3, 3]]) }
        #expect(noMode.contains("'p'") && noMode.contains("mode"))
    }

    /// Output shapes MXNet 1.9.1 gives for input (2, 3, 4).
    @Test(arguments: [
        ([:], [1]),
        (["keepdims": "True"], [1, 1, 1]),
        (["axis": "()"], [1]),
        (["axis": "()", "exclude": "True"], [1]),
        (["axis": "1"], [2, 4]),
        (["axis": "-1", "keepdims": "True"], [2, 3, 1]),
        (["axis": "(0, 2)"], [3]),
        (["axis": "(1, 2)", "keepdims": "True"], [2, 1, 1]),
        (["axis": "1", "exclude": "True"], [3]),
        (["axis": "1", "exclude": "True", "keepdims": "True"], [1, 3, 1]),
        (["axis": "(0, 1, 2)", "exclude": "True"], [2, 3, 4]),
        (["axis": "(0, 1, 2)"], [1]),
    ] as [([String: String], Shape)])
    func reductionShapes(attributes: [String: String], expected: Shape) throws {
        for op in ["sum", "mean", "sum_axis"] {
            #expect(try inferred(try Symbol.apply(op, [.variable("x")], attributes: attributes), ["x": [2, 3, 4]]) == [expected])
        }
    }

    @Test func reductionErrors() {
        let x = Symbol.variable("x")
        #expect(message { _ = try inferred(.sum(x, axis: [1, -2], name: "s"), ["x": [2, 3, 4]]) }.contains("twice"))
        #expect(message { _ = try inferred(.sum(x, axis: [3], name: "s"), ["x": [2, 3, 4]]) }.contains("axis 3 is outside"))
        #expect(message { _ = try inferred(.mean(x, axis: [-4], name: "m"), ["x": [2, 3, 4]]) }.contains("'m'"))
    }

    // MARK: Registry

    @Test func namesAndAliases() throws {
        let pairs = [("flatten", "Flatten"), ("reshape", "Reshape"), ("concat", "Concat"), ("split", "SliceChannel"),
                     ("pad", "Pad"), ("sum_axis", "sum"), ("transpose", "transpose"), ("expand_dims", "expand_dims"),
                     ("slice_axis", "slice_axis"), ("mean", "mean")]
        for (alias, name) in pairs { #expect(OpRegistry.shared.lookup(alias)?.name == name) }
        let kinds = ["Flatten", "Reshape", "transpose", "expand_dims", "Concat", "SliceChannel", "slice_axis", "Pad"]
        for k in kinds { #expect(OpRegistry.shared.lookup(k)?.fusion == .injective) }
        #expect(OpRegistry.shared.lookup("sum")?.fusion == .reduction)
        #expect(OpRegistry.shared.lookup("mean")?.fusion == .reduction)
    }

    @Test func defaultsAreMXNets() throws {
        func resolved(_ op: String, _ given: Attributes) throws -> [String: String] {
            try OpRegistry.shared.definition(op, node: "n").resolve(given, node: "n").values
        }
        #expect(try resolved("Reshape", [:]) == ["shape": "()", "reverse": "False", "target_shape": "()", "keep_highest": "False"])
        #expect(try resolved("transpose", [:]) == ["axes": "()"])
        #expect(try resolved("Concat", ["num_args": "2"]) == ["num_args": "2", "dim": "1"])
        #expect(try resolved("SliceChannel", ["num_outputs": "2"]) == ["num_outputs": "2", "axis": "1", "squeeze_axis": "False"])
        #expect(try resolved("Pad", ["mode": "edge", "pad_width": "()"])["constant_value"] == "0")
        #expect(try resolved("sum", [:]) == ["axis": "None", "keepdims": "False", "exclude": "False"])
        #expect(throws: GraphError.self) { try resolved("slice_axis", ["axis": "0", "begin": "1"]) }
        #expect(throws: GraphError.self) { try resolved("expand_dims", [:]) }
        #expect(throws: GraphError.self) { try resolved("Concat", [:]) }
        #expect(throws: GraphError.self) { try resolved("Pad", ["mode": "wrap", "pad_width": "()"]) }
        #expect(throws: GraphError.self) { try resolved("Flatten", ["axis": "1"]) }
    }

    @Test func constructorsWriteMXNetAttributes() {
        let x = Symbol.variable("x")
        func attrs(_ s: Symbol) -> [String: String] { s.outputs[0].node.attributes.values }
        #expect(attrs(.reshape(x, shape: [0, -1])) == ["shape": "(0, -1)"])
        #expect(attrs(.reshape(x, shape: [-1], reverse: true)) == ["shape": "(-1,)", "reverse": "True"])
        #expect(attrs(.transpose(x)) == [:])
        #expect(attrs(.split(x, numOutputs: 2, axis: 0, squeezeAxis: true)) == ["num_outputs": "2", "axis": "0", "squeeze_axis": "True"])
        #expect(attrs(.sliceAxis(x, axis: 0, begin: 2, end: nil)) == ["axis": "0", "begin": "2", "end": "None"])
        #expect(attrs(.pad(x, mode: .constant, padWidth: [0, 0, 0, 0, 1, 1, 1, 1], constantValue: 1.5))
            == ["mode": "constant", "pad_width": "(0, 0, 0, 0, 1, 1, 1, 1)", "constant_value": "1.5"])
        #expect(attrs(.sum(x, axis: [1])) == ["axis": "1"])
        #expect(attrs(.mean(x, axis: [0, 2], keepDims: true)) == ["axis": "(0, 2)", "keepdims": "True"])
    }

    @Test func typesFollowTheInput() throws {
        let s = Symbol.split(.variable("x"), numOutputs: 2)
        #expect(try s.inferType(["x": .int32]).outputs == [.int32, .int32])
        #expect(try Symbol.mean(.variable("x")).inferType(["x": .float64]).outputs == [.float64])
    }
}
