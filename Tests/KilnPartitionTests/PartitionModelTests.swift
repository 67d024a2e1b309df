import Foundation
import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// LeNet-5 and cifar_resnet20_v1 (exported by MXNet 1.9.1) partitioned for a fake engine that
/// supports the usual CNN ops: the reports (snapshots under `Tests/Fixtures/partition/`), and the
/// partitioned models' outputs against the framework's, with and without excluding `elemwise_add`.
///
/// Set `KILN_UPDATE_SNAPSHOTS=1` to rewrite the snapshots after an intended change of the report.
@Suite struct PartitionModelTests {
    static let cnnOps: Set<String> = ["Convolution", "BatchNorm", "Activation", "elemwise_add", "Pooling", "FullyConnected", "Flatten"]
    /// Inside the fake engine, the framework's kernels (the models would be slow on the reference ones).
    static let engine = FakeEngine(supporting: cnnOps, kernels: OpByOpBackend.framework.kernels)

    struct Model {
        let symbol: Symbol
        let args: [String: NDArray]
        let aux: [String: NDArray]
        let input: NDArray
        var params: [String: NDArray] { args.merging(aux) { a, _ in a } }

        init(_ name: String) throws {
            let base = Fixtures.url("golden/models/\(name)/\(name)").path
            (symbol, args, aux) = try Checkpoint.load(prefix: base, epoch: 0)
            input = try NDArray.load(npyFile: Fixtures.url("golden/models/\(name)/input.npy").path)
        }

        func partitioned(_ options: PartitionOptions = PartitionOptions()) throws -> (Symbol, PartitionReport) {
            try symbol.partitioned(for: PartitionModelTests.engine, options: options, argParams: args, auxParams: aux,
                                   shapes: ["data": input.shape])
        }
    }

    /// Compares `text` with the snapshot file, or writes it when `KILN_UPDATE_SNAPSHOTS=1`.
    static func expectSnapshot(_ text: String, _ file: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let url = Fixtures.url("partition/\(file)")
        if ProcessInfo.processInfo.environment["KILN_UPDATE_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
            return
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text == expected, "the report differs from \(file); rerun with KILN_UPDATE_SNAPSHOTS=1 if the change is intended", sourceLocation: sourceLocation)
    }

    @Test func lenetReport() throws {
        let (_, report) = try Model("lenet").partitioned()
        #expect(report.groups.count == 1)
        #expect(report.groups.first?.nodes.count == 10)
        #expect(report.frameworkNodes.map(\.name) == ["softmax"])
        #expect(report.reason(of: "softmax") == .unsupportedOp("SoftmaxOutput"))
        #expect(report.groups.first?.bakedWeights == ["conv1_weight", "conv1_bias", "conv2_weight", "conv2_bias",
                                                      "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"])
        #expect((report.flopShare ?? 0) > 0.99)
        try Self.expectSnapshot(report.text(), "lenet.txt")

        // The JSON carries the same content.
        let json = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any] ?? [:]
        #expect(json["op_nodes"] as? Int == 11)
        #expect(json["offloaded_op_nodes"] as? Int == 10)
        #expect(json["min_group_size"] as? Int == 2)
        #expect((json["total_flops"] as? Double).map { abs($0 - (report.totalFLOPs ?? 0)) < 1 } == true)
        let groups = json["groups"] as? [[String: Any]] ?? []
        #expect(groups.first?["name"] as? String == "kiln_engine0")
        #expect((groups.first?["nodes"] as? [[String: String]])?.map { $0["name"] ?? "" } == report.groups.first?.nodes.map(\.name))
        #expect(groups.first?["baked_weights"] as? [String] == report.groups.first?.bakedWeights)
        let framework = json["framework_nodes"] as? [[String: String]] ?? []
        #expect(framework == [["name": "softmax", "op": "SoftmaxOutput", "reason": "unsupported_op", "detail": "unsupported op SoftmaxOutput"]])
    }

    /// Without shapes the report still explains every node, and says FLOPs are unknown.
    @Test func reportWithoutShapes() throws {
        let model = try Model("lenet")
        let (_, report) = try model.symbol.partitioned(for: Self.engine, argParams: model.args, auxParams: model.aux)
        #expect(report.totalFLOPs == nil && report.flopShare == nil)
        #expect(report.text().contains("FLOPs unknown"))
        #expect(report.groups.first?.nodes.count == 10)
    }

    @Test func resnetReport() throws {
        let model = try Model("cifar_resnet20_v1")
        let (partitioned, report) = try model.partitioned()
        #expect(report.groups.count == 1)
        #expect(report.opNodeCount == 71)
        #expect(report.frameworkNodes.isEmpty)
        #expect(report.nodeShare == 1)
        // Every parameter is read by the one group: all 107 are baked, and still bind by name.
        #expect(report.bakedWeights.count == 107)
        #expect(Set(partitioned.listArguments()) == Set(model.symbol.listArguments()))
        #expect(Set(partitioned.listAuxiliaryStates()) == Set(model.symbol.listAuxiliaryStates()))
        try Self.expectSnapshot(report.text(), "cifar_resnet20_v1.txt")

        let (_, split) = try model.partitioned(PartitionOptions(excludedOps: ["elemwise_add"]))
        #expect(split.frameworkNodes.count == 9)
        #expect(split.frameworkNodes.allSatisfy { $0.reason == .excludedByUser })
        #expect(split.groups.count == 10)
        try Self.expectSnapshot(split.text(), "cifar_resnet20_v1-exclude-elemwise_add.txt")
    }

    static let modelNames = ["lenet", "cifar_resnet20_v1"]

    @Test(arguments: modelNames, [false, true])
    func partitionedModelMatchesTheFramework(name: String, excludeAdd: Bool) throws {
        let model = try Model(name)
        let options = PartitionOptions(excludedOps: excludeAdd ? ["elemwise_add"] : [])
        let (partitioned, _) = try model.partitioned(options)
        let feed = ["data": model.input]
        let expected = try run(model.symbol, inputs: feed, params: model.params, backend: OpByOpBackend.framework)
        let got = try run(partitioned, inputs: feed, params: model.params, backend: engineBackend(Self.engine, constants: model.params))
        expectClose(got[0], expected[0], relative: 1e-4, "\(name), elemwise_add excluded: \(excludeAdd)")
    }

    /// A partitioned model saved as symbol JSON, loaded again and bound with the original params file.
    @Test func savedPartitionedModelLoadsBindsAndRuns() throws {
        let model = try Model("cifar_resnet20_v1")
        let (partitioned, _) = try model.partitioned(PartitionOptions(excludedOps: ["elemwise_add"]))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-partitioned-\(UInt32.random(in: 0...UInt32.max))-symbol.json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try partitioned.save(jsonFile: path)
        let loaded = try Symbol.load(jsonFile: path)
        #expect(try loaded.jsonString() == (try partitioned.jsonString()))
        let params = try NDArray.loadParams(from: Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1-0000.params").path)
        var shared: [String: NDArray] = [:]
        for (name, array) in params {
            shared[name.hasPrefix("arg:") || name.hasPrefix("aux:") ? String(name.dropFirst(4)) : name] = array
        }
        let got = try run(loaded, inputs: ["data": model.input], params: shared, backend: engineBackend(Self.engine, constants: shared))
        let expected = try NDArray.load(npyFile: Fixtures.url("golden/models/cifar_resnet20_v1/output.npy").path)
        expectClose(got[0], expected, relative: 1e-4, "reloaded partitioned ResNet-20 against MXNet")
    }
}
