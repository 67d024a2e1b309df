// The CUDA engine's IR and its fusing passes, done in one walk over a group in topological order:
//
//   conv ─> BatchNorm ─> elemwise_add(·, r) ─> relu        one conv step:
//                                                           y = relu(conv(x, w·s) + (b - mean)·s + beta + r)
//   BatchNorm ─> relu  (not after a conv: v2 blocks)       one affine step: y = relu(x·s[c] + t[c])
//   FullyConnected ─> Activation                           one fc step with its activation
//
// A producer absorbs the next op only when that op is its value's one consumer, so no value that
// something else reads is changed. Weights are folded on the host, in float64, once at compile.
import KilnCore
import KilnGraph
import KilnRuntime

/// An activation the engine's generated epilogues apply.
enum EngineActivation: String, Sendable, Hashable {
    case relu, sigmoid, tanh, softrelu, softsign

    /// The expression in `v` (float) for generated kernels.
    var expression: String {
        switch self {
        case .relu: return "fmaxf(v, 0.f)"
        case .sigmoid: return "1.f / (1.f + expf(-v))"
        case .tanh: return "tanhf(v)"
        case .softrelu: return "(v > 20.f ? v : log1pf(expf(v)))"
        case .softsign: return "v / (1.f + fabsf(v))"
        }
    }
}

/// One step of a compiled group. Values are indices into ``EngineGraph/values``.
enum EngineStep {
    /// Convolution with folded BatchNorm, bias, optional residual and activation.
    case convolution(x: Int, y: Int, weight: NDArray, bias: [Float], parameters: ConvolutionParameters,
                     residual: Int?, activation: EngineActivation?)
    /// Per-channel scale and shift (a BatchNorm not after a convolution), then an activation.
    case affine(x: Int, y: Int, scale: [Float], shift: [Float], activation: EngineActivation?)
    /// y = act(a + b) or y = act(a).
    case pointwise(inputs: [Int], y: Int, activation: EngineActivation?)
    case pooling(x: Int, y: Int, parameters: PoolingParameters)
    /// y[N, M] = act(x[N, K] · wᵀ + b).
    case fullyConnected(x: Int, y: Int, weight: NDArray, bias: [Float]?, activation: EngineActivation?)
    /// Softmax over the middle axis of (outer, axis, inner).
    case softmax(x: Int, y: Int, view: [Int])
    /// A channels-last 4-d value rewritten in NCHW element order (before a flatten or a dense layer).
    case reorderToNCHW(x: Int, y: Int)
}

/// A value: its logical (NCHW) shape, and the value whose buffer it shares (reshapes, copies).
struct EngineValue {
    var shape: Shape
    var aliasOf: Int?
}

/// A group translated into engine steps, inputs and outputs.
struct EngineGraph {
    var values: [EngineValue] = []
    var steps: [EngineStep] = []
    /// Group inputs (not constants): name and value.
    var inputs: [(name: String, value: Int)] = []
    /// One value per graph head.
    var outputs: [Int] = []
    /// Op nodes that became part of another step (for the report).
    var fused: [String] = []

    /// The value a buffer belongs to, following aliases.
    func base(_ v: Int) -> Int {
        var b = v
        while let a = values[b].aliasOf { b = a }
        return b
    }

    /// Translates a group; `channelsLast` says 4-d values will be stored NHWC, so that reinterpreting
    /// one as another shape needs a reorder first.
    init(graph: Graph, shapes: InferredShapes, constants: [String: NDArray], channelsLast: Bool) throws {
        var valueOf: [Graph.Entry: Int] = [:]
        // How many times each entry is read (heads count), to know when a producer may absorb its reader.
        var readers: [Graph.Entry: Int] = [:]
        for n in graph.nodes { for e in n.inputs { readers[e, default: 0] += 1 } }
        for h in graph.heads { readers[h, default: 0] += 1 }
        // The step that produced each value, while it may still absorb ops.
        var producer: [Int: Int] = [:]
        // The step after which each value is computed (inputs: none, so -1).
        var readyStep: [Int: Int] = [:]

        func newValue(_ shape: Shape, alias: Int? = nil) -> Int {
            values.append(EngineValue(shape: shape, aliasOf: alias))
            return values.count - 1
        }
        func constant(_ e: Graph.Entry, _ node: String, _ what: String) throws -> NDArray {
            let src = graph.nodes[e.node]
            guard src.isVariable, let v = constants[src.name] else {
                throw CUDAError.unsupported(node: node, op: "", reason: "its \(what) '\(src.name)' is not a constant known at bind")
            }
            return v
        }
        func floats(_ a: NDArray) -> [Float] { (0..<a.elementCount).map { Float(a.element($0)) } }

        for (i, n) in graph.nodes.enumerated() {
            let out = Graph.Entry(node: i, index: 0)
            if n.isVariable {
                if constants[n.name] == nil {
                    let v = newValue(shapes.nodeOutputs[i][0])
                    inputs.append((n.name, v))
                    valueOf[out] = v
                }
                continue
            }
            let (_, ctx) = try graph.context(of: i)
            let canonical = OpRegistry.shared.lookup(n.op)?.name ?? n.op
            let shape = shapes.nodeOutputs[i][0]
            func input(_ k: Int) throws -> Int {
                guard let v = valueOf[n.inputs[k]] else {
                    throw CUDAError.unsupported(node: n.name, op: n.op, reason: "input \(k) is a constant where the engine needs data")
                }
                return v
            }
            /// The step producing input k, when that input is read by this node alone.
            func absorbable(_ k: Int) -> Int? {
                guard readers[n.inputs[k]] == 1, let v = valueOf[n.inputs[k]], let s = producer[v] else { return nil }
                return s
            }
            switch canonical {
            case "Convolution":
                let p = try ConvolutionParameters(ctx.attributes)
                let w = try constant(n.inputs[1], n.name, "weight")
                let b = p.noBias ? [Float](repeating: 0, count: p.numFilter) : floats(try constant(n.inputs[2], n.name, "bias"))
                let y = newValue(shape)
                steps.append(.convolution(x: try input(0), y: y, weight: w, bias: b, parameters: p, residual: nil, activation: nil))
                readyStep[y] = steps.count - 1
                producer[y] = steps.count - 1
                valueOf[out] = y
            case "BatchNorm":
                let p = try BatchNormParameters(ctx.attributes)
                let gamma = p.fixGamma ? nil : floats(try constant(n.inputs[1], n.name, "gamma"))
                let beta = floats(try constant(n.inputs[2], n.name, "beta"))
                let mean = floats(try constant(n.inputs[3], n.name, "moving_mean"))
                let variance = floats(try constant(n.inputs[4], n.name, "moving_var"))
                let scale = variance.indices.map { c in Float(Double(gamma?[c] ?? 1) / (Double(variance[c]) + p.eps).squareRoot()) }
                let shift = scale.indices.map { c in Float(Double(beta[c]) - Double(mean[c]) * Double(scale[c])) }
                if let s = absorbable(0), case let .convolution(x, y, w, b, cp, nil, nil) = steps[s] {
                    // Fold: w'[k] = w[k]·s[k]; b'[k] = b[k]·s[k] + shift[k].
                    var folded = w
                    let per = w.elementCount / max(scale.count, 1)
                    folded.withUnsafeMutableBufferPointer(as: Float.self) { p in
                        for k in scale.indices { for j in 0..<per { p[k * per + j] *= scale[k] } }
                    }
                    let nb = scale.indices.map { b[$0] * scale[$0] + shift[$0] }
                    steps[s] = .convolution(x: x, y: y, weight: folded, bias: nb, parameters: cp, residual: nil, activation: nil)
                    fused.append(n.name)
                    valueOf[out] = y
                } else {
                    let y = newValue(shape)
                    steps.append(.affine(x: try input(0), y: y, scale: scale, shift: shift, activation: nil))
                    readyStep[y] = steps.count - 1
                    producer[y] = steps.count - 1
                    valueOf[out] = y
                }
            case "Activation", "relu", "sigmoid", "tanh":
                let kind = canonical == "Activation" ? try ctx.attributes.string("act_type") : canonical
                guard let act = EngineActivation(rawValue: kind) else {
                    throw CUDAError.unsupported(node: n.name, op: n.op, reason: "act_type \(kind)")
                }
                if let s = absorbable(0), let merged = Self.withActivation(steps[s], act) {
                    steps[s] = merged
                    fused.append(n.name)
                    valueOf[out] = try input(0)
                } else {
                    let y = newValue(shape)
                    steps.append(.pointwise(inputs: [try input(0)], y: y, activation: act))
                    readyStep[y] = steps.count - 1
                    producer[y] = steps.count - 1
                    valueOf[out] = y
                }
            case "elemwise_add":
                let a = try input(0), b = try input(1)
                // The residual must be computed before the convolution that reads it runs.
                func ready(_ v: Int, before s: Int) -> Bool { (readyStep[base(v)] ?? -1) < s }
                if let s = absorbable(0), case let .convolution(x, y, w, bias, cp, nil, nil) = steps[s], y != b, ready(b, before: s) {
                    steps[s] = .convolution(x: x, y: y, weight: w, bias: bias, parameters: cp, residual: b, activation: nil)
                    fused.append(n.name)
                    valueOf[out] = y
                } else if let s = absorbable(1), case let .convolution(x, y, w, bias, cp, nil, nil) = steps[s], y != a, ready(a, before: s) {
                    steps[s] = .convolution(x: x, y: y, weight: w, bias: bias, parameters: cp, residual: a, activation: nil)
                    fused.append(n.name)
                    valueOf[out] = y
                } else {
                    let y = newValue(shape)
                    steps.append(.pointwise(inputs: [a, b], y: y, activation: nil))
                    readyStep[y] = steps.count - 1
                    producer[y] = steps.count - 1
                    valueOf[out] = y
                }
            case "Pooling":
                let y = newValue(shape)
                steps.append(.pooling(x: try input(0), y: y, parameters: try PoolingParameters(ctx.attributes)))
                readyStep[y] = steps.count - 1
                valueOf[out] = y
            case "FullyConnected":
                let p = try FullyConnectedParameters(ctx.attributes)
                let w = try constant(n.inputs[1], n.name, "weight")
                let b = p.noBias ? nil : floats(try constant(n.inputs[2], n.name, "bias"))
                var x = try input(0)
                let xs = values[x].shape
                if channelsLast && xs.rank == 4 && xs[2] * xs[3] > 1 {
                    let r = newValue(xs)
                    steps.append(.reorderToNCHW(x: x, y: r))
                    readyStep[r] = steps.count - 1
                    x = r
                }
                let y = newValue(shape)
                steps.append(.fullyConnected(x: x, y: y, weight: w, bias: b, activation: nil))
                readyStep[y] = steps.count - 1
                producer[y] = steps.count - 1
                valueOf[out] = y
            case "Flatten", "Reshape", "_copy", "Dropout", "expand_dims":
                let x = try input(0)
                let xs = values[x].shape
                if channelsLast && xs.rank == 4 && xs[2] * xs[3] > 1 && xs != shape {
                    // NHWC bytes are not the NCHW order a reshape reads: write them in that order first.
                    let y = newValue(xs)
                    steps.append(.reorderToNCHW(x: x, y: y))
                    readyStep[y] = steps.count - 1
                    valueOf[out] = newValue(shape, alias: y)
                } else {
                    valueOf[out] = newValue(shape, alias: x)
                }
            case "softmax", "SoftmaxOutput":
                let sig = KernelSignature(node: ctx, inputShapes: n.inputs.map { shapes.nodeOutputs[$0.node][$0.index] },
                                          inputTypes: [], outputShapes: [shape], outputTypes: [])
                let view = try SoftmaxKernel.view(sig).get()
                let y = newValue(shape)
                steps.append(.softmax(x: try input(0), y: y, view: view))
                readyStep[y] = steps.count - 1
                valueOf[out] = y
            default:
                throw CUDAError.unsupported(node: n.name, op: n.op, reason: "the cuda engine has no lowering for \(n.op)")
            }
        }
        for h in graph.heads {
            guard let v = valueOf[h] else { throw CUDAError.invalidArgument("A group output is a constant") }
            outputs.append(v)
        }
    }

    /// The step with `act` applied to its output, when it has no activation yet.
    static func withActivation(_ step: EngineStep, _ act: EngineActivation) -> EngineStep? {
        switch step {
        case let .convolution(x, y, w, b, p, r, nil): return .convolution(x: x, y: y, weight: w, bias: b, parameters: p, residual: r, activation: act)
        case let .affine(x, y, s, t, nil): return .affine(x: x, y: y, scale: s, shift: t, activation: act)
        case let .pointwise(ins, y, nil): return .pointwise(inputs: ins, y: y, activation: act)
        case let .fullyConnected(x, y, w, b, nil): return .fullyConnected(x: x, y: y, weight: w, bias: b, activation: act)
        default: return nil
        }
    }
}
