import KilnGraph
import Testing

@Suite struct AttributeTextTests {
    @Test(arguments: [
        ("(3, 3)", [3, 3]), ("(3,)", [3]), ("()", []), ("[1,2,3]", [1, 2, 3]), ("5", [5]), (" (2, 2) ", [2, 2]),
    ])
    func intTuples(text: String, expected: [Int]) {
        #expect(AttributeText.intTuple(text) == expected)
    }

    @Test(arguments: ["(3, x)", "(3,,3)", "(3", "abc", ""])
    func badIntTuples(text: String) {
        #expect(AttributeText.intTuple(text) == nil)
    }

    @Test func boolsAndNumbers() {
        #expect(AttributeText.bool("True") == true)
        #expect(AttributeText.bool("0") == false)
        #expect(AttributeText.bool("yes") == nil)
        #expect(AttributeText.double("1e-05") == 1e-5)
        #expect(AttributeText.double("-inf") == -.infinity)
        #expect(AttributeText.tuple([3]) == "(3,)")
        #expect(AttributeText.tuple([3, 3]) == "(3, 3)")
        #expect(AttributeText.optionalIntTuple("(None, 2)") == [nil, 2])
    }

    @Test func typedGettersNameTheNode() throws {
        let a = Attributes(["kernel": "(3, x)", "no_bias": "maybe"], node: "conv7", op: "Convolution")
        #expect(throws: GraphError.invalidAttribute(node: "conv7", op: "Convolution", attribute: "kernel", value: "(3, x)",
                                                    expected: "a tuple of integers such as (3, 3)")) { try a.ints("kernel") }
        do {
            _ = try a.bool("no_bias")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("conv7") && "\(error)".contains("no_bias") && "\(error)".contains("maybe"))
        }
        #expect(throws: GraphError.missingAttribute(node: "conv7", op: "Convolution", attribute: "num_filter")) { try a.int("num_filter") }
    }
}
