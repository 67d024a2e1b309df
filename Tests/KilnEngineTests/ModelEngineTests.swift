import KilnCore
import KilnEngine
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Whole models compiled by the engine against the framework and against MXNet's golden outputs.
@Suite struct ModelEngineTests {
    @Test(arguments: ["lenet", "cifar_resnet20_v1"])
    func engineMatchesFrameworkAndMXNet(model name: String) throws {
        let model = try GoldenModel.load(name)
        let bound = try Bound(model.symbol, weights: model.weights, data: model.input)
        let (plan, outputs) = try bound.runEngine()
        let framework = try bound.runFramework()
        expectClose(outputs[0], framework[0], relative: 1e-4, "\(name): engine vs framework")
        expectClose(outputs[0], model.expected, relative: 1e-4, "\(name): engine vs MXNet")
        print(plan.report)
    }
}
