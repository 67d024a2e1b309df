import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// A model from the golden fixtures: its symbol, weights and MXNet's input and output.
struct GoldenModel {
    let symbol: Symbol
    let weights: [String: NDArray]
    let input: NDArray
    let expected: NDArray

    static func load(_ name: String) throws -> GoldenModel {
        let (symbol, args, aux) = try Checkpoint.load(prefix: Fixtures.url("golden/models/\(name)/\(name)").path, epoch: 0)
        return GoldenModel(symbol: symbol, weights: args.merging(aux) { a, _ in a },
                           input: try NDArray.load(npyFile: Fixtures.url("golden/models/\(name)/input.npy").path),
                           expected: try NDArray.load(npyFile: Fixtures.url("golden/models/\(name)/output.npy").path))
    }
}

/// Everything compiling a graph needs, for data of a given shape; weights are the constants.
struct Bound {
    let graph: Graph
    let shapes: InferredShapes
    let types: InferredTypes
    let constants: [String: NDArray]
    /// Every non-constant variable, zeros of its shape (labels), with `data` set.
    let inputs: [String: NDArray]

    init(_ symbol: Symbol, weights: [String: NDArray], data: NDArray, dataName: String = "data") throws {
        graph = symbol.graph
        var given = weights.mapValues(\.shape)
        given[dataName] = data.shape
        shapes = try graph.inferShapes(given)
        types = try graph.inferTypes()
        let g = graph
        let constants = weights.filter { name, _ in g.nodes.contains { $0.isVariable && $0.name == name } }
        self.constants = constants
        var inputs: [String: NDArray] = [:]
        for (i, n) in graph.nodes.enumerated() where n.isVariable && constants[n.name] == nil {
            inputs[n.name] = NDArray(zeros: shapes.nodeOutputs[i][0])
        }
        inputs[dataName] = data
        self.inputs = inputs
    }

    func engine(_ options: EngineOptions = EngineOptions()) throws -> EnginePlan {
        try CPUEngine(options: options).compilePlan(graph, shapes: shapes, types: types, constants: constants)
    }

    func runEngine(_ options: EngineOptions = EngineOptions()) throws -> (plan: EnginePlan, outputs: [NDArray]) {
        let plan = try engine(options)
        return (plan, try plan.run(inputs, isTrain: false))
    }

    func runFramework() throws -> [NDArray] {
        let plan = try OpByOpBackend.framework.compile(graph, shapes: shapes, types: types, constants: constants)
        return try plan.run(inputs, isTrain: false)
    }
}

/// A fresh empty directory under the temporary directory, for cache tests.
func temporaryDirectory(_ name: String) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-engine-tests-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Random weights for a graph (normal, small), and BatchNorm statistics that keep values in range.
func randomWeights(_ graph: Graph, shapes: InferredShapes, data: Set<String> = ["data"], seed: UInt64 = 1) -> [String: NDArray] {
    var weights: [String: NDArray] = [:]
    for (i, n) in graph.nodes.enumerated() where n.isVariable && !data.contains(n.name) {
        let shape = shapes.nodeOutputs[i][0]
        let s = seed &+ UInt64(i)
        if n.name.hasSuffix("var") {
            weights[n.name] = NDArray.randomUniform(shape: shape, low: 0.5, high: 1.5, seed: s)
        } else if n.name.hasSuffix("gamma") {
            weights[n.name] = NDArray.randomUniform(shape: shape, low: 0.5, high: 1.5, seed: s)
        } else {
            weights[n.name] = NDArray.randomNormal(shape: shape, mean: 0, std: 0.3, seed: s)
        }
    }
    return weights
}
