// One training step of a golden gradient case, run as MXNet ran it: bind with MXNet's gradient
// requests (labels `.null`, everything else `.write`), a training forward, backward with MXNet's
// head gradients; then the outputs, the auxiliary states after the step and every gradient must match.
//
//   arg:*, aux:* ──forward(isTrain: true)──> out:*        1e-4 of the scale
//                   ograd:* ──backward──────> grad:*       1e-3 (MXNet's wrong ones: disputed)
//                                             aux states   1e-4 after the step
import KilnCore
import KilnGraph
import KilnRuntime

/// A gradient MXNet 1.9.1 gets wrong (the fixture's `mxnet_wrong`): the backend is expected to differ
/// from MXNet's value, so it is reported apart from the outcome.
public struct DisputedGradient: Sendable {
    public let argument: String
    /// What is wrong with MXNet's value, as the fixture says.
    public let mxnetError: String
    /// The backend's gradient against MXNet's.
    public let closeness: Closeness

    /// Whether the backend matched MXNet's wrong value anyway (which it should not).
    public var matchesMXNet: Bool { closeness.within(ConformanceSuite.gradientTolerance) }
}

/// What one training step gave on one backend.
public struct TrainingOutcome: Sendable {
    /// The outputs, auxiliary states and every gradient MXNet gets right.
    public let outcome: ConformanceOutcome
    /// The gradients MXNet gets wrong, compared with MXNet's values (empty unless the case lists some).
    public let disputed: [DisputedGradient]
}

extension ConformanceSuite {
    /// The training-step cases: one-op cases in the index's order, then the models.
    public func gradientCaseNames() throws -> [String] { try fixtures.gradientCaseNames() }

    /// Runs one training step on a backend (bound on the CPU; the GPU backends run inference only).
    /// Nothing is a constant in training, so the claim asks about every op node with no constants.
    public func runTraining(_ c: GoldenGradientCase, on backend: any Backend) -> TrainingOutcome {
        func result(_ o: ConformanceOutcome, _ disputed: [DisputedGradient] = []) -> TrainingOutcome {
            TrainingOutcome(outcome: o, disputed: disputed)
        }
        guard backend.runs(on: .cpu) else { return result(.notClaimed("\(backend.name) does not run on the cpu, where training runs")) }
        let graph = c.symbol.graph
        let refusals = graph.nodes.indices.compactMap { i -> PreparedCase.Refusal? in
            let n = graph.nodes[i], s = backend.support(SupportQuery(graph: graph, node: i))
            return n.isVariable || s.isSupported ? nil : PreparedCase.Refusal(node: n.name, op: n.op, support: s)
        }
        guard refusals.isEmpty else { return result(.notClaimed(refusals.map(\.description).joined(separator: "; "))) }

        let exec: Executor
        do {
            exec = try c.symbol.bind(shapes: c.arguments.mapValues(\.shape), types: c.arguments.mapValues(\.dtype),
                                     gradReqs: c.gradientRequests, sharedBuffer: c.arguments.merging(c.auxiliaryStates) { a, _ in a },
                                     backend: backend)
            try exec.forward(isTrain: true)
        } catch {
            return result(.failed("claimed, but the training forward threw: \(error)"))
        }
        let forward = Self.compare(exec.outputs, c.outputs, tolerance: Self.outputTolerance)
        guard case var .passed(worst) = forward else { return result(forward) }
        do { try exec.backward(c.headGradients) } catch { return result(.failed("backward threw: \(error)")) }

        // The step moves the auxiliary states (BatchNorm's moving statistics, which MXNet 1.9 updates
        // in its backward: the fixture holds them after backward).
        for (name, expected) in c.auxiliaryStatesAfter.sorted(by: { $0.key < $1.key }) {
            guard let actual = exec.auxDict[name] else { return result(.failed("no auxiliary state \(name)")) }
            let closeness = Closeness(actual, expected)
            guard closeness.within(Self.outputTolerance) else {
                return result(.failed("\(name) after the training step: \(closeness) exceeds \(Self.outputTolerance)"))
            }
            worst = max(worst, closeness.maxAbsDifference / closeness.scale)
        }
        guard Set(exec.gradDict.keys) == Set(c.gradientArguments) else {
            return result(.failed("gradients of \(exec.gradDict.keys.sorted()), MXNet's of \(c.gradientArguments.sorted())"))
        }
        var disputed: [DisputedGradient] = []
        for name in c.gradientArguments {
            guard let expected = c.gradients[name] else { return result(.failed("the fixture has no gradient of \(name)")) }
            guard let actual = exec.gradDict[name] else { continue }  // the key check above
            let closeness = Closeness(actual, expected)
            guard closeness.shapesMatch else { return result(.failed("the gradient of \(name) has shape \(actual.shape), MXNet's \(expected.shape)")) }
            if let wrong = c.mxnetWrong[name] {
                disputed.append(DisputedGradient(argument: name, mxnetError: wrong, closeness: closeness))
                continue
            }
            guard closeness.within(Self.gradientTolerance) else {
                return result(.failed("the gradient of \(name): \(closeness) exceeds \(Self.gradientTolerance)"))
            }
            worst = max(worst, closeness.maxAbsDifference / closeness.scale)
        }
        return result(.passed(maxDifference: worst), disputed)
    }
}
