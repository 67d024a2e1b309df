import Kiln
import TestSupport
import Testing

extension ConformanceBackend: CustomTestStringConvertible {
    public var testDescription: String { name }
}

/// The suite's fixtures and backends, read once.
enum Suite {
    static let suite = try? ConformanceSuite(fixtures: .package)
    static let caseNames = suite?.cases.map(\.case) ?? []
    static let gradientCaseNames = (try? suite?.gradientCaseNames()) ?? []
    static let training = ConformanceBackend.cpu.filter(\.trains)
    static let gpu = ConformanceBackend.gpu(device: 0)
    /// Whether the GPU entries can run; without a GPU they are skipped, never passed.
    static let hasGPU = CUDA.shared.isAvailable && !((try? CUDA.shared.devices()) ?? []).isEmpty

    static func load(_ name: String) throws -> GoldenCase { try #require(suite).fixtures.opCase(name) }
}

/// Every golden MXNet case on every backend that claims it: forward on the reference kernels, the
/// framework and the cpu engine here, on the GPU framework and the cuda engine where a GPU is; one
/// training step on the backends that train. A case a backend does not claim is recorded as such,
/// never as a pass; ``CompletenessTests`` checks that every op a backend claims passed cases on it.
@Suite struct ConformanceTests {
    @Test func indexesArePresent() throws {
        #expect(Suite.suite != nil, "no golden index at \(GoldenFixtures.package.root.path)")
        #expect(Suite.caseNames.count > 150, "the golden index lists \(Suite.caseNames.count) cases")
        let grads = Suite.gradientCaseNames
        #expect(grads.count > 140, "the gradient index lists \(grads.count) cases")
        #expect(grads.contains("models/lenet") && grads.contains("models/convbn"), "the model cases are missing")
    }

    static func expectConforms(_ name: String, on b: ConformanceBackend) throws {
        let outcome = try #require(Suite.suite).run(try Suite.load(name), on: b)
        #expect(!outcome.isFailed, "\(name) [\(b.name)]: \(outcome)")
    }

    @Test(arguments: Suite.caseNames, ConformanceBackend.cpu)
    func forward(caseName: String, backend: ConformanceBackend) throws {
        try Self.expectConforms(caseName, on: backend)
    }

    @Test(.enabled(if: Suite.hasGPU, "no GPU here: run `kiln gpu-check` on the device"), arguments: Suite.caseNames, Suite.gpu)
    func forwardOnTheGPU(caseName: String, backend: ConformanceBackend) throws {
        try Self.expectConforms(caseName, on: backend)
    }

    /// The oracle and the framework claim every op: their golden cases all run.
    @Test(arguments: ConformanceBackend.cpu.filter(\.trains))
    func opByOpBackendsClaimEveryCase(backend: ConformanceBackend) throws {
        let suite = try #require(Suite.suite)
        for name in Suite.caseNames {
            let outcome = suite.run(try Suite.load(name), on: backend)
            #expect(!outcome.isNotClaimed, "\(name) [\(backend.name)]: \(outcome)")
        }
    }

    @Test(arguments: Suite.gradientCaseNames, Suite.training)
    func trainingStep(caseName: String, backend: ConformanceBackend) throws {
        let c = try GoldenGradients.load(caseName)
        let result = try #require(Suite.suite).runTraining(c, on: backend.backend)
        #expect(result.outcome.isPassed, "\(caseName) [\(backend.name)]: \(result.outcome)")
        for d in result.disputed {
            // MXNet's value is wrong (see the generator's finite-difference check): Kiln must differ
            // from it, in values only.
            withKnownIssue("MXNet 1.9.1's gradient of \(d.argument) is wrong: \(d.mxnetError)") {
                #expect(d.matchesMXNet, "\(caseName) [\(backend.name)] gradient of \(d.argument): \(d.closeness)")
            }
        }
    }
}

/// The runner's rule on fake backends (the partitioner tests' habit): a refusal, a fallback to another
/// device and a context the backend does not run on read as "not claimed"; wrong values and a claimed
/// case that does not compile as "failed". None of them is a pass.
@Suite struct ConformanceRuleTests {
    /// Claims the nodes of `ops` on `context`; runs claimed graphs (and, like the GPU's framework mode,
    /// refused ones too) with the reference kernels, optionally off by one.
    struct FakeBackend: Backend {
        let name = "fake"
        var ops: Set<String>
        var context: Context = .cpu
        var offByOne = false
        var compileThrows = false

        func support(_ q: SupportQuery) -> Support {
            let n = q.graphNode
            return n.isVariable || ops.contains(n.op) ? .supported : .unsupported("runs on the CPU: the fake has no kernel for \(n.op)")
        }

        func runs(on c: Context) -> Bool { c == context }

        func compile(_ graph: Graph, shapes: InferredShapes, types: InferredTypes, constants: [String: NDArray]) throws -> any CompiledGraph {
            if compileThrows { throw RuntimeError.noKernel(op: "?", node: "?", backend: name) }
            let plan = try OpByOpBackend.reference.compile(graph, shapes: shapes, types: types, constants: constants)
            return offByOne ? OffByOne(plan: plan) : plan
        }
    }

    final class OffByOne: CompiledGraph {
        let plan: any CompiledGraph
        init(plan: any CompiledGraph) { self.plan = plan }
        func run(_ inputs: [String: NDArray], isTrain: Bool) throws -> [NDArray] {
            try plan.run(inputs, isTrain: isTrain).map { $0.map { $0 + 1 } }
        }
    }

    let name = "Pooling_max_2x2_s2"

    func outcome(_ fake: FakeBackend, context: Context = .cpu) throws -> ConformanceOutcome {
        try #require(Suite.suite).run(try Suite.load(name), on: fake, context: context)
    }

    @Test func aRefusedNodeIsNotClaimed() throws {
        let o = try outcome(FakeBackend(ops: ["Convolution"]))
        guard case let .notClaimed(reason) = o else { Issue.record("\(o)"); return }
        #expect(reason.contains("Pooling 'op'") && reason.contains("no kernel for Pooling"), "\(reason)")
    }

    @Test func aFallbackToTheCPUIsNotClaimedEvenWhenItsAnswerIsRight() throws {
        // The fake's compile would run the refused node (on the CPU, as CUDABackend does) and get
        // MXNet's answer: still not a pass on the GPU.
        let fake = FakeBackend(ops: [], context: .gpu(0))
        #expect(try outcome(FakeBackend(ops: ["Pooling"], context: .gpu(0)), context: .gpu(0)).isPassed)
        #expect(try outcome(fake, context: .gpu(0)).isNotClaimed)
    }

    @Test func anotherContextIsNotClaimed() throws {
        #expect(try outcome(FakeBackend(ops: ["Pooling"], context: .gpu(0))).isNotClaimed)
    }

    @Test func wrongValuesFail() throws {
        let o = try outcome(FakeBackend(ops: ["Pooling"], offByOne: true))
        guard case let .failed(reason) = o else { Issue.record("\(o)"); return }
        #expect(reason.contains("exceeds"), "\(reason)")
    }

    @Test func aClaimedCaseThatDoesNotCompileFails() throws {
        #expect(try outcome(FakeBackend(ops: ["Pooling"], compileThrows: true)).isFailed)
    }

    @Test func theReportCountsNotClaimedApart() throws {
        let fakes = [ConformanceBackend(name: "pooling only", backend: FakeBackend(ops: ["Pooling"]), tableOps: ["Pooling", "Convolution"])]
        let report = try #require(Suite.suite).report(on: fakes)
        let pooling = Suite.suite?.cases.filter { $0.op == "Pooling" }.count ?? 0
        #expect(report.counts(backend: "pooling only") ==
                ConformanceReport.Counts(passed: pooling, failed: 0, notClaimed: Suite.caseNames.count - pooling))
        #expect(report.passedCases(backend: "pooling only") == ["Pooling": pooling])
        #expect(report.claimedOpsWithoutPassedCases(backend: "pooling only") == ["Convolution"])
    }
}
