import Foundation
import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// The `_kiln_engine` op: its inputs and outputs come from the inner graph, its rules infer through
/// it, and it survives symbol JSON.
@Suite struct EngineOpTests {
    /// An engine node around `conv -> BatchNorm -> relu`, reading data, the conv weight and BatchNorm's
    /// four parameters (two of them auxiliary states).
    static func engineSymbol() throws -> Symbol {
        let data = Symbol.variable("data")
        let conv = Symbol.make("Convolution", [data, .variable("conv_weight")],
                               attributes: ["kernel": "(3, 3)", "pad": "(1, 1)", "num_filter": "3", "no_bias": "True"], name: "conv")
        let bn = Symbol.make("BatchNorm", [conv, .variable("bn_gamma"), .variable("bn_beta"), .variable("bn_moving_mean"), .variable("bn_moving_var")],
                             attributes: ["fix_gamma": "False"], name: "bn")
        let relu = Symbol.make("relu", [bn], name: "relu")
        let inner = Symbol.group([relu, conv])
        let attributes = try EngineSubgraph.attributes(subgraph: inner, backend: "fake", options: "precision=fp32")
        let sub = try EngineSubgraph(attributes)
        let inputs = sub.inputNames.map { Symbol.variable($0) }
        return try Symbol.apply(EngineSubgraph.opName, inputs, attributes: attributes.values, name: "kiln_engine0")
    }

    @Test func inputsAreArgumentsThenAuxiliaryStates() throws {
        let s = try Self.engineSymbol()
        #expect(s.listArguments() == ["data", "conv_weight", "bn_gamma", "bn_beta"])
        #expect(s.listAuxiliaryStates() == ["bn_moving_mean", "bn_moving_var"])
        #expect(s.listOutputs() == ["kiln_engine0_relu_output", "kiln_engine0_conv_output"])
    }

    @Test func shapesAndTypesInferThroughTheInnerGraph() throws {
        let s = try Self.engineSymbol()
        let shapes = try s.inferShape(["data": [2, 5, 4, 4]])
        #expect(shapes.outputs == [[2, 3, 4, 4], [2, 3, 4, 4]])
        #expect(shapes.byName["conv_weight"] == [3, 5, 3, 3])
        #expect(shapes.auxiliaryStates == [[3], [3]])
        let types = try s.inferType(["data": .float32])
        #expect(types.outputs == [.float32, .float32])
        #expect(types.byName["bn_moving_var"] == .float32)
    }

    @Test func shapeErrorsNameTheInnerNode() throws {
        let s = try Self.engineSymbol()
        do {
            _ = try s.inferShape(["data": [2, 5, 4, 4], "conv_weight": [3, 4, 3, 3]])
            Issue.record("expected a shape error")
        } catch {
            #expect("\(error)".contains("'conv'"), "\(error)")
        }
    }

    @Test func roundTripsThroughSymbolJSON() throws {
        let s = try Self.engineSymbol()
        let text = try s.jsonString()
        let again = try Symbol(json: text, source: "round trip")
        #expect(try again.jsonString() == text)
        #expect(again.listArguments() == s.listArguments())
        #expect(again.listAuxiliaryStates() == s.listAuxiliaryStates())
        #expect(again.listOutputs() == s.listOutputs())
        let node = again.graph.nodes.last
        #expect(node?.op == "_kiln_engine")
        #expect(node?.attributes["backend"] == "fake")
        #expect(node?.attributes["options"] == "precision=fp32")
        #expect(node?.attributes["num_inputs"] == "6")
        #expect(node?.attributes["num_outputs"] == "2")
        // The subgraph attribute is itself symbol JSON, on one line.
        let inner = try Symbol(json: node?.attributes["subgraph"] ?? "", source: "subgraph")
        #expect(inner.listOutputs() == ["relu_output", "conv_output"])
        let subgraphText = node?.attributes["subgraph"] ?? "\n"
        #expect(!subgraphText.contains("\n"))
        // And the file MXNet's bookkeeping reads: the engine node has two outputs in node_row_ptr.
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let rowPtr = object?["node_row_ptr"] as? [Int] ?? []
        #expect(rowPtr.suffix(2) == [6, 8])
    }

    @Test func badAttributesAreErrorsThatNameTheNode() throws {
        let s = try Self.engineSymbol()
        let text = try s.jsonString()
        let wrongCount = text.replacingOccurrences(of: "\"num_inputs\": \"6\"", with: "\"num_inputs\": \"5\"")
        #expect(wrongCount != text)
        do {
            _ = try Symbol(json: wrongCount, source: "edited.json")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("kiln_engine0") && "\(error)".contains("num_inputs"), "\(error)")
        }
        let brokenSubgraph = text.replacingOccurrences(of: "{\\\"nodes\\\"", with: "{\\\"nodez\\\"")
        #expect(brokenSubgraph != text)
        #expect(throws: GraphError.self) { _ = try Symbol(json: brokenSubgraph, source: "edited.json") }
    }

    @Test func runsThroughTheEngineNodeFactory() throws {
        let s = try Self.engineSymbol()
        var rng = SeededGenerator(seed: 3)
        let params: [String: NDArray] = [
            "conv_weight": randomArray([3, 5, 3, 3], &rng), "bn_gamma": randomArray([3], &rng), "bn_beta": randomArray([3], &rng),
            "bn_moving_mean": randomArray([3], &rng), "bn_moving_var": NDArray(shape: [3], values: [0.5, 1, 2]),
        ]
        let data = ["data": randomArray([2, 5, 4, 4], &rng)]
        let engine = FakeEngine(supporting: ["Convolution", "BatchNorm", "relu"])
        let got = try run(s, inputs: data, params: params, backend: engineBackend(engine, constants: params))
        // The same graph without the engine node, on the framework.
        let sub = try EngineSubgraph(try s.graph.resolvedAttributes(of: s.graph.nodes.count - 1))
        let expected = try run(sub.graph.symbol, inputs: data, params: params, backend: OpByOpBackend.framework)
        #expect(got.count == 2)
        for (a, b) in zip(got, expected) { expectClose(a, b, relative: 1e-5, "engine node output") }
    }

    @Test func unknownEnginesAndMissingWeightsAreErrors() throws {
        let s = try Self.engineSymbol()
        let engine = FakeEngine(name: "other", supporting: ["Convolution", "BatchNorm", "relu"])
        do {
            _ = try s.bind(shapes: ["data": [1, 5, 4, 4]], backend: EngineNode.backend(engines: ["other": engine], constants: [:]))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("'fake'") && "\(error)".contains("other"), "\(error)")
        }
        // Bound without constants, the fake engine refuses the conv: its weight is not known at bind.
        let fake = FakeEngine(supporting: ["Convolution", "BatchNorm", "relu"])
        do {
            _ = try s.bind(shapes: ["data": [1, 5, 4, 4]], backend: engineBackend(fake, constants: [:]))
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("'conv'") && "\(error)".contains("not known at bind"), "\(error)")
        }
    }
}
