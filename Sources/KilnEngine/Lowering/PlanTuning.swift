import Foundation
import KilnCore
import KilnEngineCore
import KilnRuntime

// Choosing convolution algorithms by timing whole plans. Per-op timing (ConvolutionChoice.swift)
// times each convolution alone, a few runs each, on warm caches: at batch 1 one run is 20 µs, the
// choice flips between processes with the machine's noise, and the engine cache then keeps a bad
// mix for every later run. So after per-op timing, convolutions of the same shape are made one
// class that takes one algorithm (the class's majority), and each class tries its other algorithms
// in the whole plan, interleaved with the best plan so far; a change is kept only when the whole
// plan's median gets faster by more than 2%.
//
// ```
// classes (input -> output)        per-op votes          whole plan, median of interleaved runs
// 16x32x32 -> 16x32x32 (18 convs)  direct 12, wino 6     direct 1.08 ms | wino 1.31 | in place 1.10
// 32x16x16 -> 32x16x16 (17 convs)  wino 17               wino   1.08 ms | direct 1.17 | ...
// 64x8x8   -> 64x8x8   (17 convs)  direct 9, wino 8      direct 1.08 ms | wino 1.07 (not 2% faster)
// ```

/// What whole-plan tuning decided, for the compile report.
struct PlanTuningOutcome {
    /// The tuned core (the per-op core when nothing was better).
    var core: CompiledCore
    /// One line for the report's notes.
    var note: String
}

enum PlanTuning {
    /// The share a change must win by to be kept: below it, the difference is the machine's noise.
    static let margin = 0.02
    /// About how long the timing of one comparison may take, in seconds.
    static let comparisonBudget = 0.08

    /// Refines the per-op algorithm choices of `perOp` (see the file's note). `perOp.tuned` lists the
    /// convolutions whose algorithm was chosen by timing; with none, `perOp` is returned unchanged.
    static func refine(_ perOp: CompiledCore, template: EngineReport, numerics: LoweringNumerics) throws -> PlanTuningOutcome? {
        guard !perOp.tuned.isEmpty else { return nil }
        let ir = perOp.ir
        // Classes of convolutions by shape, in graph order.
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for i in perOp.tuned.keys.sorted() {
            let op = ir.ops[i]
            let key = ir.values[op.inputs[0]].shape.dims.dropFirst().map(String.init).joined(separator: "x") + " -> "
                + ir.values[op.output].shape.dims.dropFirst().map(String.init).joined(separator: "x")
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(i)
        }
        var assignment: [String: ConvolutionAlgorithm] = [:]
        for key in order {
            let votes = Dictionary(grouping: members[key] ?? [], by: { perOp.tuned[$0] ?? .direct }).mapValues(\.count)
            // Ties go to the plainer algorithm (the enum's order: direct first).
            let top = votes.values.max() ?? 0
            assignment[key] = ConvolutionAlgorithm.allCases.first { (votes[$0] ?? 0) == top } ?? .direct
        }

        func build(_ a: [String: ConvolutionAlgorithm]) throws -> CompiledCore {
            var decided = ir
            for key in order {
                for i in members[key] ?? [] {
                    if case var .convolution(spec) = decided.ops[i].lowering {
                        spec.algorithm = a[key] ?? .direct
                        decided.ops[i].lowering = .convolution(spec)
                    }
                }
            }
            return try CompiledCore(ir: decided, report: template, numerics: numerics, tuned: perOp.tuned)
        }

        var best = try build(assignment)
        var summary: [String] = []
        // Where every class was unanimous, the two plans are the same primitives: nothing to time.
        if best.implementationSignature != perOp.implementationSignature {
            let times = try medians([perOp, best])
            if times[0] < times[1] * (1 - margin) {
                // Mixed choices inside a class won clearly: keep the per-op plan as it is.
                return PlanTuningOutcome(core: perOp, note: "convolution algorithms: per-op timing kept (\(ms(times[0])) per run, "
                                         + "one algorithm per shape \(ms(times[1])))")
            }
        }
        for key in order {
            let current = assignment[key] ?? .direct
            var candidates: [(ConvolutionAlgorithm, CompiledCore)] = []
            for alternative in ConvolutionAlgorithm.allCases where alternative != current {
                var a = assignment
                a[key] = alternative
                // An alternative oneDNN cannot create falls back to direct inside the lowering: skip
                // those that lowered to the same primitives as one already tried.
                let core = try build(a)
                if core.implementationSignature == best.implementationSignature
                    || candidates.contains(where: { $0.1.implementationSignature == core.implementationSignature }) { continue }
                candidates.append((alternative, core))
            }
            guard !candidates.isEmpty else {
                summary.append("\(key): \(current.rawValue)")
                continue
            }
            let times = try medians([best] + candidates.map(\.1))
            var bestTime = times[0]
            var kept = current
            for (k, candidate) in candidates.enumerated() where times[k + 1] < bestTime * (1 - margin) {
                best = candidate.1
                bestTime = times[k + 1]
                kept = candidate.0
            }
            assignment[key] = kept
            summary.append("\(key): \(kept.rawValue)")
        }
        // The last word goes to the per-op plan timed side by side with the result: drift between the
        // comparisons above must not make a slower plan win.
        if best.implementationSignature == perOp.implementationSignature {
            return PlanTuningOutcome(core: perOp, note: "convolution algorithms by whole-plan timing (one per shape): "
                                     + summary.joined(separator: ", ") + "; the same primitives as the per-op choice")
        }
        let times = try medians([perOp, best])
        let kept = times[0] < times[1] * (1 - margin) ? perOp : best
        return PlanTuningOutcome(core: kept, note: "convolution algorithms by whole-plan timing (one per shape): "
                                 + summary.joined(separator: ", ") + "; \(ms(times[1])) per run against \(ms(times[0])) for the per-op choice"
                                 + (kept === perOp ? " (per-op kept)" : ""))
    }

    /// The median seconds of one run of each core's plan on zero inputs, timed in interleaved rounds
    /// so that the machine's drift hits them alike.
    static func medians(_ cores: [CompiledCore]) throws -> [Double] {
        let plans = try cores.map { try EnginePlan(core: $0, report: $0.report) }
        let inputs = plans.map { plan in
            Dictionary(uniqueKeysWithValues: zip(plan.inputBindings.map(\.name), plan.inputBindings.map { NDArray(zeros: $0.shape) }))
        }
        let clock = ContinuousClock()
        // One untimed run each (first-touch of the arena and weights), then one timed to size the rounds.
        var first = 0.0
        for (plan, input) in zip(plans, inputs) {
            _ = try plan.run(input, isTrain: false)
            let start = clock.now
            _ = try plan.run(input, isTrain: false)
            first += CPUEngine.seconds(clock.now - start)
        }
        let rounds = max(5, min(31, Int(comparisonBudget / max(first, 1e-6))))
        var samples = Array(repeating: [Double](), count: plans.count)
        for r in 0..<rounds {
            // Alternate the order, so that no plan always runs right after the same one.
            let sequence = r % 2 == 0 ? Array(plans.indices) : plans.indices.reversed()
            for k in sequence {
                let start = clock.now
                _ = try plans[k].run(inputs[k], isTrain: false)
                samples[k].append(CPUEngine.seconds(clock.now - start))
            }
        }
        return samples.map { s in
            let sorted = s.sorted()
            return sorted[sorted.count / 2]
        }
    }

    private static func ms(_ s: Double) -> String { String(format: "%.3f ms", s * 1000) }
}
