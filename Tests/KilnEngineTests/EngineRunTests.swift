import Foundation
import KilnCore
import Synchronization
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// What `run` promises: outputs with value semantics, clear errors, and every op kind matching the
/// framework in graphs that mix layouts.
@Suite struct EngineRunTests {
    func lenet() throws -> (Bound, EnginePlan) {
        let model = try GoldenModel.load("lenet")
        let bound = try Bound(model.symbol, weights: model.weights, data: model.input)
        return (bound, try bound.engine())
    }

    /// A later run does not change the arrays an earlier run returned.
    @Test func outputsKeepTheirValues() throws {
        let (bound, plan) = try lenet()
        let first = try plan.run(bound.inputs, isTrain: false)[0]
        let saved = first.floats()
        var other = bound.inputs
        other["data"] = NDArray.randomNormal(shape: bound.inputs["data"]?.shape ?? [1], seed: 77)
        let second = try plan.run(other, isTrain: false)[0]
        #expect(first.floats() == saved)
        #expect(second.floats() != saved)
    }

    /// SoftmaxOutput's label is not read: the plan does not ask for it.
    @Test func labelIsNotAnInput() throws {
        let (bound, plan) = try lenet()
        #expect(plan.inputNames == ["data"])
        let out = try plan.run(["data": bound.inputs["data"] ?? NDArray(zeros: [1])], isTrain: false)
        #expect(out.count == 1)
    }

    @Test func badRunsAreErrorsThatNameTheInput() throws {
        let (bound, plan) = try lenet()
        #expect { try plan.run([:], isTrain: false) } throws: { "\($0)".contains("'data'") }
        #expect { try plan.run(["data": NDArray(zeros: [1, 1, 28, 28])], isTrain: false) } throws: { e in
            "\(e)".contains("'data'") && "\(e)".contains("compile again")
        }
        #expect { try plan.run(["data": NDArray(zeros: bound.inputs["data"]?.shape ?? [1], dtype: .float16)], isTrain: false) } throws: {
            "\($0)".contains("dtype")
        }
        #expect(throws: EngineError.trainingNotSupported) { try plan.run(bound.inputs, isTrain: true) }
    }

    /// Two branches of convolutions joined by Concat, average pooling (full convention), Flatten, FC
    /// and softmax: blocked layouts meet plain ones.
    @Test func concatPoolingFlattenSoftmax() throws {
        let x = Symbol.variable("data")
        let a = Symbol.activation(.convolution(x, kernel: [3, 3], numFilter: 16, pad: [1, 1], name: "conv_a"), kind: .relu, name: "relu_a")
        let b = Symbol.convolution(x, kernel: [1, 1], numFilter: 8, name: "conv_b")
        let joined = Symbol.concat([a, b], dim: 1, name: "concat0")
        let pooled = Symbol.pooling(joined, kernel: [3, 3], poolType: .avg, convention: .full, stride: [2, 2], countIncludePad: false, name: "pool0")
        let fc = Symbol.fullyConnected(.flatten(pooled, name: "flat0"), numHidden: 10, name: "fc0")
        let c = try Case(.softmax(fc, name: "sm0"), data: [2, 3, 9, 9])
        try c.expectEngineMatchesFramework("concat, pooling, flatten, softmax")
    }

    /// Grouped, strided and dilated convolution, max pooling with padding, global pooling, Reshape.
    @Test func groupedDilatedConvolutionAndPooling() throws {
        let x = Symbol.variable("data")
        let conv = Symbol.convolution(x, kernel: [3, 3], numFilter: 8, stride: [2, 2], dilate: [2, 2], pad: [2, 2], numGroup: 4, name: "conv0")
        let pooled = Symbol.pooling(.leakyReLU(conv, kind: .elu, slope: 0.3, name: "elu0"), kernel: [3, 3], stride: [1, 1], pad: [1, 1], name: "pool0")
        let global = Symbol.pooling(pooled, poolType: .avg, globalPool: true, name: "gpool0")
        let c = try Case(.reshape(global, shape: [0, -1], name: "reshape0"), data: [2, 8, 11, 11])
        try c.expectEngineMatchesFramework("grouped dilated conv, pooling, reshape")
    }

    /// A value that is both a group output and read inside the group, and an add of two inputs.
    @Test func outputsReadInsideAndAddOfInputs() throws {
        let x = Symbol.variable("data"), y = Symbol.variable("other")
        let sum = Symbol.elementwiseAdd(x, y, name: "add0")
        let conv = Symbol.convolution(sum, kernel: [3, 3], numFilter: 4, pad: [1, 1], name: "conv0")
        let relu = Symbol.activation(conv, kind: .relu, name: "relu0")
        let c = try Case(.group([sum, conv, relu, .elementwiseAdd(relu, conv, name: "add1")]), data: [2, 4, 5, 5],
                         extraInputs: ["other": [2, 4, 5, 5]])
        var inputs = c.bound.inputs
        inputs["other"] = NDArray.randomNormal(shape: [2, 4, 5, 5], seed: 12)
        let plan = try c.bound.engine()
        let engine = try plan.run(inputs, isTrain: false)
        let framework = try OpByOpBackend.framework.compile(c.bound.graph, shapes: c.bound.shapes, types: c.bound.types,
                                                            constants: c.bound.constants).run(inputs, isTrain: false)
        for k in 0..<4 { expectClose(engine[k], framework[k], relative: 1e-4, "output \(k)") }
    }

    /// An unsupported node makes compile throw an error that names it.
    @Test func compileRefusesUnsupportedNodes() throws {
        let y = Symbol.activation(.variable("data"), kind: .softSign, name: "soft0")
        let graph = y.graph
        let shapes = try graph.inferShapes(["data": [2, 3]])
        #expect { try CPUEngine().compile(graph, shapes: shapes, types: try graph.inferTypes(), constants: [:]) } throws: { e in
            "\(e)".contains("'soft0'") && "\(e)".contains("act_type=softsign")
        }
    }

    /// Weights not given as constants: support says why, compile refuses.
    @Test func weightsMustBeKnownAtBind() throws {
        let y = Symbol.convolution(.variable("data"), kernel: [3, 3], numFilter: 2, name: "conv0")
        let graph = y.graph
        let shapes = try graph.inferShapes(["data": [1, 1, 5, 5]])
        let conv = try #require(graph.nodes.firstIndex { $0.name == "conv0" })
        let support = CPUEngine().support(SupportQuery(graph: graph, node: conv, shapes: shapes, types: try graph.inferTypes(), constants: []))
        #expect(support == .weightsNotKnownAtBind(input: "weight"))
        #expect(support.reason == .weightsNotKnownAtBind("weight"))
        #expect(throws: EngineCoreError.self) { try CPUEngine().compile(graph, shapes: shapes, types: try graph.inferTypes(), constants: [:]) }
    }
}

/// Plans made from one compiled core (the process cache) run at the same time on different threads:
/// they share primitives and weights, never buffers.
@Suite struct SharedCoreTests {
    @Test func plansOfOneCoreRunConcurrently() throws {
        let bound = try taggedResNet(300, batch: 3)
        let plans = try (0..<4).map { _ in try bound.engine() }
        #expect(plans.dropFirst().allSatisfy { $0.report.cache == .memoryHit })
        let inputs = (0..<4).map { k in NDArray.randomNormal(shape: [3, 3, 32, 32], seed: UInt64(40 + k)) }
        let expected = try inputs.map { try plans[0].run(["data": $0], isTrain: false)[0] }
        let results = Mutex<[Int: NDArray]>([:])
        let failures = Mutex<[String]>([])
        let shared = UncheckedPlans(plans)
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            do {
                var last = NDArray(zeros: [1])
                // Each thread runs only its own plan.
                for _ in 0..<5 { last = try shared.plans[k].run(["data": inputs[k]], isTrain: false)[0] }
                let done = last
                results.withLock { $0[k] = done }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        for k in 0..<4 {
            let r = try #require(results.withLock { $0[k] })
            expectClose(r, expected[k], relative: 0, "plan \(k) on its own thread")
        }
    }
}

/// Plans handed to threads that each use one of them only.
final class UncheckedPlans: @unchecked Sendable {
    let plans: [EnginePlan]
    init(_ plans: [EnginePlan]) { self.plans = plans }
}
