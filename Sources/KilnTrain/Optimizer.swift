// Optimizers with MXNet 1.9's update rules (mxnet/optimizer/optimizer.py and the fused kernels of
// src/operator/optimizer_op-inl.h). Each update is one pass over float buffers.
//
//   update(name, weight, gradient):
//     count[name] += 1; numUpdate = max over names        (MXNet's _update_count)
//     lr = (scheduler?(numUpdate) ?? learningRate) * lrMult[name]
//     wd = weightDecay * wdMult[name]
//     step(weight, gradient, state[name], lr, wd)         SGD, NAG, Adam below
//
// `clip(x)` clamps to [-clipGradient, clipGradient] and is skipped when no positive bound is set.

import Foundation
import KilnCore
import KilnGraph

/// The values an optimizer's step works with for one parameter.
public struct StepParameters: Sendable {
    /// The learning rate with the parameter's multiplier applied.
    public var learningRate: Float
    /// The weight decay with the parameter's multiplier applied.
    public var weightDecay: Float
    public var rescaleGradient: Float
    /// The clipping bound, nil when clipping is off.
    public var clipGradient: Float?
    /// How many times this parameter has been updated, this update included.
    public var count: Int
}

/// The base of the optimizers (MXNet's `mx.optimizer.Optimizer`): learning rate and its schedule,
/// weight decay, gradient rescaling and clipping, per-parameter multipliers, update counts, and the
/// state each parameter keeps between updates.
///
/// ```
/// let sgd = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4)
/// try sgd.update("fc_weight", weight: &weight, gradient: gradient)
/// ```
///
/// Subclasses implement ``makeState(for:)`` and ``step(weight:gradient:state:parameters:)``.
open class Optimizer {
    /// The learning rate when there is no scheduler.
    public var learningRate: Double
    /// Gives the learning rate from the update count when set.
    public var scheduler: (any LRScheduler)?
    /// MXNet's `wd`.
    public var weightDecay: Double
    /// MXNet's `rescale_grad`. Nil means 1 for a bare optimizer, and 1 / batch size once a ``Module``
    /// takes the optimizer (as MXNet's Module sets it).
    public var rescaleGradient: Double?
    /// MXNet's `clip_gradient`; nil or a bound of 0 or less turns clipping off.
    public var clipGradient: Double?
    /// Learning-rate multipliers by parameter name (MXNet's `lr_mult`); 1 when absent.
    public var learningRateMultipliers: [String: Double] = [:]
    /// Weight-decay multipliers by parameter name (MXNet's `wd_mult`); 1 when absent.
    public var weightDecayMultipliers: [String: Double] = [:]
    /// MXNet's `num_update`: the largest number of updates any parameter has had.
    public private(set) var updateCount: Int
    let beginUpdate: Int
    var counts: [String: Int] = [:]
    var states: [String: [NDArray]] = [:]

    /// - Parameters:
    ///   - learningRate: nil means 0.01 without a scheduler, and the scheduler's base rate with one;
    ///     given with a scheduler, it overwrites the scheduler's base rate, as in MXNet.
    ///   - beginUpdate: the update count to start from (when resuming training).
    public init(learningRate: Double? = nil, scheduler: (any LRScheduler)? = nil, weightDecay: Double = 0,
                rescaleGradient: Double? = nil, clipGradient: Double? = nil, beginUpdate: Int = 0) {
        if let scheduler, let learningRate, scheduler.baseLearningRate != learningRate {
            scheduler.baseLearningRate = learningRate
        }
        self.learningRate = learningRate ?? scheduler?.baseLearningRate ?? 0.01
        self.scheduler = scheduler
        self.weightDecay = weightDecay
        self.rescaleGradient = rescaleGradient
        self.clipGradient = clipGradient
        self.beginUpdate = beginUpdate
        updateCount = beginUpdate
    }

    /// The state a parameter starts with (momentum, moments), zeros shaped as the weight.
    open func makeState(for weight: NDArray) -> [NDArray] { [] }

    /// Updates one float32 weight in place from its gradient and state.
    open func step(weight: inout NDArray, gradient: NDArray, state: inout [NDArray], parameters: StepParameters) {}

    /// The optimizer's name in reports (`"SGD"`).
    open var name: String { "Optimizer" }

    /// Updates the weight of parameter `name` from its gradient (MXNet's `update`).
    ///
    /// Both arrays must be float32 and of one shape. The parameter's state is created on its first update.
    public func update(_ name: String, weight: inout NDArray, gradient: NDArray) throws {
        guard weight.shape == gradient.shape else {
            throw KilnTrainError.shapeMismatch(what: "The gradient of '\(name)'", expected: weight.shape, actual: gradient.shape)
        }
        guard weight.dtype == .float32, gradient.dtype == .float32 else {
            throw KilnTrainError.invalidArgument("\(self.name) updates float32 parameters; '\(name)' has a \(weight.dtype) weight and a \(gradient.dtype) gradient")
        }
        let count = (counts[name] ?? beginUpdate) + 1
        counts[name] = count
        updateCount = max(updateCount, count)
        let lr = (scheduler?.learningRate(at: updateCount) ?? learningRate) * (learningRateMultipliers[name] ?? 1)
        let wd = weightDecay * (weightDecayMultipliers[name] ?? 1)
        let clip = clipGradient.flatMap { $0 > 0 ? Float($0) : nil }
        let p = StepParameters(learningRate: Float(adjustedLearningRate(lr, count: count)), weightDecay: Float(wd),
                               rescaleGradient: Float(rescaleGradient ?? 1), clipGradient: clip, count: count)
        // Taking the state out of the dictionary keeps its buffers uniquely referenced, so the step
        // writes them in place instead of copying them.
        var state = states.removeValue(forKey: name) ?? makeState(for: weight)
        step(weight: &weight, gradient: gradient, state: &state, parameters: p)
        states[name] = state
    }

    /// A hook for optimizers that correct the learning rate per step (Adam's bias correction), computed
    /// in double precision as MXNet's Python does.
    open func adjustedLearningRate(_ lr: Double, count: Int) -> Double { lr }

    /// The state kept for a parameter (empty before its first update, or for plain SGD).
    public func state(of name: String) -> [NDArray] { states[name] ?? [] }

    /// Sets the multipliers as MXNet's Module does for a symbol's parameters: weight decay off for
    /// parameters whose names end in neither `_weight` nor `_gamma`, then the variables' `__lr_mult__`
    /// and `__wd_mult__` attributes. Entries already in the dictionaries are kept (they win, as the
    /// explicit `lr_mult`/`wd_mult` arguments of MXNet do).
    public func setMultipliers(from symbol: Symbol, parameterNames: [String]) {
        var lr: [String: Double] = [:], wd: [String: Double] = [:]
        for n in parameterNames where !(n.hasSuffix("_weight") || n.hasSuffix("_gamma")) { wd[n] = 0 }
        let names = Set(parameterNames)
        for node in symbol.graph.nodes where node.isVariable && names.contains(node.name) {
            if let v = node.attributes["__lr_mult__"].flatMap(Double.init) { lr[node.name] = v }
            if let v = node.attributes["__wd_mult__"].flatMap(Double.init) { wd[node.name] = v }
        }
        learningRateMultipliers.merge(lr) { user, _ in user }
        weightDecayMultipliers.merge(wd) { user, _ in user }
    }
}

@inline(__always)
func clipped(_ x: Float, _ bound: Float) -> Float { x > bound ? bound : (x < -bound ? -bound : x) }

/// What SGD and NAG share: a momentum, one momentum buffer per weight when it is not zero, and the
/// plain step `weight = (1 - lr * wd) * weight - lr * clip(rescale * grad)` without one.
open class MomentumOptimizer: Optimizer {
    public let momentum: Double

    public init(learningRate: Double? = nil, momentum: Double = 0, scheduler: (any LRScheduler)? = nil, weightDecay: Double = 0,
                rescaleGradient: Double? = nil, clipGradient: Double? = nil, beginUpdate: Int = 0) {
        self.momentum = momentum
        super.init(learningRate: learningRate, scheduler: scheduler, weightDecay: weightDecay,
                   rescaleGradient: rescaleGradient, clipGradient: clipGradient, beginUpdate: beginUpdate)
    }

    open override func makeState(for weight: NDArray) -> [NDArray] {
        momentum != 0 ? [NDArray(zeros: weight.shape, dtype: .float32)] : []
    }

    final func plainStep(_ w: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
                         lr: Float, wd: Float, rescale: Float, bound: Float) {
        for i in w.indices { w[i] = (1 - lr * wd) * w[i] - lr * clipped(rescale * g[i], bound) }
    }
}

/// Stochastic gradient descent with momentum and weight decay (MXNet's `SGD`):
///
/// ```
/// g = clip(rescale * grad) + wd * weight
/// momentum = 0:  weight -= lr * g
/// otherwise:     mom = momentum * mom - lr * g;  weight += mom
/// ```
public final class SGD: MomentumOptimizer {

    public override var name: String { "SGD" }


    public override func step(weight: inout NDArray, gradient: NDArray, state: inout [NDArray], parameters p: StepParameters) {
        let lr = p.learningRate, wd = p.weightDecay, rescale = p.rescaleGradient, bound = p.clipGradient ?? .infinity
        weight.withUnsafeMutableBufferPointer(as: Float.self) { w in
            gradient.withUnsafeBufferPointer(as: Float.self) { g in
                if state.isEmpty { return plainStep(w, g, lr: lr, wd: wd, rescale: rescale, bound: bound) }
                let mu = Float(momentum)
                state[0].withUnsafeMutableBufferPointer(as: Float.self) { m in
                    for i in w.indices {
                        m[i] = mu * m[i] - lr * wd * w[i] - lr * clipped(rescale * g[i], bound)
                        w[i] += m[i]
                    }
                }
            }
        }
    }
}

/// Nesterov accelerated gradient (MXNet's `NAG`), as MXNet 1.9's `nag_mom_update` kernel runs in
/// place (`out=weight`):
///
/// ```
/// mom = momentum * mom
/// new = weight - mom + (momentum + 1) * (mom - lr * (clip(rescale * grad) + wd * weight))
/// mom = mom - lr * (clip(rescale * grad) + wd * new)    // the kernel reads the weight it just wrote
/// weight = new
/// ```
/// Without momentum it is plain ``SGD``.
public final class NAG: MomentumOptimizer {

    public override var name: String { "NAG" }


    public override func step(weight: inout NDArray, gradient: NDArray, state: inout [NDArray], parameters p: StepParameters) {
        let lr = p.learningRate, wd = p.weightDecay, rescale = p.rescaleGradient, bound = p.clipGradient ?? .infinity
        weight.withUnsafeMutableBufferPointer(as: Float.self) { w in
            gradient.withUnsafeBufferPointer(as: Float.self) { g in
                if state.isEmpty { return plainStep(w, g, lr: lr, wd: wd, rescale: rescale, bound: bound) }
                let mu = Float(momentum)
                state[0].withUnsafeMutableBufferPointer(as: Float.self) { m in
                    for i in w.indices {
                        let gi = clipped(rescale * g[i], bound)
                        let decayed = mu * m[i]
                        let updated = w[i] - decayed + (mu + 1) * (decayed - lr * (gi + wd * w[i]))
                        m[i] = decayed - lr * (gi + wd * updated)
                        w[i] = updated
                    }
                }
            }
        }
    }
}

/// Adam (MXNet's `Adam`), with MXNet's bias correction folded into the learning rate:
///
/// ```
/// g = clip(rescale * grad + wd * weight)
/// m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g²
/// weight -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)
/// ```
/// Note that clipping here applies after weight decay, unlike SGD's.
public final class Adam: Optimizer {
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double

    public init(learningRate: Double = 0.001, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                scheduler: (any LRScheduler)? = nil, weightDecay: Double = 0, rescaleGradient: Double? = nil,
                clipGradient: Double? = nil, beginUpdate: Int = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        super.init(learningRate: learningRate, scheduler: scheduler, weightDecay: weightDecay,
                   rescaleGradient: rescaleGradient, clipGradient: clipGradient, beginUpdate: beginUpdate)
    }

    public override var name: String { "Adam" }

    public override func makeState(for weight: NDArray) -> [NDArray] {
        [NDArray(zeros: weight.shape, dtype: .float32), NDArray(zeros: weight.shape, dtype: .float32)]
    }

    public override func adjustedLearningRate(_ lr: Double, count: Int) -> Double {
        let t = Double(count)
        return lr * (1 - pow(beta2, t)).squareRoot() / (1 - pow(beta1, t))
    }

    public override func step(weight: inout NDArray, gradient: NDArray, state: inout [NDArray], parameters p: StepParameters) {
        let lr = p.learningRate, wd = p.weightDecay, rescale = p.rescaleGradient, bound = p.clipGradient ?? .infinity
        let b1 = Float(beta1), b2 = Float(beta2), eps = Float(epsilon)
        // Moved out of the array so that both moments can be written at once, without copies.
        var mean = state[0], variance = state[1]
        state.removeAll()
        defer { state = [mean, variance] }
        weight.withUnsafeMutableBufferPointer(as: Float.self) { w in
            gradient.withUnsafeBufferPointer(as: Float.self) { g in
                mean.withUnsafeMutableBufferPointer(as: Float.self) { m in
                    variance.withUnsafeMutableBufferPointer(as: Float.self) { v in
                        for i in w.indices {
                            let gi = clipped(rescale * g[i] + wd * w[i], bound)
                            let mi = b1 * m[i] + (1 - b1) * gi
                            let vi = b2 * v[i] + (1 - b2) * gi * gi
                            m[i] = mi
                            v[i] = vi
                            // vi is never negative; `.magnitude` tells LLVM so, which drops libm's errno
                            // branch from the square root and lets the loop vectorize (a copy of this loop
                            // on 10M floats, swiftc -O: 50 ms scalar, 17 ms vectorized).
                            w[i] -= lr * mi / (vi.magnitude.squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }
}
