import KilnCore
import KilnGraph
import KilnPartition
import KilnRuntime
import TestSupport
import Testing

/// A FAKE engine whose compiled groups can start runs: a run computes (with the reference kernels)
/// only when it is waited for, so the tests see which runs were waited for and in which order.
struct StartingEngine: Backend {
    final class Log: @unchecked Sendable {
        var started = 0
        var waited = 0
        /// The next wait throws this (once).
        var failure: (any Error)?
    }

    let inner = FakeEngine(supporting: ["Convolution", "BatchNorm", "relu"])
    let log = Log()
    var name: String { inner.name }

    func support(_ query: SupportQuery) -> Support { inner.support(query) }

    func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
        Plan(inner: try inner.compile(graph, shapes: shapes, types: types, constants: constants), log: log)
    }

    final class Plan: StartableGraph {
        let inner: any CompiledGraph
        let log: Log
        init(inner: any CompiledGraph, log: Log) {
            self.inner = inner
            self.log = log
        }

        func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] { try inner.run(inputs, isTrain: isTrain) }

        func start(_ inputs: [String: NDArray]) throws -> (any PendingRun)? {
            log.started += 1
            return Run(plan: self, inputs: inputs)
        }
    }

    final class Run: PendingRun {
        let plan: Plan
        let inputs: [String: NDArray]
        init(plan: Plan, inputs: [String: NDArray]) {
            self.plan = plan
            self.inputs = inputs
        }

        func wait() throws -> [NDArray] {
            plan.log.waited += 1
            if let failure = plan.log.failure {
                plan.log.failure = nil
                throw failure
            }
            return try plan.run(inputs, isTrain: false)
        }
    }
}

struct StartForwardTests {
    struct DeviceLost: Error, CustomStringConvertible { var description: String { "the device was lost" } }

    static func bound() throws -> (Executor, StartingEngine, [String: NDArray]) {
        var rng = SeededGenerator(seed: 11)
        let params: [String: NDArray] = [
            "conv_weight": randomArray([3, 5, 3, 3], &rng), "bn_gamma": randomArray([3], &rng), "bn_beta": randomArray([3], &rng),
            "bn_moving_mean": randomArray([3], &rng), "bn_moving_var": NDArray(shape: [3], values: [0.5, 1, 2]),
        ]
        let engine = StartingEngine()
        let s = try EngineOpTests.engineSymbol()
        var shared = params
        shared["data"] = randomArray([2, 5, 4, 4], &rng)
        let exec = try s.bind(shapes: ["data": [2, 5, 4, 4]], sharedBuffer: shared,
                              backend: EngineNode.backend(engines: [engine.name: engine], constants: params))
        return (exec, engine, params)
    }

    /// Three forwards started back to back are waited for once, and the outputs are the last input's,
    /// equal to a plain `forward` on it.
    @Test func startedForwardsOverlapAndTheLastOneIsRead() throws {
        let (exec, engine, _) = try Self.bound()
        var rng = SeededGenerator(seed: 12)
        let batches = (0..<3).map { _ in randomArray([2, 5, 4, 4], &rng) }
        for b in batches {
            exec.argDict["data"] = b
            try exec.startForward()
        }
        #expect(engine.log.started == 3 && engine.log.waited == 0)
        let started = try exec.waitToRead()
        #expect(engine.log.waited == 1)
        try exec.forward()
        #expect(engine.log.started == 3, "forward() runs without starting")
        for (a, b) in zip(started, exec.outputs) { expectClose(a, b, relative: 0, "started and plain forward") }
        // Reading `outputs` after a start waits for it.
        exec.argDict["data"] = batches[0]
        try exec.startForward()
        let first = exec.outputs
        #expect(engine.log.waited == 2)
        try exec.forward()
        for (a, b) in zip(first, exec.outputs) { expectClose(a, b, relative: 0, "outputs after a start") }
    }

    /// A failed wait leaves NaN outputs and is thrown by the next call; the executor then works again.
    @Test func aFailedWaitIsThrownOnce() throws {
        let (exec, engine, _) = try Self.bound()
        try exec.forward()
        let good = exec.outputs
        engine.log.failure = DeviceLost()
        try exec.startForward()
        let failed = exec.outputs[0].floats()
        #expect(failed.allSatisfy { $0.isNaN })
        #expect(throws: DeviceLost.self) { try exec.forward() }
        try exec.forward()
        for (a, b) in zip(good, exec.outputs) { expectClose(a, b, relative: 0, "after the failure") }
        engine.log.failure = DeviceLost()
        try exec.startForward()
        #expect(throws: DeviceLost.self) { try exec.waitToRead() }
        try exec.waitToRead()
    }

    /// Where the bound graph is more than one engine node, `startForward` is a plain `forward`.
    @Test func aGraphWithFrameworkNodesRunsAtOnce() throws {
        let (_, engine, params) = try Self.bound()
        let s = Symbol.make("sigmoid", [try EngineOpTests.engineSymbol()[0]], name: "after")
        var shared = params
        shared["data"] = NDArray(zeros: [2, 5, 4, 4])
        let exec = try s.bind(shapes: ["data": [2, 5, 4, 4]], sharedBuffer: shared,
                              backend: EngineNode.backend(engines: [engine.name: engine], constants: params))
        try exec.startForward()
        #expect(engine.log.started == 0)
        let values = exec.outputs[0].floats()
        #expect(values.allSatisfy { $0 >= 0.5 }, "sigmoid ran: \(values.prefix(4))")
    }
}
