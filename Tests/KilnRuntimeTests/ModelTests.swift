import KilnCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Whole models exported by real MXNet 1.9.1, loaded from their checkpoints and run.
@Suite struct ModelTests {
    static let models = [("lenet", "lenet"), ("cifar_resnet20_v1", "cifar_resnet20_v1")]

    @Test(arguments: [0, 1], [0, 1])
    func checkpointReproducesMXNet(modelIndex: Int, backendIndex: Int) throws {
        let (dir, prefix) = Self.models[modelIndex]
        let backend: OpByOpBackend = backendIndex == 0 ? .reference : .framework
        let base = Fixtures.url("golden/models/\(dir)/\(prefix)").path
        let (symbol, args, aux) = try Checkpoint.load(prefix: base, epoch: 0)
        let input = try NDArray.load(npyFile: Fixtures.url("golden/models/\(dir)/input.npy").path)
        let expected = try NDArray.load(npyFile: Fixtures.url("golden/models/\(dir)/output.npy").path)
        var shared = args.merging(aux) { a, _ in a }
        shared["data"] = input
        let exec = try symbol.bind(shapes: ["data": input.shape], sharedBuffer: shared, backend: backend)
        try exec.forward()
        expectClose(exec.outputs[0], expected, relative: 1e-4, "\(prefix) [\(backend.name)]")
    }

    /// Gluon's `save_parameters` names (`features.0.weight`) differ from the exported symbol's; the
    /// same arrays must still be there, in the same order of shapes.
    @Test func gluonParameterFileHoldsTheSameArrays() throws {
        let exported = try NDArray.loadParams(from: Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1-0000.params").path)
        let gluon = try NDArray.loadParams(from: Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1-gluon.params").path)
        #expect(gluon.count == exported.count)
        #expect(gluon.allSatisfy { !$0.name.hasPrefix("arg:") && !$0.name.hasPrefix("aux:") })
        let total = { (l: [(name: String, array: NDArray)]) in l.reduce(0.0) { $0 + $1.array.sum() } }
        #expect(abs(total(gluon) - total(exported)) < 1e-3 * max(1, abs(total(exported))))
    }

    @Test func rebindingToAnotherBatchSizeKeepsWeights() throws {
        let base = Fixtures.url("golden/models/cifar_resnet20_v1/cifar_resnet20_v1").path
        let (symbol, args, aux) = try Checkpoint.load(prefix: base, epoch: 0)
        let input = try NDArray.load(npyFile: Fixtures.url("golden/models/cifar_resnet20_v1/input.npy").path)
        let expected = try NDArray.load(npyFile: Fixtures.url("golden/models/cifar_resnet20_v1/output.npy").path)
        let exec = try symbol.bind(shapes: ["data": [5, 3, 32, 32]], sharedBuffer: args.merging(aux) { a, _ in a })
        #expect(exec.outputs[0].shape == [5, 10])
        let small = try exec.reshaped(["data": input.shape])
        small.argDict["data"] = input
        try small.forward()
        expectClose(small.outputs[0], expected, relative: 1e-4, "after reshaped(_:)")
    }

    @Test func badBindsAreErrorsThatNameTheArgument() throws {
        let base = Fixtures.url("golden/models/lenet/lenet").path
        let (symbol, args, aux) = try Checkpoint.load(prefix: base, epoch: 0)
        var shared = args.merging(aux) { a, _ in a }
        // A weight of the wrong shape.
        let name = symbol.listArguments().first { $0.hasSuffix("weight") } ?? "?"
        shared[name] = NDArray(zeros: [1, 2, 3])
        do {
            _ = try symbol.bind(shapes: ["data": [4, 1, 28, 28]], sharedBuffer: shared)
            Issue.record("expected an error")
        } catch {
            // The message names the node reading the weight, the input slot and both shapes.
            let node = String(name.dropLast("_weight".count))
            #expect("\(error)".contains("'\(node)'") && "\(error)".contains("its weight of shape (1, 2, 3)")
                    && "\(error)".contains("input 'data' of shape (4, 1, 28, 28)"), "\(error)")
        }
        // A data shape that does not fit the first FullyConnected's weights.
        do {
            _ = try symbol.bind(shapes: ["data": [4, 1, 32, 32]], sharedBuffer: args.merging(aux) { a, _ in a })
            Issue.record("expected an error")
        } catch {
            // The data is named first, with its flattened shape, and the file the symbol came from.
            #expect("\(error)".contains("input 'data' of shape (4, 1250)") && "\(error)".contains("lenet-symbol.json"), "\(error)")
        }
        // Feeding an array of the wrong shape after binding.
        let exec = try symbol.bind(shapes: ["data": [4, 1, 28, 28]], sharedBuffer: args.merging(aux) { a, _ in a })
        exec.argDict["data"] = NDArray(zeros: [2, 1, 28, 28])
        #expect(throws: RuntimeError.self) { try exec.forward() }
        // A shape for an argument the graph does not have.
        do {
            _ = try symbol.bind(shapes: ["dat": [4, 1, 28, 28]])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("dat"), "\(error)")
        }
    }
}
