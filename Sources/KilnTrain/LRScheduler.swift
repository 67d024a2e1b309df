// Learning-rate schedules as MXNet 1.9 defines them (mxnet/lr_scheduler.py), including its state:
// Factor and MultiFactor schedules decay their base rate as update counts pass their steps, so they
// expect the non-decreasing counts an optimizer gives them.
//
//   FactorScheduler(step: 3, factor: 0.5, base 0.1), updates 1...10:
//   update   1    2    3    4     5     6     7      8      9      10
//   lr      0.1  0.1  0.1  0.05  0.05  0.05  0.025  0.025  0.025  0.0125
//
// With warm-up, updates below `warmup.steps` get the warm-up rate instead; the decay's step count
// still starts from update 0, as in MXNet.

import Foundation

/// A learning-rate schedule (MXNet's `LRScheduler`).
public protocol LRScheduler: AnyObject {
    /// MXNet's `base_lr`: the rate the schedule decays from. An optimizer given its own learning rate
    /// overwrites it, as MXNet's does (the cosine schedule keeps the rate it was made with, as in MXNet).
    var baseLearningRate: Double { get set }
    /// The learning rate for update number `numUpdate` (1 for the first update).
    func learningRate(at numUpdate: Int) -> Double
}

/// Warm-up before a schedule starts (MXNet's `warmup_steps`, `warmup_begin_lr`, `warmup_mode`).
public struct Warmup: Sendable, Equatable {
    public enum Mode: String, Sendable {
        /// From `beginLearningRate` up to the base rate in equal increments.
        case linear
        /// `beginLearningRate` throughout the warm-up.
        case constant
    }

    public var steps: Int
    public var beginLearningRate: Double
    public var mode: Mode

    public init(steps: Int, beginLearningRate: Double = 0, mode: Mode = .linear) {
        self.steps = steps
        self.beginLearningRate = beginLearningRate
        self.mode = mode
    }

    /// No warm-up.
    public static let none = Warmup(steps: 0)

    func check(baseLearningRate: Double) throws {
        guard beginLearningRate <= baseLearningRate else {
            throw KilnTrainError.invalidArgument("The warm-up's begin learning rate \(beginLearningRate) is above the base learning rate \(baseLearningRate)")
        }
        guard steps >= 0 else { throw KilnTrainError.invalidArgument("Warm-up steps must be 0 or more, got \(steps)") }
    }

    /// MXNet's `get_warmup_lr`; `finalLearningRate` is the base rate when the schedule was made.
    func learningRate(at numUpdate: Int, finalLearningRate: Double) -> Double {
        switch mode {
        case .linear: return beginLearningRate + (finalLearningRate - beginLearningRate) * Double(numUpdate) / Double(steps)
        case .constant: return beginLearningRate
        }
    }
}

/// Multiplies the rate by `factor` every `step` updates, never going below `stopFactorLearningRate`
/// (MXNet's `FactorScheduler`): `base * factor^floor((n - 1) / step)` for update n.
public final class FactorScheduler: LRScheduler {
    public var baseLearningRate: Double
    public let step: Int
    public let factor: Double
    public let stopFactorLearningRate: Double
    public let warmup: Warmup
    let warmupFinalLearningRate: Double
    var count = 0

    public init(step: Int, factor: Double = 1, stopFactorLearningRate: Double = 1e-8, baseLearningRate: Double = 0.01,
                warmup: Warmup = .none) throws {
        try warmup.check(baseLearningRate: baseLearningRate)
        guard step >= 1 else { throw KilnTrainError.invalidArgument("FactorScheduler's step must be 1 or more, got \(step)") }
        guard factor <= 1 else { throw KilnTrainError.invalidArgument("FactorScheduler's factor must be at most 1 to reduce the rate, got \(factor)") }
        self.step = step
        self.factor = factor
        self.stopFactorLearningRate = stopFactorLearningRate
        self.baseLearningRate = baseLearningRate
        self.warmup = warmup
        warmupFinalLearningRate = baseLearningRate
    }

    public func learningRate(at numUpdate: Int) -> Double {
        if numUpdate < warmup.steps { return warmup.learningRate(at: numUpdate, finalLearningRate: warmupFinalLearningRate) }
        // A loop rather than a power, so that resuming at a later update decays as MXNet does.
        while numUpdate > count + step {
            count += step
            baseLearningRate *= factor
            if baseLearningRate < stopFactorLearningRate { baseLearningRate = stopFactorLearningRate }
        }
        return baseLearningRate
    }
}

/// Multiplies the rate by `factor` after each of the given update counts (MXNet's
/// `MultiFactorScheduler`): for steps [s1, s2, ...], update n gets `base * factor^k` where k is the
/// number of steps strictly below n.
public final class MultiFactorScheduler: LRScheduler {
    public var baseLearningRate: Double
    public let steps: [Int]
    public let factor: Double
    public let warmup: Warmup
    let warmupFinalLearningRate: Double
    var nextStep = 0

    public init(steps: [Int], factor: Double = 1, baseLearningRate: Double = 0.01, warmup: Warmup = .none) throws {
        try warmup.check(baseLearningRate: baseLearningRate)
        guard !steps.isEmpty else { throw KilnTrainError.invalidArgument("MultiFactorScheduler needs at least one step") }
        for (i, s) in steps.enumerated() {
            guard s >= 1 else { throw KilnTrainError.invalidArgument("MultiFactorScheduler's steps must be 1 or more, got \(s)") }
            guard i == 0 || s > steps[i - 1] else {
                throw KilnTrainError.invalidArgument("MultiFactorScheduler's steps must increase, got \(steps)")
            }
        }
        guard factor <= 1 else { throw KilnTrainError.invalidArgument("MultiFactorScheduler's factor must be at most 1 to reduce the rate, got \(factor)") }
        self.steps = steps
        self.factor = factor
        self.baseLearningRate = baseLearningRate
        self.warmup = warmup
        warmupFinalLearningRate = baseLearningRate
    }

    public func learningRate(at numUpdate: Int) -> Double {
        if numUpdate < warmup.steps { return warmup.learningRate(at: numUpdate, finalLearningRate: warmupFinalLearningRate) }
        while nextStep < steps.count, numUpdate > steps[nextStep] {
            nextStep += 1
            baseLearningRate *= factor
        }
        return baseLearningRate
    }
}

/// Half a cosine from the base rate down to `finalLearningRate` over `maxUpdate` updates (MXNet's
/// `CosineScheduler`): `final + (base - final) * (1 + cos(π (n - w) / (maxUpdate - w))) / 2` for
/// update n after w warm-up steps, and `final` after `maxUpdate`.
public final class CosineScheduler: LRScheduler {
    public var baseLearningRate: Double
    public let maxUpdate: Int
    public let finalLearningRate: Double
    public let warmup: Warmup
    /// MXNet's `base_lr_orig`: the rate the cosine starts from.
    let startLearningRate: Double

    public init(maxUpdate: Int, baseLearningRate: Double = 0.01, finalLearningRate: Double = 0, warmup: Warmup = .none) throws {
        try warmup.check(baseLearningRate: baseLearningRate)
        guard maxUpdate >= 1 else { throw KilnTrainError.invalidArgument("CosineScheduler's maxUpdate must be 1 or more, got \(maxUpdate)") }
        guard warmup.steps < maxUpdate else {
            throw KilnTrainError.invalidArgument("CosineScheduler's warm-up (\(warmup.steps) steps) must end before maxUpdate (\(maxUpdate))")
        }
        self.maxUpdate = maxUpdate
        self.baseLearningRate = baseLearningRate
        self.finalLearningRate = finalLearningRate
        self.warmup = warmup
        startLearningRate = baseLearningRate
    }

    public func learningRate(at numUpdate: Int) -> Double {
        if numUpdate < warmup.steps { return warmup.learningRate(at: numUpdate, finalLearningRate: startLearningRate) }
        if numUpdate <= maxUpdate {
            let progress = Double(numUpdate - warmup.steps) / Double(maxUpdate - warmup.steps)
            baseLearningRate = finalLearningRate + (startLearningRate - finalLearningRate) * (1 + cos(Double.pi * progress)) / 2
        }
        return baseLearningRate
    }
}
