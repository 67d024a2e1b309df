import Foundation
import KilnCore
import KilnGraph
import TestSupport
import Testing

/// Structure of a graph that must survive a save and load: ops, names, attributes, edges, heads.
private func signature(_ s: Symbol) -> [String] {
    let g = s.graph
    return g.nodes.map { n in
        "\(n.op)|\(n.name)|\(n.attributes.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))|"
            + n.inputs.map { "\($0.node).\($0.index)" }.joined(separator: ",")
    } + ["heads:" + g.heads.map { "\($0.node).\($0.index)" }.joined(separator: ",")]
}

@Suite struct SymbolJSONTests {
    static let modelFiles = [
        "golden/models/lenet/lenet-symbol.json",
        "golden/models/cifar_resnet20_v1/cifar_resnet20_v1-symbol.json",
    ]

    @Test(arguments: Golden.opCaseNames.map { "golden/ops/\($0).json" } + modelFiles)
    func roundTripKeepsMeaning(file: String) throws {
        let original = try Symbol.load(jsonFile: Fixtures.url(file).path)
        let again = try Symbol(json: try original.jsonString(), source: "round trip of \(file)")
        #expect(signature(again) == signature(original))
        #expect(again.listArguments() == original.listArguments())
        #expect(again.listAuxiliaryStates() == original.listAuxiliaryStates())
        #expect(again.listOutputs() == original.listOutputs())
    }

    /// MXNet's own `arg_nodes`, `node_row_ptr` and `heads` must come out of our writer unchanged.
    @Test(arguments: Golden.opCaseNames.map { "golden/ops/\($0).json" } + modelFiles)
    func writerMatchesMXNetBookkeeping(file: String) throws {
        let url = Fixtures.url(file)
        let mx = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        let ours = try JSONSerialization.jsonObject(with: Data(try Symbol.load(jsonFile: url.path).jsonString().utf8)) as? [String: Any]
        for key in ["arg_nodes", "node_row_ptr"] {
            #expect((mx?[key] as? [Int]) == (ours?[key] as? [Int]), "\(key) differs")
        }
        #expect((mx?["heads"] as? [[Int]]) == (ours?["heads"] as? [[Int]]))
    }

    @Test func resnetListsMatchMXNet() throws {
        let s = try Symbol.load(jsonFile: Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1-symbol.json").path)
        let args = s.listArguments(), aux = s.listAuxiliaryStates()
        #expect(args.first == "data")
        #expect(args.count + aux.count == 108, "107 parameter arrays and the data")
        #expect(aux.count == 42)
        #expect(aux.allSatisfy { $0.hasSuffix("running_mean") || $0.hasSuffix("running_var") })
        let shapes = try s.inferShape(["data": [2, 3, 32, 32]])
        #expect(shapes.outputs == [[2, 10]])
    }

    /// Old files (`param`/`attr`, two-element inputs, missing weight inputs) upgrade as MXNet upgrades them.
    @Test(arguments: ["legacy", "legacy_implicit_inputs"])
    func legacyFilesUpgradeLikeMXNet(name: String) throws {
        let ours = try Symbol.load(jsonFile: Fixtures.url("golden/io/symbols/\(name).json").path)
        let mx = try Symbol.load(jsonFile: Fixtures.url("golden/io/symbols/\(name)-upgraded.json").path)
        #expect(ours.listArguments() == mx.listArguments())
        #expect(ours.listAuxiliaryStates() == mx.listAuxiliaryStates())
        #expect(ours.listOutputs() == mx.listOutputs())
        let ops = { (s: Symbol) in s.graph.nodes.filter { !$0.isVariable }.map { "\($0.op):\($0.name):\($0.attributes.values.filter { !$0.key.hasPrefix("__") }.sorted { $0.key < $1.key })" } }
        #expect(ops(ours) == ops(mx))
    }

    @Test(arguments: [
        ("{\"nodes\": [", "not valid JSON"),
        ("[1, 2]", "the top level"),
        ("{\"heads\": [[0, 0, 0]]}", "nodes"),
        ("{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}], \"heads\": [[3, 0, 0]]}", "heads[0]"),
        ("{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"relu\", \"name\": \"r\", \"inputs\": [[5, 0, 0]]}], \"heads\": [[1, 0, 0]]}", "nodes[1].inputs[0]"),
        ("{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"relu\", \"name\": \"r\", \"inputs\": [[\"a\", 0]]}], \"heads\": [[1, 0, 0]]}", "nodes[1].inputs[0]"),
        ("{\"nodes\": [{\"op\": 7, \"name\": \"x\", \"inputs\": []}], \"heads\": [[0, 0, 0]]}", "nodes[0].op"),
        ("{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"relu\", \"name\": \"r\", \"inputs\": [[0, 3, 0]]}], \"heads\": [[1, 0, 0]]}", "output 3 does not exist"),
    ])
    func malformedJSONNamesTheField(text: String, field: String) {
        do {
            _ = try Symbol(json: text, source: "bad.json")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("bad.json"), "\(error)")
            #expect("\(error)".contains(field), "\(error)")
        }
    }

    /// A model missing several ops (SSD, YOLOv3) hears of all of them at once, each with its first
    /// node and how many more use it.
    @Test func everyUnknownOpIsNamedAtOnce() {
        func node(_ op: String, _ name: String, _ input: Int) -> String {
            #"{"op": "\#(op)", "name": "\#(name)", "inputs": [[\#(input), 0, 0]]}"#
        }
        let nodes = [#"{"op": "null", "name": "x", "inputs": []}"#, node("_contrib_box_nms", "nms0", 0), node("relu", "r", 1),
                     node("_arange", "a0", 2), node("_contrib_box_nms", "nms1", 3), node("_contrib_box_nms", "nms2", 4)]
        let json = #"{"nodes": [\#(nodes.joined(separator: ", "))], "heads": [[5, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}}"#
        let expected = GraphError.unknownOps(ops: [UnknownOpUse(op: "_contrib_box_nms", firstNode: "nms0", count: 3),
                                                   UnknownOpUse(op: "_arange", firstNode: "a0", count: 1)], source: "ssd.json")
        #expect(throws: expected) { try Symbol(json: json, source: "ssd.json") }
        #expect("\(expected)" == "'ssd.json' uses 2 ops that Kiln's registry does not have: '_contrib_box_nms' (node 'nms0' and 2 more), '_arange' (node 'a0').")
    }

    @Test func unknownOpAndAttributeNameFileAndNode() {
        let unknownOp = "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"FancyOp\", \"name\": \"f0\", \"inputs\": [[0, 0, 0]]}], \"heads\": [[1, 0, 0]], \"attrs\": {\"mxnet_version\": [\"int\", 10901]}}"
        #expect(throws: GraphError.unknownOp(op: "FancyOp", node: "f0", source: "m.json")) { try Symbol(json: unknownOp, source: "m.json") }
        let badAttr = "{\"nodes\": [{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}, {\"op\": \"Activation\", \"name\": \"a0\", \"attrs\": {\"act_type\": \"wiggle\"}, \"inputs\": [[0, 0, 0]]}], \"heads\": [[1, 0, 0]], \"attrs\": {\"mxnet_version\": [\"int\", 10901]}}"
        do {
            _ = try Symbol(json: badAttr, source: "m.json")
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("m.json") && text.contains("a0") && text.contains("act_type") && text.contains("wiggle"), "\(text)")
        }
        let extraAttr = badAttr.replacingOccurrences(of: "\"act_type\": \"wiggle\"", with: "\"act_type\": \"relu\", \"colour\": \"red\"")
        do {
            _ = try Symbol(json: extraAttr, source: "m.json")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("colour"), "\(error)")
        }
    }

    @Test func missingFileIsAnError() {
        do {
            _ = try Symbol.load(jsonFile: "/nonexistent/model-symbol.json")
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("/nonexistent/model-symbol.json"))
        }
    }
}
