import Foundation
import KilnCore
import KilnEngine
import KilnEngineCore
import KilnGraph
import KilnRuntime
import TestSupport
import Testing

/// Whole models compiled by the engine against the framework and against MXNet's golden outputs.
@Suite struct ModelEngineTests {
    /// ResNet-20's plan: conv+bn(+add)+relu fused into 21 convolutions, at most one reorder (the plain
    /// input into the first conv's layout), the FC writing the output array itself.
    @Test func resnetPlanIsFused() throws {
        let model = try GoldenModel.load("cifar_resnet20_v1")
        let plan = try Bound(model.symbol, weights: model.weights, data: model.input).engine(Self.untuned)
        let r = plan.report
        #expect(r.graphOps == 71 && r.optimizedOps == 23)
        #expect(r.primitives.filter { $0.kind == "convolution" }.count == 21)
        // At most the one border reorder (AVX-512 kernels want the first conv's plain input blocked;
        // AVX2 ones read it plain), never one between ops.
        let reorders = r.primitives.filter { $0.kind == "reorder" }.map(\.isBorderReorder)
        #expect(reorders.count <= 1 && reorders.allSatisfy { $0 }, "\(r)")
        #expect(plan.ir.ops.filter { $0.postOps.contains(.eltwise(EltwiseSpec(algorithm: .relu))) && $0.postOps.count == 2 }.count == 9)
    }

    /// Every convolution direct, in the layouts oneDNN prefers (no timing of algorithms).
    static var untuned: EngineOptions {
        var o = EngineOptions()
        o.tune = false
        return o
    }

    @Test(arguments: ["lenet", "cifar_resnet20_v1"])
    func engineMatchesFrameworkAndMXNet(model name: String) throws {
        let model = try GoldenModel.load(name)
        let bound = try Bound(model.symbol, weights: model.weights, data: model.input)
        let (plan, outputs) = try bound.runEngine(Self.untuned)
        let framework = try bound.runFramework()
        expectClose(outputs[0], framework[0], relative: 1e-4, "\(name): engine vs framework")
        expectClose(outputs[0], model.expected, relative: 1e-4, "\(name): engine vs MXNet")
        // Layouts change only at the group's border: no reorder between ops.
        #expect(plan.report.innerReorders == 0, "\(plan.report)")
        #expect(plan.report.arenaBytes < plan.report.intermediateBytes)
    }

    /// With tuning (the default) each 3x3 stride-1 convolution is timed and records its algorithm in
    /// the IR; whatever was chosen, the answers stay MXNet's, and reorders appear only before a
    /// convolution that asked for another layout. A plan loaded from the disk cache keeps the choices.
    @Test func tunedPlanRecordsItsChoicesAndMatchesMXNet() throws {
        let model = try GoldenModel.load("cifar_resnet20_v1")
        let bound = try Bound(model.symbol, weights: model.weights, data: model.input)
        let dir = try temporaryDirectory("tuned")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = EngineOptions(cacheDirectory: dir)
        let plan = try CPUEngine(options: options, usesProcessCache: false).compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        let outputs = try plan.run(bound.inputs, isTrain: false)
        expectClose(outputs[0], model.expected, relative: 1e-4, "tuned engine vs MXNet")
        let choices = plan.ir.ops.compactMap { op -> ConvolutionAlgorithm?? in
            if case let .convolution(spec) = op.lowering, spec.kernel == [3, 3], spec.stride == [1, 1] { return spec.algorithm }
            return nil
        }
        #expect(choices.count == 17 && !choices.contains(nil), "every 3x3 stride-1 convolution chose: \(choices)")
        // Whole-plan timing has the last word; unless it kept the per-op mix, convolutions of one
        // shape share one algorithm.
        let note = plan.report.notes.first { $0.hasPrefix("convolution algorithms") }
        #expect(note != nil, "\(plan.report.notes)")
        if let note, !note.contains("per-op timing kept"), !note.contains("(per-op kept)"), !note.contains("same primitives") {
            var byShape: [[Int]: Set<ConvolutionAlgorithm>] = [:]
            for op in plan.ir.ops {
                if case let .convolution(spec) = op.lowering, spec.kernel == [3, 3], spec.stride == [1, 1], let a = spec.algorithm {
                    byShape[plan.ir.values[op.inputs[0]].shape.dims, default: []].insert(a)
                }
            }
            #expect(byShape.values.allSatisfy { $0.count == 1 }, "\(note): \(byShape)")
        }
        let steps = plan.report.primitives
        let reorderTargets = steps.indices.filter { steps[$0].kind == "reorder" && !steps[$0].isBorderReorder }.map { i in
            steps[(i + 1)...].first { $0.kind != "reorder" }?.kind ?? "nothing"
        }
        #expect(reorderTargets.allSatisfy { $0 == "convolution" }, "\(plan.report)")
        let cached = try CPUEngine(options: options, usesProcessCache: false).compilePlan(bound.graph, shapes: bound.shapes, types: bound.types, constants: bound.constants)
        #expect(cached.report.cache == .diskHit)
        #expect(cached.ir.ops.map(\.lowering) == plan.ir.ops.map(\.lowering))
        expectClose(try cached.run(bound.inputs, isTrain: false)[0], outputs[0], relative: 1e-6, "cached tuned plan")
    }
}
