import Foundation
import Testing
import KilnCore
import KilnGraph
import KilnRuntime
import KilnTrain
import KilnGluon
import TestSupport

private func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-gluon-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// The custom block of docs/GLUON.md.
private final class Residual: HybridBlock {
    let body = HybridSequential(prefix: "")
    init(channels: Int) {
        body.add(Conv2D(channels: channels, kernel: 3, padding: 1, useBias: false), BatchNorm(), Activation(.relu))
        super.init(prefix: "", hint: "residual")
        registerChild(body, name: "body")
    }
    override func forward(_ x: Symbol) throws -> Symbol {
        Symbol.elementwiseAdd(x, try body(x), name: OpNamer.automatic("_plus"))
    }
}

@Suite struct GluonTests {
    @Test func customBlockOfTheGuide() throws {
        let net = NameScope.fresh { () -> HybridSequential in
            let net = HybridSequential(prefix: "net_")
            net.nameScope { net.add(Residual(channels: 4), Residual(channels: 4)) }
            return net
        }
        #expect(net.collectParams().names.prefix(2) == ["net_conv0_weight", "net_batchnorm0_gamma"])
        #expect(net.collectParams()["net_conv1_weight"] != nil)
        #expect(net.structuralParameters().map(\.name).contains("1.body.0.weight"))
        let ops = try net.symbol().graph.nodes.filter { !$0.isVariable }.map(\.name)
        #expect(ops == ["net_conv0_fwd", "net_batchnorm0_fwd", "net_relu0_fwd", "net__plus0",
                        "net_conv1_fwd", "net_batchnorm1_fwd", "net_relu1_fwd", "net__plus1"])
    }

    @Test func dropoutNodesAreGluons() throws {
        // From MXNet 1.9.1: HybridSequential('m_') of Dropout(0.0), Dropout(0.3) traces to
        // [('_copy', 'm_dropout0_identity0'), ('Dropout', 'm_dropout1_fwd')].
        let net = NameScope.fresh { () -> HybridSequential in
            let net = HybridSequential(prefix: "m_")
            net.nameScope { net.add(Dropout(rate: 0), Dropout(rate: 0.3)) }
            return net
        }
        let nodes = try net.symbol().graph.nodes.filter { !$0.isVariable }.map { "\($0.op) \($0.name)" }
        #expect(nodes == ["_copy m_dropout0_identity0", "Dropout m_dropout1_fwd"])
        let x = NDArray(shape: [1, 4], values: [1, 2, 3, 4])
        #expect(try net(x).floats() == [1, 2, 3, 4])
    }

    @Test func fullNameFilesLoad() throws {
        // Gluon's older save_params wrote full names; load_parameters still reads them.
        let model = "cifar_resnet20_v1"
        let source = try ModelZoo.get(model)
        try source.loadParameters(from: Fixtures.url("golden/gluon/\(model)/\(model).params").path)
        let path = temporaryPath("full.params")
        try NDArray.saveParams(source.collectParams().map { ($0.name, try $0.data()) }, to: path)
        let net = try ModelZoo.get(model)
        try net.loadParameters(from: path)
        let x = try NDArray.load(npyFile: Fixtures.url("golden/gluon/\(model)/input.npy"))
        expectClose(try net(x), try NDArray.load(npyFile: Fixtures.url("golden/gluon/\(model)/output.npy")), relative: 1e-4)
    }

    @Test func namesFollowGluonScopes() throws {
        // Gluon: a Sequential 'net_' holding two Dense layers names them net_dense0_, net_dense1_.
        let net = NameScope.fresh { () -> HybridSequential in
            let net = HybridSequential(prefix: "net_")
            net.nameScope { net.add(Dense(units: 4, inUnits: 3), Activation(.relu), Dense(units: 2, inUnits: 4)) }
            return net
        }
        #expect(net.collectParams().names == ["net_dense0_weight", "net_dense0_bias", "net_dense1_weight", "net_dense1_bias"])
        #expect(net.structuralParameters().map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        let ops = try net.symbol().graph.nodes.filter { !$0.isVariable }.map(\.name)
        #expect(ops == ["net_dense0_fwd", "net_relu0_fwd", "net_dense1_fwd"])
        #expect(try net.collectParams(".*bias").names == ["net_dense0_bias", "net_dense1_bias"])
    }

    @Test func everyZooCallStartsAtZero() throws {
        let a = try ModelZoo.get("cifar_resnet20_v1"), b = try ModelZoo.get("cifar_resnet20_v1")
        #expect(a.prefix == "cifarresnetv10_" && b.prefix == "cifarresnetv10_")
        #expect(try ModelZoo.get("cifar_resnext29_16x64d").prefix == "cifarresnext0_")
    }

    @Test func denseComputesByHand() throws {
        let dense = NameScope.fresh { Dense(units: 2, inUnits: 3) }
        try dense.weight.setData(NDArray(shape: [2, 3], values: [1, 2, 3, -1, 0, 1]))
        try dense.bias?.setData(NDArray(shape: [2], values: [0.5, -0.5]))
        // [1, 1, 2] -> [1 + 2 + 6 + 0.5, -1 + 0 + 2 - 0.5]
        let y = try dense(NDArray(shape: [1, 3], values: [1, 1, 2]))
        #expect(y.floats() == [9.5, 0.5])
    }

    @Test func deferredShapesAndDefaultInitialization() throws {
        let net = NameScope.fresh { () -> HybridSequential in
            let net = HybridSequential(prefix: "m_")
            net.nameScope { net.add(Conv2D(channels: 4, kernel: 3, padding: 1), BatchNorm(), Flatten(), Dense(units: 3)) }
            return net
        }
        try net.collectParams().initialize(Uniform(scale: 0.07), seed: 1)
        let y = try net(NDArray(zeros: [2, 2, 5, 5]))
        #expect(y.shape == [2, 3])
        let p = net.collectParams()
        #expect(p["m_conv0_weight"]?.shape == [4, 2, 3, 3])
        #expect(p["m_dense0_weight"]?.shape == [3, 100])
        #expect(try p["m_batchnorm0_running_var"]?.data().floats() == [1, 1, 1, 1])
        #expect(try p["m_batchnorm0_gamma"]?.data().floats() == [1, 1, 1, 1])
        #expect(try p["m_conv0_weight"]?.data().floats().allSatisfy { abs($0) <= 0.07 } == true)
    }

    @Test func saveAndLoadParametersRoundTrip() throws {
        let net = try ModelZoo.get("cifar_resnet20_v2")
        try net.initialize(Uniform(scale: 0.07), seed: 3)
        _ = try net(NDArray(zeros: [1, 3, 32, 32]))
        let path = temporaryPath("net.params")
        try net.saveParameters(to: path)
        let names = try NDArray.loadParams(from: path).map(\.name)
        #expect(names.first == "features.0.gamma")
        #expect(names.contains("features.2.0.bn1.gamma") && names.contains("features.3.0.downsample.weight"))
        let copy = try ModelZoo.get("cifar_resnet20_v2")
        try copy.loadParameters(from: path)
        let x = NDArray(shape: [1, 3, 32, 32], values: (0..<3072).map { Float($0 % 17) / 17 })
        #expect(try copy(x).floats() == net(x).floats())
    }

    @Test func loadReportsMissingAndExtraNames() throws {
        let net = try ModelZoo.get("cifar_resnet20_v1")
        let file = Fixtures.url("golden/gluon/cifar_resnet20_v1/cifar_resnet20_v1.params").path
        var arrays = try NDArray.loadParams(from: file)
        arrays.append(("features.9.weight", NDArray(zeros: [1])))
        let extra = temporaryPath("extra.params")
        try NDArray.saveParams(arrays, to: extra)
        #expect(throws: GluonError.extraParameter(file: extra, parameter: "features.9.weight")) {
            try net.loadParameters(from: extra)
        }
        let missing = temporaryPath("missing.params")
        try NDArray.saveParams(arrays.filter { $0.name != "output.bias" && $0.name != "features.9.weight" }, to: missing)
        #expect(throws: GluonError.missingParameter(file: missing, parameter: "output.bias")) {
            try net.loadParameters(from: missing)
        }
    }

    @Test func exportLoadsAsCheckpoint() throws {
        let model = "cifar_resnet20_v1"
        let net = try ModelZoo.get(model)
        try net.loadParameters(from: Fixtures.url("golden/gluon/\(model)/\(model).params").path)
        let prefix = temporaryPath("resnet20")
        try net.export(prefix: prefix, epoch: 0)
        #expect(FileManager.default.fileExists(atPath: prefix + "-symbol.json"))
        let (sym, args, aux) = try Checkpoint.load(prefix: prefix, epoch: 0)
        #expect(aux.keys.contains("cifarresnetv10_batchnorm0_running_mean"))
        #expect(args.keys.contains("cifarresnetv10_conv0_weight"))
        let input = try NDArray.load(npyFile: Fixtures.url("golden/gluon/\(model)/input.npy"))
        let exec = try sym.bind(shapes: ["data": input.shape], types: ["data": .float32], sharedBuffer: args.merging(aux) { a, _ in a })
        try exec.forward(isTrain: false, ["data": input])
        expectClose(exec.outputs[0], try NDArray.load(npyFile: Fixtures.url("golden/gluon/\(model)/output.npy")), relative: 1e-4)
    }

    @Test func zooErrorsSayWhatToDo() throws {
        do {
            _ = try ModelZoo.get("resnet50")
            Issue.record("expected an error")
        } catch let e as GluonError {
            #expect(e.description.contains("resnet50") && e.description.contains("cifar_resnet20_v1"))
        }
        let root = temporaryPath("models")
        do {
            _ = try ModelZoo.get("cifar_resnet56_v2", pretrained: true, root: root)
            Issue.record("expected an error")
        } catch let e as GluonError {
            #expect(e == .pretrainedFileMissing(model: "cifar_resnet56_v2", path: root + "/cifar_resnet56_v2.params"))
            #expect(e.description.contains("KILN_MODEL_DIR"))
        }
    }

    @Test func uninitializedParameterIsAnError() throws {
        let net = try ModelZoo.get("cifar_resnet20_v1")
        #expect(throws: GluonError.self) { try net(NDArray(zeros: [1, 3, 32, 32])) }
    }
}
