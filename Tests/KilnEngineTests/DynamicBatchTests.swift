import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Another batch size is another compile: plans are keyed by shapes, each correct, each cached.
@Suite struct DynamicBatchTests {
    @Test(arguments: [1, 2, 5, 16])
    func everyBatchSizeMatchesTheFramework(batch: Int) throws {
        let bound = try taggedResNet(200, batch: batch)
        let (plan, outputs) = try bound.runEngine()
        #expect(outputs[0].shape == [batch, 10])
        expectClose(outputs[0], try bound.runFramework()[0], relative: 1e-4, "batch \(batch)")
        #expect(plan.report.primitives.count > 20)
        if batch == 2 {
            expectClose(outputs[0], try GoldenModel.load("cifar_resnet20_v1").expected, relative: 1e-4, "batch 2 vs MXNet")
        }
    }

    /// Each batch size has its own cache entry; going back to a size seen before loads it.
    @Test func eachBatchSizeHasItsOwnEntry() throws {
        let dir = try temporaryDirectory("batch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = CPUEngine(options: EngineOptions(cacheDirectory: dir), usesProcessCache: false)
        func compile(_ batch: Int) throws -> EnginePlan {
            let b = try taggedResNet(201, batch: batch)
            return try engine.compilePlan(b.graph, shapes: b.shapes, types: b.types, constants: b.constants)
        }
        #expect(try compile(1).report.cache == .miss)
        #expect(try compile(4).report.cache == .miss)
        #expect(try compile(1).report.cache == .diskHit)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 2)
        // A plan runs only the shapes it was compiled for.
        let plan = try compile(4)
        #expect(throws: EngineError.self) { try plan.run(["data": NDArray(zeros: [1, 3, 32, 32])], isTrain: false) }
    }
}
