// The engine core's optimized IR in the cuda engine's terms: steps on device buffers, in order, with
// the reorders its storage layout needs. Every fusion decision was made by the core's passes
// (BatchNorm folding, post-op fusion with the cuda engine's FusionPolicy, the fused head); this
// translation only maps each op's lowering kind and post-ops to the kernel that runs it.
//
//   %3 = convolution c1 (%0, %1, %2) post-ops [sum(%0), eltwise(relu)]   ->  convolution(x: 0, y: 3, residual: 0, relu)
//   %5 = reshape flatten0 (%4)   (NHWC storage, 4-d)                       ->  reorderToNCHW(x: 4, y: 6); %5 aliases %6
//   %7 = average_pooling+inner_product pool+fc (%6, %w, %b)                ->  head(x: 6, y: 7, ...)
import KilnCore
import KilnEngineCore
import KilnGraph

/// One step of a compiled group. Values are indices into ``CUDASteps/values``.
enum CUDAStep {
    /// Convolution with its (folded) bias, an optional residual and activation.
    case convolution(x: Int, y: Int, weight: NDArray, bias: [Float], spec: ConvolutionSpec, residual: Int?, activation: EltwiseSpec?)
    /// Per-channel scale and shift (a BatchNorm not folded into a convolution), then an activation.
    case affine(x: Int, y: Int, scale: [Float], shift: [Float], activation: EltwiseSpec?)
    /// y = act(a + b) or y = act(a).
    case pointwise(inputs: [Int], y: Int, activation: EltwiseSpec?)
    case pooling(x: Int, y: Int, spec: PoolingSpec)
    /// y[N, M] = act(x[N, K] · wᵀ + b).
    case fullyConnected(x: Int, y: Int, weight: NDArray, bias: [Float]?, activation: EltwiseSpec?)
    /// Global average pooling and a dense layer in one kernel, writing float (a network's head).
    case head(x: Int, y: Int, weight: NDArray, bias: [Float]?, relu: Bool)
    /// Softmax over the middle axis of (outer, axis, inner).
    case softmax(x: Int, y: Int, view: [Int])
    /// A channels-last 4-d value rewritten in NCHW element order (before a flatten or a dense layer).
    case reorderToNCHW(x: Int, y: Int)

    var reads: [Int] {
        switch self {
        case let .convolution(x, _, _, _, _, r, _): return [x] + (r.map { [$0] } ?? [])
        case let .affine(x, _, _, _, _), let .pooling(x, _, _), let .fullyConnected(x, _, _, _, _), let .head(x, _, _, _, _),
             let .softmax(x, _, _), let .reorderToNCHW(x, _):
            return [x]
        case let .pointwise(ins, _, _): return ins
        }
    }

    var writes: Int {
        switch self {
        case let .convolution(_, y, _, _, _, _, _), let .affine(_, y, _, _, _), let .pointwise(_, y, _), let .pooling(_, y, _),
             let .fullyConnected(_, y, _, _, _), let .head(_, y, _, _, _), let .softmax(_, y, _), let .reorderToNCHW(_, y):
            return y
        }
    }
}

/// A value: its logical (NCHW) shape, and the value whose buffer it shares (reshapes, identities).
struct CUDAValue {
    var shape: Shape
    var aliasOf: Int?
}

/// An optimized IR as steps, inputs and outputs (see the file's note).
struct CUDASteps {
    /// The IR's values, then the reorders' values.
    var values: [CUDAValue]
    var steps: [CUDAStep] = []
    /// Group inputs: name and value.
    var inputs: [(name: String, value: Int)] = []
    /// One value per group output.
    var outputs: [Int]

    /// The value a buffer belongs to, following aliases.
    func base(_ v: Int) -> Int {
        var b = v
        while let a = values[b].aliasOf { b = a }
        return b
    }

    /// Translates an optimized IR; `channelsLast` says 4-d values are stored NHWC, so that reading
    /// one as another shape needs a reorder first.
    init(_ ir: EngineIR, channelsLast: Bool) throws {
        values = ir.values.map { CUDAValue(shape: $0.shape, aliasOf: nil) }
        outputs = ir.outputs
        for name in ir.usedInputs {
            if let v = ir.values.firstIndex(where: { $0.inputName == name }) { inputs.append((name, v)) }
        }
        func constant(_ op: EngineIR.Op, _ k: Int) throws -> NDArray {
            guard k < op.inputs.count, let c = ir.values[op.inputs[k]].constant else {
                throw CUDAError.unsupported(node: op.name, op: op.op, reason: "its input \(k) is not a constant known at compile")
            }
            return c
        }
        func floats(_ a: NDArray) -> [Float] { (0..<a.elementCount).map { Float(a.element($0)) } }
        /// The op's activation and residual from its post-ops (the fusion policy allows at most one of each).
        func epilogue(_ op: EngineIR.Op) -> (residual: Int?, activation: EltwiseSpec?) {
            var residual: Int?, activation: EltwiseSpec?
            for p in op.postOps {
                switch p {
                case let .sum(v): residual = v
                case let .eltwise(e): activation = e
                }
            }
            return (residual, activation)
        }
        /// A 4-d NHWC value written in NCHW order, for an op that reads its elements as NCHW.
        func inNCHWOrder(_ x: Int) -> Int {
            let xs = values[x].shape
            guard channelsLast && xs.rank == 4 && xs[2] * xs[3] > 1 else { return x }
            values.append(CUDAValue(shape: xs, aliasOf: nil))
            steps.append(.reorderToNCHW(x: x, y: values.count - 1))
            return values.count - 1
        }

        for op in ir.ops {
            let x = op.inputs.first ?? -1, y = op.output
            let (residual, activation) = epilogue(op)
            switch op.lowering {
            case let .convolution(spec):
                let bias = spec.hasBias ? floats(try constant(op, 2)) : [Float](repeating: 0, count: spec.numFilter)
                steps.append(.convolution(x: x, y: y, weight: try constant(op, 1), bias: bias, spec: spec, residual: residual, activation: activation))
            case let .batchNorm(spec):
                // y = x·s + (beta - mean·s), s from BatchNormSpec.scale.
                let gamma = floats(try constant(op, 1)).map(Double.init), beta = floats(try constant(op, 2))
                let mean = floats(try constant(op, 3)), variance = floats(try constant(op, 4)).map(Double.init)
                let scale = spec.scale(gamma: gamma, variance: variance).map(Float.init)
                let shift = scale.indices.map { c in Float(Double(beta[c]) - Double(mean[c]) * Double(scale[c])) }
                steps.append(.affine(x: x, y: y, scale: scale, shift: shift, activation: activation))
            case let .eltwise(spec):
                steps.append(.pointwise(inputs: [x], y: y, activation: spec))
            case .add:
                steps.append(.pointwise(inputs: op.inputs, y: y, activation: activation))
            case .deconvolution:
                // The cuda engine's table does not claim Deconvolution.
                throw CUDAError.unsupported(node: op.name, op: op.op, reason: "the cuda engine does not lower Deconvolution")
            case .binary:
                // The cuda engine's table claims no broadcasting op, so no IR of it holds one.
                throw CUDAError.unsupported(node: op.name, op: op.op, reason: "the cuda engine does not lower a broadcasting binary op")
            case let .pooling(spec):
                steps.append(.pooling(x: x, y: y, spec: spec))
            case let .innerProduct(spec):
                let bias = spec.hasBias ? floats(try constant(op, 2)) : nil
                steps.append(.fullyConnected(x: inNCHWOrder(x), y: y, weight: try constant(op, 1), bias: bias, activation: activation))
            case let .averagePoolingDense(spec):
                let bias = spec.hasBias ? floats(try constant(op, 2)) : nil
                steps.append(.head(x: x, y: y, weight: try constant(op, 1), bias: bias, relu: activation != nil))
            case let .softmax(axis):
                let d = values[x].shape.dims
                guard axis >= 0 && axis < d.count else {
                    throw CUDAError.unsupported(node: op.name, op: op.op, reason: "softmax axis \(axis) outside the data")
                }
                steps.append(.softmax(x: x, y: y, view: [d[..<axis].reduce(1, *), d[axis], d[(axis + 1)...].reduce(1, *), 1]))
            case .reshape, .identity:
                // NHWC bytes are not the NCHW order a reshape reads: write them in that order first.
                let source = values[x].shape == values[y].shape ? x : inNCHWOrder(x)
                values[y].aliasOf = source
            case .concat:
                throw CUDAError.unsupported(node: op.name, op: op.op, reason: "the cuda engine has no concat kernel")
            }
        }
    }
}
