import KilnCore
import Testing
@testable import KilnGraph

/// Which arguments are labels of loss heads, from the op registry's `labelInputs`: optional at
/// inference, where bind fills them with zeros.
@Suite struct LabelArgumentTests {
    @Test func softmaxOutputsLabelIsALabel() {
        let fc = Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc")
        let net = Symbol.softmaxOutput(fc, name: "softmax")
        #expect(net.listArguments() == ["data", "fc_weight", "fc_bias", "softmax_label"])
        #expect(net.listLabelArguments() == ["softmax_label"])
    }

    @Test func aVariableAlsoReadAsDataIsNoLabel() throws {
        // `y` is the label and also added to the data: inference reads it, so it stays required.
        let y = Symbol.variable("y")
        let sum = try Symbol.apply("elemwise_add", [Symbol.variable("x"), y], name: "add")
        let net = Symbol.softmaxOutput(sum, label: y, name: "softmax")
        #expect(net.listLabelArguments().isEmpty)
    }

    @Test func aLabelThatIsAlsoAnOutputIsNoLabel() throws {
        let label = Symbol.variable("softmax_label")
        let net = Symbol.group([Symbol.softmaxOutput(.variable("x"), label: label, name: "softmax"), label])
        #expect(net.listLabelArguments().isEmpty)
    }

    @Test func graphsWithoutLossHeadsHaveNoLabels() {
        #expect(Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc").listLabelArguments().isEmpty)
    }

    /// Shape inference gives an ungiven label the shape SoftmaxOutput expects, so bind can fill it.
    @Test func theLabelsShapeIsInferredFromTheData() throws {
        let net = Symbol.softmaxOutput(Symbol.fullyConnected(.variable("data"), numHidden: 3, name: "fc"), name: "softmax")
        let shapes = try net.graph.inferShapes(["data": [5, 7]])
        #expect(shapes.byName["softmax_label"] == [5])
    }
}
