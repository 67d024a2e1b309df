import KilnCore

// The IR checker, run after building the IR and after every pass: a pass that breaks an invariant
// fails at once, naming itself, instead of producing a plan that computes something else.
//
// ```
// %2 = convolution conv0 (%0, %1)        ok: %0 input, %1 constant
// %4 = eltwise(relu) relu0 (%3)          error: %3 is read before any op writes it
// ```

extension EngineIR {
    /// Checks the IR's invariants; throws ``EngineCoreError/invalidIR(pass:reason:)`` naming `pass`.
    ///
    /// - every value read is an input, a constant or the output of an earlier op (topological order);
    /// - every op writes a value of its own that no other op writes, and no input or constant;
    /// - each lowering kind gets the inputs it needs (weights constant, shapes that agree);
    /// - post-ops sit only where the engine's `policy` takes them, with at most one `sum`, of the
    ///   output's shape;
    /// - every group output is defined.
    public func check(after pass: String, policy: FusionPolicy) throws {
        func fail(_ reason: String) -> EngineCoreError { .invalidIR(pass: pass, reason: reason) }
        var defined = Set<Int>()
        for (v, value) in values.enumerated() {
            if case .computed = value.origin { continue }
            defined.insert(v)
        }
        var written = Set<Int>()
        for op in ops {
            let label = "op '\(op.name)'"
            for v in op.reads {
                guard v >= 0 && v < values.count else { throw fail("\(label) reads %\(v), which does not exist") }
                guard defined.contains(v) else { throw fail("\(label) reads %\(v) before any op writes it") }
            }
            guard op.output >= 0 && op.output < values.count else { throw fail("\(label) writes %\(op.output), which does not exist") }
            guard case .computed = values[op.output].origin else { throw fail("\(label) writes %\(op.output), an input or constant") }
            guard !written.contains(op.output) else { throw fail("\(label) writes %\(op.output), which another op writes too") }
            written.insert(op.output)
            defined.insert(op.output)
            try checkShapes(op, policy, fail)
        }
        for v in outputs {
            guard v >= 0 && v < values.count, defined.contains(v) else { throw fail("the group output %\(v) is not defined") }
        }
    }

    private func checkShapes(_ op: Op, _ policy: FusionPolicy, _ fail: (String) -> EngineCoreError) throws {
        let label = "op '\(op.name)' (\(op.lowering.summary))"
        let out = values[op.output].shape
        func arity(_ n: Int) throws {
            guard op.inputs.count == n else { throw fail("\(label) has \(op.inputs.count) inputs instead of \(n)") }
        }
        func constant(_ k: Int) throws {
            guard values[op.inputs[k]].isConstant else { throw fail("\(label) reads input \(k) (a weight) from a value not known at compile") }
        }
        switch op.lowering {
        case let .convolution(spec):
            try arity(spec.hasBias ? 3 : 2)
            try (1..<op.inputs.count).forEach(constant)
            let w = values[op.inputs[1]].shape
            guard w.rank == 4, w[0] == spec.numFilter, out.rank == 4, out[1] == spec.numFilter else {
                throw fail("\(label) has weight \(w) and output \(out) for \(spec.numFilter) filters")
            }
            if spec.hasBias, values[op.inputs[2]].shape != [spec.numFilter] { throw fail("\(label) has a bias of shape \(values[op.inputs[2]].shape)") }
        case let .deconvolution(spec):
            try arity(spec.hasBias ? 3 : 2)
            try (1..<op.inputs.count).forEach(constant)
            guard out.rank == 4, out[1] == spec.numFilter else { throw fail("\(label) has output \(out) for \(spec.numFilter) filters") }
            if spec.hasBias, values[op.inputs[2]].shape != [spec.numFilter] { throw fail("\(label) has a bias of shape \(values[op.inputs[2]].shape)") }
        case let .innerProduct(spec):
            try arity(spec.hasBias ? 3 : 2)
            try (1..<op.inputs.count).forEach(constant)
            if spec.hasBias, values[op.inputs[2]].shape != [spec.numHidden] { throw fail("\(label) has a bias of shape \(values[op.inputs[2]].shape)") }
        case .batchNorm:
            try arity(5)
            try (1..<5).forEach(constant)
            guard values[op.inputs[0]].shape == out else { throw fail("\(label) changes the shape") }
        case .eltwise, .identity:
            try arity(1)
            guard values[op.inputs[0]].shape == out else { throw fail("\(label) changes the shape") }
        case .add:
            try arity(2)
            guard values[op.inputs[0]].shape == out, values[op.inputs[1]].shape == out else { throw fail("\(label) adds tensors of different shapes") }
        case .binary:
            try arity(2)
            let a = values[op.inputs[0]].shape, b = values[op.inputs[1]].shape
            // The second operand matches the first or repeats along axes of size 1; the output is the first's shape.
            guard a == out, b.rank == a.rank, zip(a.dims, b.dims).allSatisfy({ $0 == $1 || $1 == 1 }) else {
                throw fail("\(label) combines \(a) with \(b) into \(out), which is not a broadcast of the second onto the first")
            }
        case .pooling, .softmax:
            try arity(1)
        case .reshape:
            try arity(1)
            guard values[op.inputs[0]].shape.elementCount == out.elementCount else { throw fail("\(label) changes the element count") }
        case .concat:
            guard !op.inputs.isEmpty else { throw fail("\(label) has no inputs") }
        case let .averagePoolingDense(spec):
            try arity(spec.hasBias ? 3 : 2)
            try (1..<op.inputs.count).forEach(constant)
            let x = values[op.inputs[0]].shape
            guard x.rank == 4, out.dims == [x[0], spec.numHidden], values[op.inputs[1]].shape.elementCount == spec.numHidden * x[1] else {
                throw fail("\(label) reads \(x) with weight \(values[op.inputs[1]].shape) into \(out)")
            }
        }
        if !op.postOps.isEmpty {
            guard policy.allows(op.lowering, op.postOps) else { throw fail("\(label) has post-ops the engine's kernels do not take") }
            var sums = 0
            for p in op.postOps {
                if case let .sum(v) = p {
                    sums += 1
                    guard values[v].shape == out else { throw fail("\(label) sums %\(v) of shape \(values[v].shape) into an output of shape \(out)") }
                    guard v != op.output else { throw fail("\(label) sums its own output") }
                }
            }
            guard sums <= 1 else { throw fail("\(label) has \(sums) sum post-ops") }
        }
    }
}
