import KilnCore
import KilnGraph

// BatchNorm folding: an inference BatchNorm right after a conv or FC (a `complex` op with constant
// weights, whose output only the BatchNorm reads) is folded into that op's weights and bias:
//
//     s  = gamma / sqrt(var + eps)          (gamma read as 1 with fix_gamma=True)
//     w' = w * s     (per output channel)
//     b' = (b - mean) * s + beta            (b = 0 without a bias)
//
// ```
// before:  x ──> conv0(w) ──> bn0(gamma, beta, mean, var) ──> y
// after:   x ──> conv0(w', b') ─────────────────────────────> y
// ```

/// Folds BatchNorm into the conv or FC before it.
public struct BatchNormFolding: EnginePass {
    public init() {}
    public var name: String { "BatchNorm folding" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var folded = 0
        var i = 0
        while i < ir.ops.count {
            guard case let .batchNorm(spec) = ir.ops[i].lowering, let p = foldable(ir, bn: i) else { i += 1; continue }
            let bn = ir.ops[i]
            try fold(&ir, producer: p, bn: bn, spec: spec)
            ir.ops.remove(at: i)
            folded += 1
        }
        return folded
    }

    /// The index of the op the BatchNorm at `bn` can fold into, if any: a complex op with weights per
    /// output channel, known at compile, whose output is read by the BatchNorm alone, with its output
    /// channels on axis 1 (a conv, or an FC with a 2-D output).
    func foldable(_ ir: EngineIR, bn: Int) -> Int? {
        let data = ir.ops[bn].inputs[0]
        guard let p = ir.producer(of: data, before: bn) else { return nil }
        let op = ir.ops[p]
        guard op.fusion == .complex, op.lowering.hasChannelWeights, op.postOps.isEmpty,
              ir.values[data].shape.rank >= 2, ir.useCount(of: data) == 1,
              op.weightInputs.allSatisfy({ $0 < op.inputs.count && ir.values[op.inputs[$0]].isConstant }),
              ir.ops[bn].inputs.dropFirst().allSatisfy({ ir.values[$0].isConstant }) else { return nil }
        if case .innerProduct = op.lowering, ir.values[data].shape.rank != 2 { return nil }
        return p
    }

    func fold(_ ir: inout EngineIR, producer p: Int, bn: EngineIR.Op, spec: BatchNormSpec) throws {
        let op = ir.ops[p]
        let stats = bn.inputs.dropFirst().map { (ir.values[$0].constant?.floats() ?? []).map(Double.init) }
        let (gamma, beta, mean, variance) = (stats[0], stats[1], stats[2], stats[3])
        let channels = mean.count
        let scale = spec.scale(gamma: gamma, variance: variance)
        // The weight is the first weight input, the bias (when there is one) the second.
        let weightSlot = op.weightInputs[0]
        guard let w = ir.values[op.inputs[weightSlot]].constant, w.dtype == .float32, w.shape.first == channels else {
            throw EngineCoreError.invalidIR(pass: name, reason: "op '\(op.name)' has a weight whose first axis is not the \(channels) channels of '\(bn.name)'")
        }
        let bias = op.weightInputs.count > 1 ? ir.values[op.inputs[op.weightInputs[1]]].constant?.floats().map(Double.init) : nil
        var newWeight = NDArray(zeros: w.shape)
        let perChannel = w.elementCount / channels
        w.withUnsafeBufferPointer(as: Float.self) { src in
            newWeight.withUnsafeMutableBufferPointer(as: Float.self) { dst in
                for c in 0..<channels {
                    let s = Float(scale[c])
                    for k in c * perChannel..<(c + 1) * perChannel { dst[k] = src[k] * s }
                }
            }
        }
        var newBias = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let b: Double = bias?[c] ?? 0
            newBias[c] = Float((b - mean[c]) * scale[c] + beta[c])
        }
        var folded = op
        folded.inputs[weightSlot] = ir.addConstant(newWeight, name: op.name + "_weight_folded")
        let b = ir.addConstant(NDArray(shape: [channels], values: newBias), name: op.name + "_bias_folded")
        if op.weightInputs.count > 1 {
            folded.inputs[op.weightInputs[1]] = b
        } else {
            folded.inputs.append(b)
            folded.weightInputs.append(folded.inputs.count - 1)
            folded.attributes["no_bias"] = "False"
            switch folded.lowering {
            case var .convolution(c): c.hasBias = true; folded.lowering = .convolution(c)
            case var .innerProduct(f): f.hasBias = true; folded.lowering = .innerProduct(f)
            default: break
            }
        }
        folded.output = bn.output        // y = bn(conv(x)) = conv'(x)
        folded.fused.append(bn.name)
        ir.ops[p] = folded
    }
}
