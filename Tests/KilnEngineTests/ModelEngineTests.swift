import KilnCore
import KilnEngine
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Whole models compiled by the engine against the framework and against MXNet's golden outputs.
@Suite struct ModelEngineTests {
    /// ResNet-20's plan: conv+bn(+add)+relu fused into 21 convolutions, one reorder (the plain input
    /// into the first conv's layout), the FC writing the output array itself.
    @Test func resnetPlanIsFused() throws {
        let model = try GoldenModel.load("cifar_resnet20_v1")
        let plan = try Bound(model.symbol, weights: model.weights, data: model.input).engine()
        let r = plan.report
        #expect(r.graphOps == 71 && r.optimizedOps == 23)
        #expect(r.primitives.filter { $0.kind == "convolution" }.count == 21)
        #expect(r.primitives.filter { $0.kind == "reorder" }.map(\.isBorderReorder) == [true])
        #expect(plan.ir.ops.filter { $0.postOps.contains(.eltwise(EltwiseSpec(algorithm: .relu))) && $0.postOps.count == 2 }.count == 9)
    }

    @Test(arguments: ["lenet", "cifar_resnet20_v1"])
    func engineMatchesFrameworkAndMXNet(model name: String) throws {
        let model = try GoldenModel.load(name)
        let bound = try Bound(model.symbol, weights: model.weights, data: model.input)
        let (plan, outputs) = try bound.runEngine()
        let framework = try bound.runFramework()
        expectClose(outputs[0], framework[0], relative: 1e-4, "\(name): engine vs framework")
        expectClose(outputs[0], model.expected, relative: 1e-4, "\(name): engine vs MXNet")
        // Layouts change only at the group's border: no reorder between ops.
        #expect(plan.report.innerReorders == 0, "\(plan.report)")
        #expect(plan.report.arenaBytes < plan.report.intermediateBytes)
    }
}
