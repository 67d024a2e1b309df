// Elementwise ops as CUDA C++ generated from one expression per op and compiled by NVRTC at bind
// (once per process and expression), one thread per element:
//
//   "fmaxf(a, 0.f)"  ->  extern "C" __global__ void kiln_relu(const float* x0, float* y, long long n)
//                         { i = ...; if (i < n) { float a = x0[i]; y[i] = fmaxf(a, 0.f); } }
//
// Broadcasting binary ops index their inputs through per-axis strides (0 on a broadcast axis) kept
// in a small device buffer. Reshapes, Flatten, _copy and inference Dropout are device copies; a
// Dropout that drops at inference (`mode=always`) is refused, so it runs on the CPU, which drops.
//
//   Dropout(mode="training") at inference  ->  copy on the GPU
//   Dropout(mode="always", p > 0)          ->  refused: the CPU framework's Dropout kernel
import KilnCore
import KilnGraph
import KilnRuntime

enum ElementwiseKernels {
    /// Unary ops: an expression in `a` (float). The activation ops share `Activation`'s expressions.
    static let unaryExpressions: [String: String] = [
        "relu": ActivationKind.relu.cudaExpression, "sigmoid": ActivationKind.sigmoid.cudaExpression,
        "tanh": ActivationKind.tanh.cudaExpression,
        "exp": "expf(a)", "log": "logf(a)", "sqrt": "sqrtf(a)", "rsqrt": "rsqrtf(a)", "square": "a * a",
    ]
    /// Binary ops: an expression in `a` and `b`.
    static let binaryExpressions: [String: String] = [
        "elemwise_add": "a + b", "elemwise_sub": "a - b", "elemwise_mul": "a * b", "elemwise_div": "a / b",
        "broadcast_add": "a + b", "broadcast_sub": "a - b", "broadcast_mul": "a * b", "broadcast_div": "a / b",
    ]
    /// Scalar ops: an expression in `a` and the scalar `S`.
    static let scalarExpressions: [String: String] = [
        "_plus_scalar": "a + S", "_minus_scalar": "a - S", "_rminus_scalar": "S - a", "_mul_scalar": "a * S",
        "_div_scalar": "a / S", "_rdiv_scalar": "S / a", "_power_scalar": "powf(a, S)",
        "_maximum_scalar": "fmaxf(a, S)", "_minimum_scalar": "fminf(a, S)",
    ]
    /// Ops whose output is the input's bytes; Dropout too, where it is the identity (``dropoutCheck(_:)``).
    static let copies = ["Flatten", "Reshape", "_copy", "expand_dims"]

    static let entries: [String: GPUKernelEntry] = {
        var t: [String: GPUKernelEntry] = [:]
        // softrelu and softsign are act_types of Activation only, not ops of their own.
        for op in unaryExpressions.keys where OpRegistry.shared.lookup(op) != nil {
            t[op] = GPUKernelEntry(check: GPUKernels.float32Only, make: { try unary(op, $0, $1) })
        }
        for op in binaryExpressions.keys {
            t[op] = GPUKernelEntry(check: BinaryKernel.check, make: { try BinaryKernel($0, $1) })
        }
        for op in scalarExpressions.keys {
            t[op] = GPUKernelEntry(check: GPUKernels.float32Only, make: { try ScalarKernel.make($0, $1) })
        }
        t["clip"] = GPUKernelEntry(check: GPUKernels.float32Only, make: { try ScalarKernel.clip($0, $1) })
        for op in copies {
            t[op] = GPUKernelEntry(check: CopyKernel.check, make: { CopyKernel($0, $1) })
        }
        t["Dropout"] = GPUKernelEntry(check: dropoutCheck, make: { CopyKernel($0, $1) })
        return t
    }()

    /// A Dropout node is a copy only where it is the identity at inference; with `mode=always` MXNet
    /// drops at inference too, which the CPU framework's kernel does.
    static func dropoutCheck(_ s: KernelSignature) -> String? {
        guard let p = try? DropoutParameters(s.attributes) else { return "attributes that do not parse" }
        guard p.isIdentityAtInference else {
            return "mode=always, which drops at inference too (the GPU copies Dropout)"
        }
        return CopyKernel.check(s)
    }

    static func unary(_ name: String, _ s: KernelSignature, _ device: CUDADevice) throws -> any GPUKernel {
        guard let expression = unaryExpressions[name] else {
            throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: "no GPU expression for \(name)")
        }
        return try MapKernel(device, name: "kiln_\(name)", expression: expression, count: s.outputShapes[0].elementCount)
    }

    /// `Activation` as a generated kernel (named as the unary ops' kernels are, `kiln_softrelu`).
    static func activation(_ kind: ActivationKind, _ s: KernelSignature, _ device: CUDADevice) throws -> any GPUKernel {
        try MapKernel(device, name: "kiln_\(kind.rawValue)", expression: kind.cudaExpression, count: s.outputShapes[0].elementCount)
    }

    static func source(name: String, parameters: String, body: String) -> String {
        """
        extern "C" __global__ void \(name)(\(parameters), long long n) {
            long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            \(body)
        }
        """
    }
}

extension ActivationKind {
    /// The function as a CUDA expression in `a` (float), for the generated elementwise kernels.
    var cudaExpression: String {
        switch self {
        case .relu: return "fmaxf(a, 0.f)"
        case .sigmoid: return "1.f / (1.f + expf(-a))"
        case .tanh: return "tanhf(a)"
        case .softReLU: return "(a > 20.f ? a : log1pf(expf(a)))"
        case .softSign: return "a / (1.f + fabsf(a))"
        }
    }
}

/// y[i] = f(x[i]) (also scalar ops, with the scalar in the source).
final class MapKernel: GPUKernel {
    let device: CUDADevice
    let function: Ptr
    let count: Int

    init(_ device: CUDADevice, name: String, expression: String, count: Int) throws {
        self.device = device
        self.count = count
        let src = ElementwiseKernels.source(name: name, parameters: "const float* __restrict__ x0, float* __restrict__ y",
                                            body: "float a = x0[i]; y[i] = \(expression);")
        function = try device.function(name, source: src)
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        try device.launch(function, count: count, arguments: [.pointer(inputs[0]), .pointer(outputs[0]), .int64(Int64(count))])
    }
}

enum ScalarKernel {
    /// An op with a scalar attribute (`_plus_scalar`): its table expression with the scalar as a literal.
    static func make(_ s: KernelSignature, _ device: CUDADevice) throws -> any GPUKernel {
        let canonical = OpRegistry.shared.lookup(s.node.op)?.name ?? s.node.op
        guard let e = ElementwiseKernels.scalarExpressions[canonical] else {
            throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: "no GPU expression")
        }
        let expression = e.replacingOccurrences(of: "S", with: literal(try s.attributes.float("scalar")))
        return try MapKernel(device, name: "kiln_" + canonical.filter { $0.isLetter || $0 == "_" }, expression: expression,
                             count: s.outputShapes[0].elementCount)
    }

    /// `clip`: its bounds as literals.
    static func clip(_ s: KernelSignature, _ device: CUDADevice) throws -> any GPUKernel {
        let p = try ClipParameters(s.attributes)
        return try MapKernel(device, name: "kiln_clip", expression: "fminf(fmaxf(a, \(literal(p.min))), \(literal(p.max)))",
                             count: s.outputShapes[0].elementCount)
    }

    /// A float literal that reads back as the same float32 (hexadecimal, exact).
    static func literal(_ v: Double) -> String {
        let f = Float(v)
        if f.isNaN { return "__int_as_float(0x7fc00000)" }
        if f.isInfinite { return f > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)" }
        return "__int_as_float(\(Int32(bitPattern: f.bitPattern)))"
    }
}

/// Binary arithmetic, same-shape or broadcasting (up to 8 axes).
final class BinaryKernel: GPUKernel {
    let device: CUDADevice
    let function: Ptr
    let count: Int
    /// rank, output dims, a's strides, b's strides (broadcast only).
    let meta: DeviceBuffer?

    static func check(_ s: KernelSignature) -> String? {
        if let r = GPUKernels.float32Only(s) { return r }
        return s.outputShapes[0].rank <= 8 ? nil : "more than 8 axes"
    }

    init(_ s: KernelSignature, _ device: CUDADevice) throws {
        if let r = Self.check(s) { throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: r) }
        let canonical = OpRegistry.shared.lookup(s.node.op)?.name ?? s.node.op
        guard let expression = ElementwiseKernels.binaryExpressions[canonical] else {
            throw CUDAError.unsupported(node: s.node.name, op: s.node.op, reason: "no GPU expression")
        }
        self.device = device
        let out = s.outputShapes[0]
        count = out.elementCount
        let op = canonical.replacingOccurrences(of: "elemwise_", with: "").replacingOccurrences(of: "broadcast_", with: "")
        if s.inputShapes[0] == out && s.inputShapes[1] == out {
            meta = nil
            let name = "kiln_\(op)"
            function = try device.function(name, source: ElementwiseKernels.source(
                name: name, parameters: "const float* __restrict__ x0, const float* __restrict__ x1, float* __restrict__ y",
                body: "float a = x0[i], b = x1[i]; y[i] = \(expression);"))
        } else {
            let name = "kiln_broadcast_\(op)"
            function = try device.function(name, source: ElementwiseKernels.source(
                name: name, parameters: "const float* __restrict__ x0, const float* __restrict__ x1, float* __restrict__ y, const long long* __restrict__ m",
                body: """
                int rank = (int)m[0]; long long r = i, ia = 0, ib = 0;
                    for (int k = rank - 1; k >= 0; --k) { long long d = m[1 + k]; long long c = r % d; r /= d; ia += c * m[1 + rank + k]; ib += c * m[1 + 2 * rank + k]; }
                    float a = x0[ia], b = x1[ib]; y[i] = \(expression);
                """))
            var m: [Int64] = [Int64(out.rank)] + out.dims.map { Int64($0) }
            m += Self.strides(s.inputShapes[0], to: out) + Self.strides(s.inputShapes[1], to: out)
            meta = try device.upload(NDArray(shape: [m.count], dtype: .int64, values: m.map { Double($0) }))
        }
    }

    /// Element strides of `input` read as `out` (aligned at the last axis; 0 where it broadcasts).
    static func strides(_ input: Shape, to out: Shape) -> [Int64] {
        var result = [Int64](repeating: 0, count: out.rank)
        var step: Int64 = 1
        for k in stride(from: input.rank - 1, through: 0, by: -1) {
            let ok = k + out.rank - input.rank
            result[ok] = input[k] == 1 && out[ok] != 1 ? 0 : step
            step *= Int64(input[k])
        }
        return result
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        var args: [KernelArgument] = [.pointer(inputs[0]), .pointer(inputs[1]), .pointer(outputs[0])]
        if let meta { args.append(.pointer(meta.pointer)) }
        args.append(.int64(Int64(count)))
        try device.launch(function, count: count, arguments: args)
    }
}

/// Reshape, Flatten, _copy and Dropout that is the identity at inference: the input's bytes.
final class CopyKernel: GPUKernel {
    let device: CUDADevice
    let bytes: Int

    static func check(_ s: KernelSignature) -> String? {
        s.inputTypes.first == s.outputTypes.first ? nil : "a dtype change"
    }

    init(_ s: KernelSignature, _ device: CUDADevice) {
        self.device = device
        bytes = s.outputShapes[0].elementCount * s.outputTypes[0].byteSize
    }

    func forward(_ inputs: [UnsafeMutableRawPointer], _ outputs: [UnsafeMutableRawPointer]) throws {
        guard inputs[0] != outputs[0] else { return }
        try device.copy(onDevice: outputs[0], from: inputs[0], bytes: bytes)
    }
}
