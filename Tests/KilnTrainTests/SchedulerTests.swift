import Foundation
import KilnCore
import KilnTrain
import Testing

/// Learning-rate schedules against MXNet 1.9.1's at update counts 0...16, and hand-worked values.
@Suite struct SchedulerTests {
    static let goldenCaseCount = 8

    func makeScheduler(_ c: [String: Any]) throws -> any LRScheduler {
        let kind = try #require(c["kind"] as? String)
        let k = try #require(c["kwargs"] as? [String: Any])
        let warmup = Warmup(steps: Int(number(k["warmup_steps"]) ?? 0), beginLearningRate: number(k["warmup_begin_lr"]) ?? 0,
                            mode: Warmup.Mode(rawValue: k["warmup_mode"] as? String ?? "linear") ?? .linear)
        let base = number(k["base_lr"]) ?? 0.01
        switch kind {
        case "factor":
            return try FactorScheduler(step: Int(number(k["step"]) ?? 1), factor: number(k["factor"]) ?? 1,
                                       stopFactorLearningRate: number(k["stop_factor_lr"]) ?? 1e-8,
                                       baseLearningRate: base, warmup: warmup)
        case "multifactor":
            return try MultiFactorScheduler(steps: ints(k["step"]), factor: number(k["factor"]) ?? 1,
                                            baseLearningRate: base, warmup: warmup)
        case "cosine":
            return try CosineScheduler(maxUpdate: Int(number(k["max_update"]) ?? 1), baseLearningRate: base,
                                       finalLearningRate: number(k["final_lr"]) ?? 0, warmup: warmup)
        default:
            throw TrainGolden.GoldenError("unknown scheduler \(kind)")
        }
    }

    @Test(arguments: 0..<goldenCaseCount)
    func matchesMXNet(_ index: Int) throws {
        let cases = try TrainGolden.cases("schedulers")
        #expect(cases.count == Self.goldenCaseCount)
        let c = cases[index]
        let scheduler = try makeScheduler(c)
        for (u, expected) in zip(ints(c["updates"]), doubles(c["learning_rates"])) {
            let lr = scheduler.learningRate(at: u)
            #expect(abs(lr - expected) <= 1e-12 * max(1, expected), "\(c["kind"] ?? "") \(c["kwargs"] ?? "") at update \(u): \(lr) vs MXNet \(expected)")
        }
    }

    @Test func factorScheduleWorkedByHand() throws {
        // base 1, factor 0.5 every 2 updates: updates 1-2 -> 1, 3-4 -> 0.5, 5-6 -> 0.25; floor at 0.3 stops it at 0.3.
        let s = try FactorScheduler(step: 2, factor: 0.5, stopFactorLearningRate: 0.3, baseLearningRate: 1)
        #expect((1...6).map { s.learningRate(at: $0) } == [1, 1, 0.5, 0.5, 0.3, 0.3])
    }

    @Test func linearWarmupRisesInEqualSteps() throws {
        // 4 warm-up steps from 0 to 0.1: 0, 0.025, 0.05, 0.075, then the schedule (cosine from 0.1).
        let s = try CosineScheduler(maxUpdate: 8, baseLearningRate: 0.1, warmup: Warmup(steps: 4))
        let lrs = (0...4).map { s.learningRate(at: $0) }
        for (lr, e) in zip(lrs, [0, 0.025, 0.05, 0.075, 0.1]) { #expect(abs(lr - e) < 1e-12) }
        // Halfway through the cosine (update 6 of 4...8): (1 + cos(π/2)) / 2 = 0.5 of the base.
        #expect(abs(s.learningRate(at: 6) - 0.05) < 1e-12)
        // At maxUpdate the cosine reaches the final rate (0) and stays there.
        #expect(abs(s.learningRate(at: 8)) < 1e-12)
        #expect(abs(s.learningRate(at: 100)) < 1e-12)
    }

    @Test func invalidSchedulesAreRefused() {
        #expect(throws: KilnTrainError.self) { try FactorScheduler(step: 0) }
        #expect(throws: KilnTrainError.self) { try FactorScheduler(step: 2, factor: 1.5) }
        #expect(throws: KilnTrainError.self) { try MultiFactorScheduler(steps: [5, 3]) }
        #expect(throws: KilnTrainError.self) { try MultiFactorScheduler(steps: []) }
        #expect(throws: KilnTrainError.self) { try CosineScheduler(maxUpdate: 0) }
        #expect(throws: KilnTrainError.self) { try CosineScheduler(maxUpdate: 10, baseLearningRate: 0.1, warmup: Warmup(steps: 2, beginLearningRate: 0.5)) }
    }

    @Test func anOptimizersLearningRateOverwritesTheSchedulersBase() throws {
        // As in MXNet: SGD(learning_rate=0.2, lr_scheduler=FactorScheduler(base_lr=0.01)) decays from 0.2.
        let s = try FactorScheduler(step: 1, factor: 0.5)
        let sgd = SGD(learningRate: 0.2, scheduler: s)
        #expect(s.baseLearningRate == 0.2)
        var w = NDArray(shape: [1], values: [0])
        try sgd.update("w", weight: &w, gradient: NDArray(shape: [1], values: [1]))
        try sgd.update("w", weight: &w, gradient: NDArray(shape: [1], values: [1]))
        // Updates 1 and 2 at 0.2 and 0.1: w = -0.3.
        #expect(abs(w.floats()[0] + 0.3) < 1e-6)
    }
}
